package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkReaderLatency: live delivery latency, one message at a time,
// beside its ceilings, all against one in-process testserver:
//
//   - write/<mode>: from Writer.Write returning (WithLinger(0)) to the
//     message leaving a live Reader's Next (long-poll or SSE);
//   - append/<mode>: from just before Client.Append to Next;
//   - ceiling-roundtrip: one plain net/http GET round trip on a kept-alive
//     connection (the floor of any delivery: a live read needs at least
//     the append's round trip and the read's response);
//   - ceiling-net-http-longpoll: the same work as append/long-poll with
//     plain net/http: a POST, and a goroutine looping on long-poll GETs
//     decoding each body with encoding/json.
//
// p50/p99/max are reported in µs; ns/op is meaningless (0).
func BenchmarkReaderLatency(b *testing.B) {
	for _, mode := range []LiveMode{LiveLongPoll, LiveSSE} {
		b.Run("write/"+string(mode), func(b *testing.B) { benchLatencySDK(b, mode, true) })
		b.Run("append/"+string(mode), func(b *testing.B) { benchLatencySDK(b, mode, false) })
	}
	b.Run("ceiling-roundtrip", benchLatencyRoundTrip)
	b.Run("ceiling-net-http-longpoll", benchLatencyRawLongPoll)
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
	b.ReportMetric(us(lat[len(lat)*99/100]), "p99-µs")
	b.ReportMetric(us(lat[len(lat)-1]), "max-µs")
	b.ReportMetric(0, "ns/op")
}

func latencyBody(i int) []byte {
	return []byte(`{"id":` + strconv.Itoa(i) + `,"name":"x","ok":true}`)
}

func benchLatencySDK(b *testing.B, mode LiveMode, viaWriter bool) {
	_, c := benchServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.Create(ctx, "lat", CreateOptions{ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	r, err := NewReader(c, "lat", JSONCodec[benchRec]{}, WithLive(mode))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	var w *Writer[benchRec]
	if viaWriter {
		if w, err = NewWriter(c, "lat", JSONCodec[benchRec]{}, WithLinger(0)); err != nil {
			b.Fatal(err)
		}
		defer w.Close(context.Background())
		// First batch of an epoch goes alone: land it before measuring.
		if _, err := w.WriteSync(ctx, benchRec{ID: -1}); err != nil {
			b.Fatal(err)
		}
	}
	got := make(chan time.Time, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := r.Next(ctx)
			if err != nil {
				return
			}
			if m.Value.ID >= 0 {
				got <- time.Now()
			}
		}
	}()
	time.Sleep(50 * time.Millisecond) // let the reader catch up and go live
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var t0 time.Time
		if viaWriter {
			if err := w.Write(ctx, benchRec{ID: i, Name: "x", OK: true}); err != nil {
				b.Fatal(err)
			}
			t0 = time.Now()
		} else {
			t0 = time.Now()
			if _, err := c.Append(ctx, "lat", latencyBody(i), AppendOptions{ContentType: "application/json"}); err != nil {
				b.Fatal(err)
			}
		}
		t1 := <-got
		lat = append(lat, t1.Sub(t0))
	}
	b.StopTimer()
	cancel()
	<-done
	reportLatency(b, lat)
	b.ReportMetric(float64(r.Stats().Retries), "retries")
}

func benchLatencyRoundTrip(b *testing.B) {
	srv, c := benchServer(b)
	ctx := context.Background()
	if _, err := c.Create(ctx, "lat", CreateOptions{ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	res, err := c.Append(ctx, "lat", latencyBody(0), AppendOptions{ContentType: "application/json"})
	if err != nil {
		b.Fatal(err)
	}
	_ = res
	hc := &http.Client{Transport: benchTransport()}
	defer hc.CloseIdleConnections()
	u := srv.StreamURL("lat") + "?offset=-1"
	get := func() {
		resp, err := hc.Get(u)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get() // open the connection
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		get()
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	reportLatency(b, lat)
}

func benchLatencyRawLongPoll(b *testing.B) {
	srv, c := benchServer(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := c.Create(ctx, "lat", CreateOptions{ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	su := srv.StreamURL("lat")
	hc := &http.Client{Transport: benchTransport()}
	defer hc.CloseIdleConnections()
	got := make(chan time.Time, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		off := "now"
		var recs []benchRec
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, su+"?live=long-poll&offset="+url.QueryEscape(off), nil)
			resp, err := hc.Do(req)
			if err != nil {
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return
			}
			if next := resp.Header.Get("Stream-Next-Offset"); next != "" {
				off = next
			}
			if resp.StatusCode != http.StatusOK {
				continue
			}
			recs = recs[:0]
			if err := json.Unmarshal(body, &recs); err != nil {
				b.Error(err)
				return
			}
			if len(recs) > 0 {
				got <- time.Now()
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		resp, err := hc.Post(su, "application/json", bytes.NewReader(latencyBody(i)))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t1 := <-got
		lat = append(lat, t1.Sub(t0))
	}
	b.StopTimer()
	cancel()
	<-done
	reportLatency(b, lat)
}
