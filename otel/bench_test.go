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
	"github.com/durablego/durable/internal/benchdata"
	"github.com/durablego/durable/internal/cpuclock"
	"github.com/durablego/durable/testserver"
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
// The variant "again" is the plain SDK a second time: its cost is the
// noise of the comparison on this machine.

// variant is one way of running the SDK in a benchmark.
type variant struct {
	name    string
	options func(b *testing.B) []durable.Option // the Client's options
}

// variants are compared against the first, the plain SDK.
var variants = []variant{
	{name: "plain", options: func(*testing.B) []durable.Option { return nil }},
	{name: "again", options: func(*testing.B) []durable.Option { return nil }},
}

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

// took is the wall and CPU time a variant took.
type took struct{ wall, cpu time.Duration }

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
			eachVariant(op, func(i int) { catchUp(b, &ts[i], clients[i], "bench") })
		}
		report(b, benchdata.CatchUpMessages, ts)
	})
}
