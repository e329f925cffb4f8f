package durable

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

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
type benchMsg struct {
	ID      int    `json:"id"`
	Payload string `json:"payload"`
}

func newBenchMsg(id int) benchMsg {
	m := benchMsg{ID: id}
	// {"id":1234567,"payload":"..."}: pad the payload so the total is 100.
	m.Payload = strings.Repeat("x", 100-len(fmt.Sprintf(`{"id":%d,"payload":""}`, id)))
	return m
}

func benchEnv(b *testing.B, contentType string) (*testserver.Server, *Client) {
	b.Helper()
	srv := testserver.New()
	b.Cleanup(srv.Close)
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

func startClock() benchClock { return benchClock{wall: time.Now(), cpu: processCPU()} }

func reportWriterRate(b *testing.B, start benchClock) {
	el := time.Since(start.wall).Seconds()
	b.ReportMetric(float64(b.N)/el, "msgs/s")
	if cpu := processCPU() - start.cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
	}
}

func BenchmarkWriter(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("json100B/writers=%d", writers), func(b *testing.B) {
			benchWriterJSON(b, writers)
		})
		b.Run(fmt.Sprintf("json100B/ceiling-net-http/writers=%d", writers), func(b *testing.B) {
			benchCeilingJSON(b, writers)
		})
		b.Run(fmt.Sprintf("json100B-preencoded/writers=%d", writers), func(b *testing.B) {
			benchWriterRawJSON(b, writers)
		})
	}
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("bytes1MiB/writers=%d", writers), func(b *testing.B) {
			benchWriterBig(b, writers)
		})
		b.Run(fmt.Sprintf("bytes1MiB/ceiling-net-http/writers=%d", writers), func(b *testing.B) {
			benchCeilingBig(b, writers)
		})
	}
}

func benchWriterJSON(b *testing.B, writers int) {
	_, c := benchEnv(b, "application/json")
	ctx := context.Background()
	msgs := make([]benchMsg, 1000)
	for i := range msgs {
		msgs[i] = newBenchMsg(1000000 + i)
	}
	ws := make([]*Writer[benchMsg], writers)
	for i := range ws {
		w, err := NewWriter[benchMsg](c, "bench")
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
	}
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	start := startClock()
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := shareOf(b.N, writers, i)
			for j := range n {
				if err := w.Write(ctx, msgs[j%len(msgs)]); err != nil {
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
	reportWriterRate(b, start)
}

// postAll sends each body with plain net/http POSTs from `writers`
// goroutines, batches split evenly.
func postAll(b *testing.B, url, contentType string, bodies [][]byte, writers int) {
	hc := &http.Client{Transport: benchTransport()}
	defer hc.CloseIdleConnections()
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

func benchCeilingJSON(b *testing.B, writers int) {
	srv, _ := benchEnv(b, "application/json")
	// Pre-encoded batches of DefaultWriterMaxBatchMessages messages, like
	// the Writer's under load.
	var enc []byte
	enc = append(enc, '[')
	for i := range DefaultWriterMaxBatchMessages {
		if i > 0 {
			enc = append(enc, ',')
		}
		m := newBenchMsg(1000000 + i)
		enc = fmt.Appendf(enc, `{"id":%d,"payload":%q}`, m.ID, m.Payload)
	}
	enc = append(enc, ']')
	var bodies [][]byte
	for left := b.N; left > 0; left -= DefaultWriterMaxBatchMessages {
		n := min(left, DefaultWriterMaxBatchMessages)
		if n == DefaultWriterMaxBatchMessages {
			bodies = append(bodies, enc)
			continue
		}
		// n messages: 101 bytes each with its comma.
		bodies = append(bodies, append(append([]byte{}, enc[:1+n*101-1]...), ']'))
	}
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	start := startClock()
	postAll(b, srv.StreamURL("bench"), "application/json", bodies, writers)
	reportWriterRate(b, start)
}

func benchWriterBig(b *testing.B, writers int) {
	_, c := benchEnv(b, "application/octet-stream")
	ctx := context.Background()
	msg := bytes.Repeat([]byte{'a'}, 1<<20)
	ws := make([]*Writer[[]byte], writers)
	for i := range ws {
		w, err := NewWriter[[]byte](c, "bench")
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
	}
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	start := startClock()
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range shareOf(b.N, writers, i) {
				if err := w.Write(ctx, msg); err != nil {
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
	reportWriterRate(b, start)
}

func benchCeilingBig(b *testing.B, writers int) {
	srv, _ := benchEnv(b, "application/octet-stream")
	msg := bytes.Repeat([]byte{'a'}, 1<<20)
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = msg
	}
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	start := startClock()
	postAll(b, srv.StreamURL("bench"), "application/octet-stream", bodies, writers)
	reportWriterRate(b, start)
}

// benchWriterRawJSON is benchWriterJSON with messages already encoded
// (Writer[[]byte] on a JSON stream: each message is only checked with
// json.Valid), to separate the Writer's cost from encoding/json's.
func benchWriterRawJSON(b *testing.B, writers int) {
	_, c := benchEnv(b, "application/json")
	ctx := context.Background()
	msgs := make([][]byte, 1000)
	for i := range msgs {
		m := newBenchMsg(1000000 + i)
		msgs[i] = fmt.Appendf(nil, `{"id":%d,"payload":%q}`, m.ID, m.Payload)
	}
	ws := make([]*Writer[[]byte], writers)
	for i := range ws {
		w, err := NewWriter[[]byte](c, "bench", WithContentType("application/json"))
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = w
	}
	b.SetBytes(100)
	b.ReportAllocs()
	b.ResetTimer()
	start := startClock()
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := shareOf(b.N, writers, i)
			for j := range n {
				if err := w.Write(ctx, msgs[j%len(msgs)]); err != nil {
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
	reportWriterRate(b, start)
}
