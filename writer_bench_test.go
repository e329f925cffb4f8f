package durable

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/benchdata"
	"github.com/durablego/durable/internal/testsupport/cpuclock"
	"github.com/durablego/durable/testserver"
)

// Writer throughput against the in-process testserver, beside the ceiling:
// plain net/http POSTs of pre-encoded batches of the same size, with the
// same number of concurrent writers, against the same server.
//
//	go test -run '^$' -bench Writer -benchmem -count 3 .
//
// Both report msgs/s and MB/s of message payload (b.SetBytes: one op is
// one message), and the process's CPU per message.
//
// Both sides use an http.Transport that keeps benchIdleConns idle
// connections per host. net/http's default keeps 2, and NewClient's
// default transport inherits that: with more requests in flight (a Writer
// pipelines up to 4, and 8 writers send up to 32) connections are then
// closed and re-dialled all the time (on a loaded 2-CPU machine some runs
// lost 30-50 % of the Writer's throughput to it; on an idle one it is in
// the noise).
const benchIdleConns = 64

func benchTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = benchIdleConns
	return tr
}

// benchMsg encodes to exactly 100 bytes of JSON.
type benchMsg = benchdata.Msg

func benchEnv(b benchTB, contentType string) (*testserver.Server, *Client) {
	b.Helper()
	srv := testserver.New()
	b.Cleanup(srv.Close)
	if sc, ok := b.(*benchScope); ok {
		sc.srv = srv
	}
	c, err := NewClient(srv.StreamURL(""), WithHTTPClient(&http.Client{Transport: benchTransport()}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.CloseIdleConnections)
	if _, err := c.Create(context.Background(), "bench", CreateOptions{ContentType: contentType}); err != nil {
		b.Fatal(err)
	}
	return srv, c
}

// share splits n operations over k workers.
func shareOf(n, k, i int) int {
	s := n / k
	if i < n%k {
		s++
	}
	return s
}

// benchClock marks the start of a measurement: wall time and the
// process's CPU time (client and in-process server together), which is
// steadier than wall time on a loaded machine.
type benchClock struct {
	wall time.Time
	cpu  time.Duration
}

func startClock() benchClock { return benchClock{wall: time.Now(), cpu: cpuclock.Process()} }

func reportWriterRate(b *testing.B, start benchClock) {
	el := time.Since(start.wall).Seconds()
	b.ReportMetric(float64(b.N)/el, "msgs/s")
	if cpu := cpuclock.Process() - start.cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
	}
}

func BenchmarkWriter(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("json100B/writers=%d", writers), func(b *testing.B) {
			benchWriterCase(b, 100, prepWriterJSON(b, writers))
		})
		b.Run(fmt.Sprintf("json100B/ceiling-net-http/writers=%d", writers), func(b *testing.B) {
			benchWriterCase(b, 100, prepCeilingJSON(b, writers))
		})
		b.Run(fmt.Sprintf("json100B-preencoded/writers=%d", writers), func(b *testing.B) {
			benchWriterCase(b, 100, prepWriterRawJSON(b, writers))
		})
	}
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("bytes1MiB/writers=%d", writers), func(b *testing.B) {
			benchWriterCase(b, 1<<20, prepWriterBig(b, writers))
		})
		b.Run(fmt.Sprintf("bytes1MiB/ceiling-net-http/writers=%d", writers), func(b *testing.B) {
			benchWriterCase(b, 1<<20, prepCeilingBig(b, writers))
		})
	}
}

// writerRun sends n messages and waits until all have landed.
type writerRun func(b *testing.B, n int)

func benchWriterCase(b *testing.B, size int64, run writerRun) {
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	start := startClock()
	run(b, b.N)
	reportWriterRate(b, start)
}

func prepWriterJSON(b benchTB, writers int) writerRun {
	_, c := benchEnv(b, "application/json")
	msgs := benchdata.Msgs()
	return func(b *testing.B, n int) {
		runWriters(b, c, writers, n, func(int) (*Writer[benchMsg], error) { return NewWriter[benchMsg](c, "bench") },
			func(j int) benchMsg { return msgs[j%len(msgs)] })
	}
}

