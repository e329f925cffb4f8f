package jsoncodec

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/testsupport/serveproc"
)

// catchRec is the small message of the core module's catch-up benchmarks.
type catchRec struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	OK   bool   `json:"ok"`
}

// BenchmarkCatchUp: typed catch-up of 1,000,000 small messages (about
// 40 MiB) from `durable serve` in another process, with a Reader[catchRec]
// decoding in Next with encoding/json (WithDecodeAhead(0)), the same with
// jsoncodec, and with encoding/json decoding ahead (the default). One op
// reads the stream once with each, alternately, so the ratios compare runs
// made under the same load. On one core:
//
//	cd jsoncodec && go test -run '^$' -bench CatchUp -cpu 1 -benchtime 2x -count 6
func BenchmarkCatchUp(b *testing.B) {
	srv := serveproc.Start(b)
	c, err := durable.NewClient(srv.StreamURL(""))
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	const n = 1_000_000
	fill(b, c, "catchup", n)
	modes := []struct {
		name string
		opt  durable.ReaderOption
	}{
		{"json", durable.WithDecodeAhead(0)},
		{"jsoncodec", durable.WithCodec[catchRec](Codec[catchRec]{})},
		{"json-ahead", durable.WithDecodeAhead(4)},
	}
	spent := make([]time.Duration, len(modes))
	for b.Loop() {
		for i, m := range modes {
			t0 := time.Now()
			if got := catchUp(b, c, "catchup", m.opt); got != n {
				b.Fatalf("%s read %d messages, want %d", m.name, got, n)
			}
			spent[i] += time.Since(t0)
		}
	}
	for i, m := range modes {
		b.ReportMetric(float64(n*b.N)/spent[i].Seconds(), m.name+"-msgs/s")
	}
	b.ReportMetric(spent[0].Seconds()/spent[1].Seconds(), "jsoncodec/json")
	b.ReportMetric(spent[2].Seconds()/spent[1].Seconds(), "jsoncodec/json-ahead")
	b.ReportMetric(0, "ns/op")
}

// fill creates a JSON stream of n small messages.
func fill(b *testing.B, c *durable.Client, stream string, n int) {
	ctx := context.Background()
	if _, err := c.Create(ctx, stream, durable.CreateOptions{ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	var buf []byte
	for i := 0; i < n; i += 10_000 {
		buf = append(buf[:0], '[')
		for j := i; j < min(i+10_000, n); j++ {
			if j > i {
				buf = append(buf, ',')
			}
			buf = fmt.Appendf(buf, `{"id":%d,"name":"user-%d","ok":true}`, j, j)
		}
		buf = append(buf, ']')
		if _, err := c.Append(ctx, stream, buf, durable.AppendOptions{ContentType: "application/json"}); err != nil {
			b.Fatal(err)
		}
	}
}

// catchUp reads the whole stream with a typed Reader and returns the number
// of messages.
func catchUp(b *testing.B, c *durable.Client, stream string, opt durable.ReaderOption) int {
	r, err := durable.NewReader[catchRec](c, stream, durable.WithLive(durable.LiveNone), durable.WithManualCommit(), opt)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	ctx := context.Background()
	n := 0
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, durable.ErrCaughtUp) {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		if m.Value.ID != n {
			b.Fatalf("message %d has id %d", n, m.Value.ID)
		}
		n++
	}
}
