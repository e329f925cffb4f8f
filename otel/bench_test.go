package durableotel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/testsupport/benchdata"
	"github.com/durablego/durable/internal/testsupport/cpuclock"
	"github.com/durablego/durable/testserver"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The cost of the instrumentation on the core's paired writer benchmark
// (100-byte JSON messages, 1 and 8 Writers, a fresh server each round) and
// its catch-up benchmark (1,000,000 small JSON messages read by a typed
// Reader): every op runs each variant once, alternately, so that a loaded
// machine slows them alike, and reports each variant's rate and the cost of
// each against the plain SDK: "cost-%", how much longer it took, and
// "cpu-cost-%", how much more CPU the process (client and in-process
// server) used, which is steadier when other work shares the machine.
//
//	go test -run '^$' -bench Overhead -benchtime 3x -count 6 . | tee overhead.txt
//	benchstat overhead.txt
//
// The variant "otel" has a Telemetry as the Client's hook, recording with
// the SDK's meter provider (a manual reader: every measurement aggregated,
// none exported) and tracer provider (every span sampled and handed to a
// batch processor whose exporter drops it), and sending the W3C trace
// context. The variant "again" is the plain SDK a second time: its cost is
// the noise of the comparison on this machine.

// variant is one way of running the SDK in a benchmark.
type variant struct {
	name    string
	options func(b *testing.B) []durable.Option // the Client's options
}

// variants are compared against the first, the plain SDK.
var variants = []variant{
	{name: "plain", options: func(*testing.B) []durable.Option { return nil }},
	{name: "otel", options: instrumented},
	{name: "again", options: func(*testing.B) []durable.Option { return nil }},
}

// instrumented returns the options of a Client with a benchTelemetry.
func instrumented(b *testing.B) []durable.Option {
	return []durable.Option{durable.WithHooks(benchTelemetry(b))}
}