// prepWriterJSONShared is prepWriterJSON with one Writer shared by
// `goroutines` goroutines (a Writer is safe for concurrent use: each
// goroutine encodes its own messages, and one producer pipelines the
// batches).
func prepWriterJSONShared(b benchTB, goroutines int) writerRun {
	_, c := benchEnv(b, "application/json")
	msgs := benchdata.Msgs()
	return func(b *testing.B, n int) {
		w, err := NewWriter[benchMsg](c, "bench")
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		var wg sync.WaitGroup
		for i := range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range shareOf(n, goroutines, i) {
					if err := w.Write(ctx, msgs[j%len(msgs)]); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := w.Close(ctx); err != nil {
			b.Error(err)
		}
	}
}

// runWriters opens `writers` Writers, writes n messages split over them
// from as many goroutines, and closes them.
func runWriters[T any](b *testing.B, c *Client, writers, n int, open func(int) (*Writer[T], error), msg func(int) T) {
	ctx := context.Background()
	ws := make([]*Writer[T], writers)
	for i := range ws {
		w, err := open(i)
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
	}
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range shareOf(n, writers, i) {
				if err := w.Write(ctx, msg(j)); err != nil {
					b.Error(err)
					return
				}
			}
			if err := w.Close(ctx); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
}

// postAll sends each body with plain net/http POSTs from `writers`
// goroutines, batches split evenly.
func postAll(b *testing.B, hc *http.Client, url, contentType string, bodies [][]byte, writers int) {
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(bodies); j += writers {
				req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[j]))
				if err != nil {
					b.Error(err)
					return
				}
				req.Header.Set("Content-Type", contentType)
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func prepCeilingJSON(b benchTB, writers int) writerRun {
	srv, _ := benchEnv(b, "application/json")
	hc := &http.Client{Transport: benchTransport()}
	b.Cleanup(hc.CloseIdleConnections)
	// Pre-encoded batches of DefaultWriterMaxBatchMessages messages, like
	// the Writer's under load.
	var enc []byte
	enc = append(enc, '[')
	for i := range DefaultWriterMaxBatchMessages {
		if i > 0 {
			enc = append(enc, ',')
		}
		m := benchdata.NewMsg(1000000 + i)
		enc = fmt.Appendf(enc, `{"id":%d,"payload":%q}`, m.ID, m.Payload)
	}
	enc = append(enc, ']')
	return func(b *testing.B, n int) {
		var bodies [][]byte
		for left := n; left > 0; left -= DefaultWriterMaxBatchMessages {
			k := min(left, DefaultWriterMaxBatchMessages)
			if k == DefaultWriterMaxBatchMessages {
				bodies = append(bodies, enc)
				continue
			}
			// k messages: 101 bytes each with its comma.
			bodies = append(bodies, append(append([]byte{}, enc[:1+k*101-1]...), ']'))
		}
		postAll(b, hc, srv.StreamURL("bench"), "application/json", bodies, writers)
	}
}

func prepWriterBig(b benchTB, writers int) writerRun {
	_, c := benchEnv(b, "application/octet-stream")
	msg := bytes.Repeat([]byte{'a'}, 1<<20)
	return func(b *testing.B, n int) {
		runWriters(b, c, writers, n, func(int) (*Writer[[]byte], error) { return NewWriter[[]byte](c, "bench") },
			func(int) []byte { return msg })
	}
}

func prepCeilingBig(b benchTB, writers int) writerRun {
	srv, _ := benchEnv(b, "application/octet-stream")
	hc := &http.Client{Transport: benchTransport()}
	b.Cleanup(hc.CloseIdleConnections)
	msg := bytes.Repeat([]byte{'a'}, 1<<20)
	return func(b *testing.B, n int) {
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = msg
		}
		postAll(b, hc, srv.StreamURL("bench"), "application/octet-stream", bodies, writers)
	}
}

// prepWriterRawJSON is prepWriterJSON with messages already encoded
// (Writer[[]byte] on a JSON stream: each message is only checked with
// jsonframe.Valid), to separate the Writer's cost from encoding/json's.
func prepWriterRawJSON(b benchTB, writers int) writerRun {
	_, c := benchEnv(b, "application/json")
	msgs := make([][]byte, 1000)
	for i := range msgs {
		m := benchdata.NewMsg(1000000 + i)
		msgs[i] = fmt.Appendf(nil, `{"id":%d,"payload":%q}`, m.ID, m.Payload)
	}
	return func(b *testing.B, n int) {
		runWriters(b, c, writers, n,
			func(int) (*Writer[[]byte], error) {
				return NewWriter[[]byte](c, "bench", WithContentType("application/json"))
			},
			func(j int) []byte { return msgs[j%len(msgs)] })
	}
}

