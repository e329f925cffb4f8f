package testserver

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// benchClient is a keep-alive HTTP client sized for parallel benchmarks.
func benchClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	tr.MaxConnsPerHost = 0
	return &http.Client{Transport: tr}
}

func jsonBatch(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"kind":"order.created","amount":1234,"ok":true}`, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func post(b *testing.B, c *http.Client, u string, body []byte, ct string) {
	req, _ := http.NewRequest("POST", u, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 204 && res.StatusCode != 200 {
		b.Fatalf("append status %d", res.StatusCode)
	}
}

// BenchmarkAppendBatched measures POSTs of 1 or 100 small JSON messages
// each, from parallel clients (one stream per client goroutine), over
// loopback HTTP, in memory and with a data directory (fsync per append).
// It reports appends/s (requests) and msgs/s.
func BenchmarkAppendBatched(b *testing.B) {
	type variant struct {
		name  string
		batch int
		opts  func(b *testing.B) []Option
	}
	mem := func(*testing.B) []Option { return nil }
	disk := func(b *testing.B) []Option { return []Option{WithDataDir(b.TempDir())} }
	for _, v := range []variant{
		{"batch=1", 1, mem}, {"batch=100", 100, mem}, {"batch=100/data-dir-fsync", 100, disk},
	} {
		batch := v.batch
		b.Run(v.name, func(b *testing.B) {
			srv := New(v.opts(b)...)
			defer srv.Close()
			c := benchClient()
			defer c.CloseIdleConnections()
			body := jsonBatch(batch)
			var id atomic.Int64
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				u := srv.StreamURL(fmt.Sprintf("bench/append/%d", id.Add(1)))
				req, _ := http.NewRequest("PUT", u, nil)
				req.Header.Set("Content-Type", ctJSON)
				res, err := c.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				res.Body.Close()
				for pb.Next() {
					post(b, c, u, body, ctJSON)
				}
			})
			el := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N)/el, "appends/s")
			b.ReportMetric(float64(b.N*batch)/el, "msgs/s")
		})
	}
}

// BenchmarkCatchUpRead measures reading a 32 MiB JSON stream from the start
// with catch-up GETs that follow Stream-Next-Offset (1 MiB chunks). It
// reports MB/s of response body and msgs/s.
func BenchmarkCatchUpRead(b *testing.B) {
	srv := New()
	defer srv.Close()
	c := benchClient()
	defer c.CloseIdleConnections()
	u := srv.StreamURL("bench/read")
	req, _ := http.NewRequest("PUT", u, nil)
	req.Header.Set("Content-Type", ctJSON)
	res, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	batch := jsonBatch(1000)
	var total int64
	msgs := 0
	for total < 32<<20 {
		post(b, c, u, batch, ctJSON)
		total += int64(len(batch))
		msgs += 1000
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var read int64
	for i := 0; i < b.N; i++ {
		offset := "-1"
		for {
			res, err := c.Get(u + "?offset=" + offset)
			if err != nil {
				b.Fatal(err)
			}
			for {
				n, err := res.Body.Read(buf)
				read += int64(n)
				if err != nil {
					break
				}
			}
			res.Body.Close()
			offset = res.Header.Get("Stream-Next-Offset")
			if res.Header.Get("Stream-Up-To-Date") == "true" {
				break
			}
		}
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(read)/el/1e6, "MB/s")
	b.ReportMetric(float64(msgs*b.N)/el, "msgs/s")
	if !strings.HasPrefix(u, "http") {
		b.Fatal("bad url")
	}
}

// discardWriter is a minimal http.ResponseWriter for in-process benchmarks.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// BenchmarkHandlerDirect measures the server's own cost, without sockets:
// requests are handed straight to Handler(). It reports appends/s and
// msgs/s for 100-message JSON batches and MB/s for 1 MiB catch-up reads.
func BenchmarkHandlerDirect(b *testing.B) {
	b.Run("append/batch=100", func(b *testing.B) {
		srv := New()
		defer srv.Close()
		h := srv.Handler()
		u := srv.StreamURL("direct/append")
		put, _ := http.NewRequest("PUT", u, nil)
		put.Header.Set("Content-Type", ctJSON)
		h.ServeHTTP(&discardWriter{h: http.Header{}}, put)
		body := jsonBatch(100)
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			req, _ := http.NewRequest("POST", u, bytes.NewReader(body))
			req.Header.Set("Content-Type", ctJSON)
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			if w.status != 204 {
				b.Fatalf("status %d", w.status)
			}
		}
		el := time.Since(start).Seconds()
		b.ReportMetric(float64(b.N)/el, "appends/s")
		b.ReportMetric(float64(b.N*100)/el, "msgs/s")
	})
	b.Run("read/1MiB", func(b *testing.B) {
		srv := New()
		defer srv.Close()
		h := srv.Handler()
		u := srv.StreamURL("direct/read")
		put, _ := http.NewRequest("PUT", u, nil)
		put.Header.Set("Content-Type", ctJSON)
		h.ServeHTTP(&discardWriter{h: http.Header{}}, put)
		batch := jsonBatch(1000)
		for i := 0; i < 64; i++ {
			req, _ := http.NewRequest("POST", u, bytes.NewReader(batch))
			req.Header.Set("Content-Type", ctJSON)
			h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
		}
		req, _ := http.NewRequest("GET", u+"?offset=-1", nil)
		b.ReportAllocs()
		b.ResetTimer()
		var n int
		start := time.Now()
		for i := 0; i < b.N; i++ {
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			n += w.n
		}
		el := time.Since(start).Seconds()
		b.SetBytes(int64(n / b.N))
		b.ReportMetric(float64(n)/el/1e6, "MB/s")
	})
}
