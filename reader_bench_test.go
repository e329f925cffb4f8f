package durable

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/benchdata"
	"github.com/durablego/durable/testserver"
)

// benchRec is the small JSON message of the catch-up benchmarks.
type benchRec = benchdata.Rec

const benchMessages = benchdata.CatchUpMessages

// benchStream fills a JSON stream with benchMessages small messages and
// returns its size in bytes.
func benchStream(b *testing.B, c *Client, stream string) int64 {
	b.Helper()
	ctx := context.Background()
	if _, err := c.Create(ctx, stream, CreateOptions{ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	size, err := benchdata.CatchUpBodies(benchMessages, 10_000, func(body []byte) error {
		_, err := c.Append(ctx, stream, body, AppendOptions{ContentType: "application/json"})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return size
}

func benchServer(b *testing.B) (*testserver.Server, *Client) {
	b.Helper()
	srv := testserver.New()
	b.Cleanup(srv.Close)
	c, err := NewClient(srv.StreamURL(""))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.hc.CloseIdleConnections)
	return srv, c
}

// catchUp reads the whole stream with a Reader[T] in live mode none and
// returns the number of messages.
func catchUp[T any](b *testing.B, c *Client, stream string, each func(Message[T])) int {
	return catchUpWith(b, c, stream, each)
}

// catchUpWith is catchUp with more options.
func catchUpWith[T any](b *testing.B, c *Client, stream string, each func(Message[T]), opts ...ReaderOption) int {
	r, err := NewReader[T](c, stream, append([]ReaderOption{WithLive(LiveNone), WithManualCommit()}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx := context.Background()
	n := 0
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, ErrCaughtUp) {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		if each != nil {
			each(m)
		}
		n++
	}
}

// ceiling reads the same offsets with plain net/http GETs and decodes each
// body with encoding/json into a []benchRec.
func ceiling(b *testing.B, hc *http.Client, streamURL string) int {
	off := "-1"
	n := 0
	var recs []benchRec
	for {
		resp, err := hc.Get(streamURL + "?offset=" + url.QueryEscape(off))
		if err != nil {
			b.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status, err)
		}
		recs = recs[:0]
		if err := json.Unmarshal(body, &recs); err != nil {
			b.Fatal(err)
		}
		n += len(recs)
		off = resp.Header.Get("Stream-Next-Offset")
		if resp.Header.Get("Stream-Up-To-Date") == "true" {
			return n
		}
	}
}

func reportRate(b *testing.B, msgs int, bytes int64, start time.Time, mallocs uint64) {
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(msgs)/el, "msgs/s")
	b.ReportMetric(float64(bytes)/el/1e6, "MB/s")
	if msgs > 0 {
		b.ReportMetric(float64(mallocs)/float64(msgs), "allocs/msg")
	}
	b.ReportMetric(0, "ns/op")
}

func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// BenchmarkReaderCatchUp: catch-up of 1,000,000 small JSON messages from
// an in-process testserver (1 MiB chunks): typed (decoded into a struct),
// raw ([]byte), and the ceiling (plain net/http GETs of the same offsets +
// encoding/json into []struct). One op = the whole stream.
func BenchmarkReaderCatchUp(b *testing.B) {
	srv, c := benchServer(b)
	size := benchStream(b, c, "bench")
	run := func(name string, read func() int) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			msgs := 0
			m0 := mallocs()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if n := read(); n != benchMessages {
					b.Fatalf("read %d messages", n)
				}
				msgs += benchMessages
			}
			reportRate(b, msgs, size*int64(b.N), start, mallocs()-m0)
		})
	}
	var sink int
	run("typed", func() int { return catchUp(b, c, "bench", func(m Message[benchRec]) { sink += m.Value.ID }) })
	run("raw", func() int { return catchUp(b, c, "bench", func(m Message[[]byte]) { sink += len(m.Value) }) })
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	run("ceiling", func() int { return ceiling(b, hc, srv.StreamURL("bench")) })

	// The three, interleaved within each op, so that a noisy machine
	// affects them alike: the ratios are the figures to quote.
	b.Run("interleaved", func(b *testing.B) {
		var dTyped, dRaw, dCeil, dInline time.Duration
		timed := func(d *time.Duration, read func() int) {
			start := time.Now()
			if n := read(); n != benchMessages {
				b.Fatalf("read %d messages", n)
			}
			*d += time.Since(start)
		}
		for i := 0; i < b.N; i++ {
			timed(&dTyped, func() int { return catchUp(b, c, "bench", func(m Message[benchRec]) { sink += m.Value.ID }) })
			timed(&dCeil, func() int { return ceiling(b, hc, srv.StreamURL("bench")) })
			timed(&dRaw, func() int { return catchUp(b, c, "bench", func(m Message[[]byte]) { sink += len(m.Value) }) })
			timed(&dInline, func() int {
				return catchUpWith(b, c, "bench", func(m Message[benchRec]) { sink += m.Value.ID }, WithDecodeAhead(0))
			})
		}
		msgs := float64(benchMessages * b.N)
		b.ReportMetric(msgs/dTyped.Seconds(), "typed-msgs/s")
		b.ReportMetric(msgs/dRaw.Seconds(), "raw-msgs/s")
		b.ReportMetric(msgs/dCeil.Seconds(), "ceiling-msgs/s")
		b.ReportMetric(float64(size)*float64(b.N)/dTyped.Seconds()/1e6, "typed-MB/s")
		b.ReportMetric(float64(size)*float64(b.N)/dCeil.Seconds()/1e6, "ceiling-MB/s")
		b.ReportMetric(dCeil.Seconds()/dTyped.Seconds(), "typed/ceiling")
		b.ReportMetric(dCeil.Seconds()/dRaw.Seconds(), "raw/ceiling")
		// And with decoding ahead off (WithDecodeAhead(0)): decoded in Next.
		b.ReportMetric(dCeil.Seconds()/dInline.Seconds(), "typed-no-decode-ahead/ceiling")
		b.ReportMetric(0, "ns/op")
	})

	// Peak heap during a typed catch-up, above the heap before it (which
	// holds the server's copy of the stream).
	b.Run("heap", func(b *testing.B) {
		peakHeap := func(opts ...ReaderOption) float64 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base, peak := ms.HeapInuse, ms.HeapInuse
			n := 0
			catchUpWith(b, c, "bench", func(m Message[benchRec]) {
				if n++; n%100_000 == 0 {
					runtime.GC() // live heap only: garbage is not what is bounded
					runtime.ReadMemStats(&ms)
					peak = max(peak, ms.HeapInuse)
				}
			}, opts...)
			return float64(peak-base) / (1 << 20)
		}
		for i := 0; i < b.N; i++ {
			b.ReportMetric(peakHeap(), "peak-heap-MiB")
			// Without decoding ahead: the chunk handed out and the one read ahead.
			b.ReportMetric(peakHeap(WithDecodeAhead(0)), "peak-heap-no-decode-ahead-MiB")
			b.ReportMetric(float64(size)/(1<<20), "stream-MiB")
		}
		b.ReportMetric(0, "ns/op")
	})
	_ = sink
}