// BenchmarkWriterPaired runs each Writer case and its net/http ceiling
// alternately within every op (one op = one round of each, round messages
// apiece), so that a noisy machine slows both alike; it reports both
// rates, their ratio (the figure to quote), and the Writer's allocations
// per message.
//
//	go test -run '^$' -bench WriterPaired -benchtime 5x -count 6 .
func BenchmarkWriterPaired(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("json100B/writers=%d", writers), func(b *testing.B) {
			pairedWriter(b, 200_000, 100,
				func(b benchTB) writerRun { return prepWriterJSON(b, writers) },
				func(b benchTB) writerRun { return prepCeilingJSON(b, writers) })
		})
	}
	b.Run("json100B/goroutines=8/one-writer", func(b *testing.B) {
		pairedWriter(b, 200_000, 100,
			func(b benchTB) writerRun { return prepWriterJSONShared(b, 8) },
			func(b benchTB) writerRun { return prepCeilingJSON(b, 8) })
	})
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("bytes1MiB/writers=%d", writers), func(b *testing.B) {
			pairedWriter(b, 100, 1<<20,
				func(b benchTB) writerRun { return prepWriterBig(b, writers) },
				func(b benchTB) writerRun { return prepCeilingBig(b, writers) })
		})
	}
}

func pairedWriter(b *testing.B, round int, size int64, sdk, ceil func(benchTB) writerRun) {
	var dSDK, dCeil, cSDK, cCeil time.Duration
	var allocs uint64
	var postsSDK, postsCeil int
	// Each round runs on a fresh server (and stream), set up untimed and
	// closed after it, so that memory does not grow with b.N.
	timed := func(prep func(benchTB) writerRun, d, cpu *time.Duration, m *uint64, posts *int) {
		sc := &benchScope{B: b}
		defer sc.close()
		run := prep(sc)
		defer func() { *posts += sc.srv.Requests("bench", http.MethodPost) }()
		runtime.GC()
		m0 := mallocs()
		t0 := startClock()
		run(b, round)
		*d += time.Since(t0.wall)
		*cpu += cpuclock.Process() - t0.cpu
		if m != nil {
			*m += mallocs() - m0
		}
	}
	for i := 0; i < b.N; i++ {
		timed(sdk, &dSDK, &cSDK, &allocs, &postsSDK)
		timed(ceil, &dCeil, &cCeil, nil, &postsCeil)
	}
	msgs := float64(round * b.N)
	b.ReportMetric(msgs/dSDK.Seconds(), "sdk-msgs/s")
	b.ReportMetric(msgs/dCeil.Seconds(), "ceiling-msgs/s")
	b.ReportMetric(msgs*float64(size)/dSDK.Seconds()/1e6, "sdk-MB/s")
	b.ReportMetric(dCeil.Seconds()/dSDK.Seconds(), "sdk/ceiling")
	// CPU of the whole process (client and in-process server) per
	// message: steadier than wall time when other work shares the machine.
	if cSDK > 0 && cCeil > 0 {
		b.ReportMetric(float64(cSDK.Nanoseconds())/msgs, "sdk-cpu-ns/msg")
		b.ReportMetric(float64(cCeil.Nanoseconds())/msgs, "ceiling-cpu-ns/msg")
		b.ReportMetric(cCeil.Seconds()/cSDK.Seconds(), "sdk/ceiling-cpu")
	}
	// Client and in-process server together; the ceiling's client
	// allocates next to nothing per message.
	b.ReportMetric(float64(allocs)/msgs, "allocs/msg")
	// POST requests per round beyond the ceiling's: the Writer's batches
	// are as big as the ceiling's under load, so these are mostly
	// sequence-gap resends of pipelined batches (and linger-sealed
	// partial batches).
	b.ReportMetric(float64(postsSDK-postsCeil)/float64(b.N), "extra-posts/round")
	b.ReportMetric(float64(postsCeil)/float64(b.N), "ceiling-posts/round")
	b.ReportMetric(0, "ns/op")
}

// benchTB is what the benchmark set-up helpers need of a *testing.B.
type benchTB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// benchScope is a *testing.B whose Cleanup functions run at close, not at
// the end of the benchmark.
type benchScope struct {
	*testing.B
	fns []func()
	srv *testserver.Server // the server of the round
}

func (s *benchScope) Cleanup(f func()) { s.fns = append(s.fns, f) }

func (s *benchScope) close() {
	for i := len(s.fns) - 1; i >= 0; i-- {
		s.fns[i]()
	}
}
