package offsetstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
)

// BenchmarkReaderCommit: the cost of commits on a durable.Reader's
// throughput, with a File (write temp, fsync, rename, fsync dir per save):
// catch-up of commitMessages small JSON messages with no commit at all
// (the ceiling), with the default interval commit (1 s, and at the end),
// and with Commit after every message. One op = the whole stream.
// BenchmarkFileSave gives the File's raw commits/s.
func BenchmarkReaderCommit(b *testing.B) {
	const commitMessages = 5000
	srv := testserver.New()
	defer srv.Close()
	c, err := durable.NewClient(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	ctx := context.Background()
	if _, err := c.Create(ctx, "commit", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	body := []byte{'['}
	for i := range commitMessages {
		if i > 0 {
			body = append(body, ',')
		}
		body = fmt.Appendf(body, `{"id":%d,"name":"user-%d","ok":true}`, i, i)
	}
	body = append(body, ']')
	if _, err := c.Append(ctx, "commit", body, durable.AppendOptions{ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"none", "interval", "per-message"} {
		b.Run(mode, func(b *testing.B) {
			st, err := offsetstore.OpenFile(filepath.Join(b.TempDir(), "offsets.json"))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var commits int64
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				opts := []durable.Option{durable.WithLive(durable.LiveNone), durable.WithStore(st), durable.WithKey(fmt.Sprint("k", i))}
				if mode != "interval" {
					opts = append(opts, durable.WithManualCommit())
				}
				r, err := durable.NewReader(c, "commit", durable.JSONCodec[commitRec]{}, opts...)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					m, err := r.Next(ctx)
					if errors.Is(err, durable.ErrCaughtUp) {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if mode == "per-message" {
						if err := r.Commit(ctx, m.Position); err != nil {
							b.Fatal(err)
						}
					}
					n++
				}
				if n != commitMessages {
					b.Fatalf("read %d messages", n)
				}
				commits += r.Stats().Commits
				r.Close(context.Background())
			}
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(commitMessages*b.N)/el, "msgs/s")
			b.ReportMetric(float64(commits)/float64(b.N), "commits/op")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// commitRec is the message of BenchmarkReaderCommit.
type commitRec struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	OK   bool   `json:"ok"`
}