// benchTelemetry returns a Telemetry recording with the SDK's providers
// (shut down when the benchmark ends) as the "otel" variant says.
func benchTelemetry(b *testing.B) *Telemetry {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
	tel, err := New(WithMeterProvider(mp), WithTracerProvider(tp), WithPropagator(propagation.TraceContext{}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = tel.Close()
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return tel
}

// discard is a span exporter that drops every span.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// benchClient returns a Client on base with v's options and a transport
// that keeps enough idle connections for 8 pipelining Writers (as the
// core's benchmarks do).
func benchClient(b *testing.B, base string, v variant) *durable.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	c, err := durable.NewClient(base, append([]durable.Option{durable.WithHTTPClient(&http.Client{Transport: tr})}, v.options(b)...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.CloseIdleConnections)
	return c
}

// took is the wall and CPU time a variant took, and the requests it sent.
type took struct {
	wall, cpu time.Duration
	requests  int
}

// clock is the start of a measurement.
type clock struct {
	wall time.Time
	cpu  time.Duration
}

func startClock() clock { return clock{wall: time.Now(), cpu: cpuclock.Process()} }

// add adds the time since c to t.
func (t *took) add(c clock) {
	t.wall += time.Since(c.wall)
	t.cpu += cpuclock.Process() - c.cpu
}

// writeRound appends n messages to a fresh stream on a fresh server through
// `writers` Writers of a Client with v's options, and adds how long it took
// (server set-up excluded) to t. It checks the server holds every message.
func writeRound(b *testing.B, t *took, v variant, writers, n int, msgs []benchdata.Msg) {
	srv := testserver.New()
	defer srv.Close()
	c := benchClient(b, srv.StreamURL(""), v)
	defer c.CloseIdleConnections()
	ctx := context.Background()
	if _, err := c.Create(ctx, "bench", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	start := startClock()
	var wg sync.WaitGroup
	for i := range writers {
		share := n / writers
		if i < n%writers {
			share++
		}
		wg.Go(func() {
			w, err := durable.NewWriter[benchdata.Msg](c, "bench")
			if err != nil {
				b.Error(err)
				return
			}
			for j := range share {
				if err := w.Write(ctx, msgs[j%len(msgs)]); err != nil {
					b.Error(err)
					break
				}
			}
			if err := w.Close(ctx); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	t.add(start)
	t.requests += srv.Requests("bench", http.MethodPost)
	if got := countMessages(b, c, "bench"); got != n {
		b.Fatalf("%s: the server holds %d messages, %d were written", v.name, got, n)
	}
}

// countMessages reads the whole stream with a Reader and counts its
// messages.
func countMessages(b *testing.B, c *durable.Client, stream string) int {
	r, err := durable.NewReader[[]byte](c, stream, durable.WithLive(durable.LiveNone), durable.WithManualCommit())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	n := 0
	for {
		_, err := r.Next(context.Background())
		if errors.Is(err, durable.ErrCaughtUp) {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// fillStream fills stream with the catch-up benchmarks' messages.
func fillStream(b *testing.B, c *durable.Client, stream string) {
	ctx := context.Background()
	if _, err := c.Create(ctx, stream, durable.CreateOptions{ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	_, err := benchdata.CatchUpBodies(benchdata.CatchUpMessages, 10_000, func(body []byte) error {
		_, err := c.Append(ctx, stream, body, durable.AppendOptions{ContentType: "application/json"})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// catchUp reads the whole stream with a typed Reader in live mode none and
// adds how long it took to t (nil: not measured).
func catchUp(b *testing.B, t *took, c *durable.Client, stream string) {
	ctx := context.Background()
	start := startClock()
	r, err := durable.NewReader[benchdata.Rec](c, stream, durable.WithLive(durable.LiveNone), durable.WithManualCommit())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(ctx)
	n, sum := 0, 0
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, durable.ErrCaughtUp) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		sum += m.Value.ID
		n++
	}
	if t != nil {
		t.add(start)
	}
	if n != benchdata.CatchUpMessages || sum != benchdata.CatchUpMessages*(benchdata.CatchUpMessages-1)/2 {
		b.Fatalf("read %d messages (id sum %d)", n, sum)
	}
}

// eachVariant calls run for the index of every variant, in order on even
// ops and in reverse order on odd ones, so that neither side always runs
// first (on a warmer or a colder machine).
func eachVariant(op int, run func(i int)) {
	for k := range variants {
		i := k
		if op%2 == 1 {
			i = len(variants) - 1 - k
		}
		run(i)
	}
}

// report puts each variant's rate (msgs messages per op) and its cost
// against the first variant.
func report(b *testing.B, msgs int, ts []took) {
	total := float64(msgs) * float64(b.N)
	// Requests per op: what the per-request cost of the hooks
	// (BenchmarkHooks) is multiplied by.
	b.ReportMetric(float64(ts[0].requests)/float64(b.N), "requests/op")
	for i, v := range variants {
		b.ReportMetric(total/ts[i].wall.Seconds(), v.name+"-msgs/s")
		b.ReportMetric(float64(ts[i].cpu.Nanoseconds())/total, v.name+"-cpu-ns/msg")
		if i > 0 {
			b.ReportMetric((ts[i].wall.Seconds()/ts[0].wall.Seconds()-1)*100, v.name+"-cost-%")
			b.ReportMetric((ts[i].cpu.Seconds()/ts[0].cpu.Seconds()-1)*100, v.name+"-cpu-cost-%")
		}
	}
	b.ReportMetric(0, "ns/op")
}

func BenchmarkOverhead(b *testing.B) {
	msgs := benchdata.Msgs()
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writer/json100B/writers=%d", writers), func(b *testing.B) {
			const round = 200_000
			ts := make([]took, len(variants))
			for op := range b.N {
				eachVariant(op, func(i int) { writeRound(b, &ts[i], variants[i], writers, round, msgs) })
			}
			report(b, round, ts)
		})
	}
	b.Run("catch-up/typed", func(b *testing.B) {
		srv := testserver.New()
		defer srv.Close()
		fillStream(b, benchClient(b, srv.StreamURL(""), variants[0]), "bench")
		clients := make([]*durable.Client, len(variants))
		for i, v := range variants {
			clients[i] = benchClient(b, srv.StreamURL(""), v)
		}
		for _, c := range clients {
			catchUp(b, nil, c, "bench") // warm up: the first read of the stream is slower
		}
		ts := make([]took, len(variants))
		for op := range b.N {
			eachVariant(op, func(i int) {
				before := srv.Requests("bench", http.MethodGet)
				catchUp(b, &ts[i], clients[i], "bench")
				ts[i].requests += srv.Requests("bench", http.MethodGet) - before
			})
		}
		report(b, benchdata.CatchUpMessages, ts)
	})
}

// BenchmarkHooks is what the Telemetry costs per event cycle, without any
// I/O: a batch (start, its request, its settlement) and a read (start, its
// request, its end, the delivery of its chunk), as the SDK calls them. The
// cost per message is this divided by the messages of a batch or a chunk.
//
//	go test -run '^$' -bench Hooks -benchmem .
func BenchmarkHooks(b *testing.B) {
	tel := benchTelemetry(b)
	stream := "http://127.0.0.1:4437/v1/stream/orders"
	ctx := context.Background()
	b.Run("batch", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			p := durable.Producer{ID: "p", Seq: int64(i)}
			bctx := tel.OnStart(ctx, durable.StartEvent{Op: "write", Stream: stream, Producer: p, Messages: 1000, Bytes: 100_000,
				Buffered: 2000, BufferedBytes: 200_000, Header: http.Header{}})
			tel.OnRequest(durable.RequestEvent{Context: bctx, Op: "append", Stream: stream, Method: http.MethodPost, Status: 204, Attempt: 1,
				Latency: time.Millisecond, Bytes: 100_000})
			tel.OnBatch(durable.BatchEvent{Context: bctx, Attempts: 1, Stream: stream, Producer: p, Messages: 1000, Bytes: 100_000,
				Latency: time.Millisecond, Offset: "0000000000000000_0000000000100000", Buffered: 1000, BufferedBytes: 100_000})
		}
	})
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			rctx := tel.OnStart(ctx, durable.StartEvent{Op: "read", Stream: stream, Key: "/v1/stream/orders", Offset: "0000000000000000_0000000000000000",
				Live: durable.LiveNone, Header: http.Header{}})
			tel.OnRequest(durable.RequestEvent{Context: rctx, Op: "read", Stream: stream, Method: http.MethodGet, Status: 200, Attempt: 1, Latency: time.Millisecond})
			tel.OnFetch(durable.FetchEvent{Context: rctx, Stream: stream, Key: "/v1/stream/orders", Live: durable.LiveNone,
				Offset: "0000000000000000_0000000000000000", NextOffset: "0000000000000000_0000000001048576", Bytes: 1 << 20, Attempt: 1, Latency: time.Millisecond})
			tel.OnRead(durable.ReadEvent{Stream: stream, Key: "/v1/stream/orders", Messages: 25_000, Bytes: 1 << 20,
				Offset: "0000000000000000_0000000000000000", NextOffset: "0000000000000000_0000000001048576"})
		}
	})
}
