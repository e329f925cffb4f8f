package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const bigSize = 1 << 20

var bigBody = bytes.Repeat([]byte("0123456789abcdef"), bigSize/16)

// backend is a plain HTTP server behind a proxy.
type backend struct {
	*httptest.Server
	hits atomic.Int64 // requests that reached a handler
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{}
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		_, _ = io.WriteString(w, "hello")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		_, _ = w.Write(bigBody)
	})
	mux.HandleFunc("/medium", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		_, _ = w.Write(bigBody[:20000])
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "started")
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	b.Server = httptest.NewServer(mux)
	t.Cleanup(b.Close)
	return b
}

func newProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := New(target)
	if err != nil {
		t.Fatalf("New(%q): %v", target, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// newClient returns a client with its own transport; keepAlive false gives
// every request a fresh connection.
func newClient(t *testing.T, keepAlive bool, timeout time.Duration) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: !keepAlive}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// get fetches url and returns the body read so far and the first error.
func get(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("status " + resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func mustGet(t *testing.T, c *http.Client, url string, want []byte) {
	t.Helper()
	body, err := get(c, url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if !bytes.Equal(body, want) {
		t.Fatalf("GET %s: got %d bytes, want %d", url, len(body), len(want))
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		path    string
		timeout time.Duration
		fault   func(p *Proxy)
		check   func(t *testing.T, body []byte, err error, elapsed time.Duration)
		clear   func(t *testing.T, p *Proxy)
		noHit   bool // the request must never reach the backend
	}{
		{
			name:  "refuse resets new connections",
			path:  "/small",
			fault: func(p *Proxy) { p.SetRefuse(true) },
			check: wantReset,
			clear: func(_ *testing.T, p *Proxy) { p.SetRefuse(false) },
			noHit: true,
		},
		{
			name:  "stopped listener refuses",
			path:  "/small",
			fault: func(p *Proxy) { p.Stop() },
			check: wantErr(syscall.ECONNREFUSED),
			clear: func(t *testing.T, p *Proxy) {
				if err := p.Restart(); err != nil {
					t.Fatalf("Restart: %v", err)
				}
			},
			noHit: true,
		},
		{
			name:  "reset before the response",
			path:  "/small",
			fault: func(p *Proxy) { p.ResetAfter(0, Downstream, 1) },
			check: wantReset,
		},
		{
			name:  "reset mid-body",
			path:  "/big",
			fault: func(p *Proxy) { p.ResetAfter(64<<10, Downstream, 1) },
			check: func(t *testing.T, body []byte, err error, _ time.Duration) {
				wantReset(t, body, err, 0)
				if len(body) >= bigSize {
					t.Errorf("got the whole body (%d bytes) despite the reset", len(body))
				}
			},
		},
		{
			name:  "truncated body",
			path:  "/big",
			fault: func(p *Proxy) { p.CloseAfter(64<<10, Downstream, 1) },
			check: func(t *testing.T, body []byte, err error, _ time.Duration) {
				wantErr(io.ErrUnexpectedEOF)(t, body, err, 0)
				if len(body) == 0 || len(body) >= bigSize {
					t.Errorf("got %d body bytes, want a strict non-empty prefix", len(body))
				}
			},
		},
		{
			name:  "reset while sending the request",
			path:  "/small",
			fault: func(p *Proxy) { p.ResetAfter(0, Upstream, 1) },
			check: wantReset,
			noHit: true,
		},
		{
			name:    "latency beyond the client timeout",
			path:    "/small",
			timeout: 100 * time.Millisecond,
			fault:   func(p *Proxy) { p.SetLatency(Downstream, 400*time.Millisecond) },
			check:   wantTimeout,
			clear:   func(_ *testing.T, p *Proxy) { p.SetLatency(Both, 0) },
		},
		{
			name:    "upstream latency delays the request",
			path:    "/small",
			timeout: 100 * time.Millisecond,
			fault:   func(p *Proxy) { p.SetLatency(Upstream, 400*time.Millisecond) },
			check:   wantTimeout,
			clear:   func(_ *testing.T, p *Proxy) { p.Clear() },
		},
		{
			name:  "bandwidth limit",
			path:  "/medium",
			fault: func(p *Proxy) { p.SetBandwidth(Downstream, 100_000) },
			check: func(t *testing.T, body []byte, err error, elapsed time.Duration) {
				if err != nil || len(body) != 20000 {
					t.Fatalf("got %d bytes, err %v; want 20000 bytes", len(body), err)
				}
				if elapsed < 150*time.Millisecond {
					t.Errorf("20000 bytes at 100000 B/s took %v, want >= 150ms", elapsed)
				}
			},
			clear: func(_ *testing.T, p *Proxy) { p.SetBandwidth(Both, 0) },
		},
		{
			name:    "slowloris",
			path:    "/small",
			timeout: 150 * time.Millisecond,
			fault:   func(p *Proxy) { p.SetSlowloris(Downstream, 20*time.Millisecond) },
			check:   wantTimeout,
			clear:   func(_ *testing.T, p *Proxy) { p.SetSlowloris(Downstream, 0) },
		},
		{
			name:    "blackhole",
			path:    "/small",
			timeout: 100 * time.Millisecond,
			fault:   func(p *Proxy) { p.SetBlackhole(true) },
			check:   wantTimeout,
			clear:   func(_ *testing.T, p *Proxy) { p.SetBlackhole(false) },
			noHit:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t)
			p := newProxy(t, b.URL)
			// Healthy first, without the test's short timeout: only the
			// faulty request may time out, never a slow healthy one.
			mustGet(t, newClient(t, false, 0), p.URL()+"/small", []byte("hello"))
			c := newClient(t, false, tt.timeout)
			hits := b.hits.Load()

			tt.fault(p)
			start := time.Now()
			body, err := get(c, p.URL()+tt.path)
			tt.check(t, body, err, time.Since(start))
			if tt.noHit && b.hits.Load() != hits {
				t.Errorf("request reached the backend despite the fault")
			}

			if tt.clear != nil {
				tt.clear(t, p)
			}
			want := []byte("hello")
			if tt.path != "/small" {
				want = bigBody
				if tt.path == "/medium" {
					want = bigBody[:20000]
				}
			}
			// A fresh client without the test's short timeout: a loaded
			// machine must not turn a restored service into a failure.
			mustGet(t, newClient(t, false, 0), p.URL()+tt.path, want)
		})
	}
}

func wantErr(target error) func(t *testing.T, body []byte, err error, _ time.Duration) {
	return func(t *testing.T, body []byte, err error, _ time.Duration) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("err = %v (%d body bytes), want errors.Is %v", err, len(body), target)
		}
	}
}

// wantReset wants the error of a connection the proxy reset. The transport
// reads and writes on separate goroutines, and Linux reports the RST once:
// whichever of them sees it gets ECONNRESET, and a write after that gets
// EPIPE, so either is the reset (a close with FIN gives neither: the write
// succeeds and the read ends with io.EOF).
func wantReset(t *testing.T, body []byte, err error, _ time.Duration) {
	t.Helper()
	if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("err = %v (%d body bytes), want ECONNRESET or EPIPE", err, len(body))
	}
}

func wantTimeout(t *testing.T, _ []byte, err error, _ time.Duration) {
	t.Helper()
	if !isTimeout(err) {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestResetAfterCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		keepAlive bool
	}{
		{"fresh connections", false},
		{"pooled keep-alive connection", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t)
			p := newProxy(t, b.URL)
			c := newClient(t, tt.keepAlive, 0)
			mustGet(t, c, p.URL()+"/small", []byte("hello")) // a pooled connection now exists
			// Mid-body, so the transport cannot retry a reused connection.
			p.ResetAfter(64<<10, Downstream, 2)
			if got := p.Pending(Downstream); got != 2 {
				t.Fatalf("Pending = %d, want 2", got)
			}
			for i := range 2 {
				if _, err := get(c, p.URL()+"/big"); !errors.Is(err, syscall.ECONNRESET) {
					t.Fatalf("request %d: err = %v, want ECONNRESET", i, err)
				}
			}
			if got := p.Pending(Downstream); got != 0 {
				t.Fatalf("Pending = %d, want 0", got)
			}
			mustGet(t, c, p.URL()+"/big", bigBody)
		})
	}
}

func TestCutAll(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p := newProxy(t, b.URL)
	c := newClient(t, true, 0)
	resp, err := c.Get(p.URL() + "/hang")
	if err != nil {
		t.Fatalf("GET /hang: %v", err)
	}
	defer resp.Body.Close()
	buf := make([]byte, len("started"))
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatalf("reading the first bytes: %v", err)
	}
	if n := p.CutAll(); n != 1 {
		t.Errorf("CutAll = %d, want 1", n)
	}
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("body after CutAll: err = %v, want ECONNRESET", err)
	}
	mustGet(t, c, p.URL()+"/small", []byte("hello"))
}

func TestClearWakesWaitingConnection(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p := newProxy(t, b.URL)
	c := newClient(t, false, 0)
	p.SetSlowloris(Downstream, time.Hour)
	type result struct {
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		body, err := get(c, p.URL()+"/small")
		done <- result{body, err}
	}()
	// Wait until the response is held by the proxy, then clear.
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().BytesDown == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	p.Clear()
	select {
	case r := <-done:
		if r.err != nil || string(r.body) != "hello" {
			t.Fatalf("got %q, %v", r.body, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Clear did not release the slowloris wait")
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p := newProxy(t, b.URL)
	c := newClient(t, false, 0)
	mustGet(t, c, p.URL()+"/big", bigBody)
	p.SetRefuse(true)
	_, _ = get(c, p.URL()+"/small")
	s := p.Stats()
	if s.Accepted != 2 || s.Refused != 1 {
		t.Errorf("Accepted=%d Refused=%d, want 2 and 1", s.Accepted, s.Refused)
	}
	if s.BytesDown < bigSize || s.BytesUp == 0 {
		t.Errorf("BytesDown=%d BytesUp=%d, want >= %d and > 0", s.BytesDown, s.BytesUp, bigSize)
	}
}

func TestCloseWhileBusy(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p, err := New(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, false, 0)
	p.SetSlowloris(Downstream, time.Hour)
	errc := make(chan error, 2)
	for _, path := range []string{"/hang", "/big"} {
		go func() {
			_, err := get(c, p.URL()+path)
			errc <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Open < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	for range 2 {
		if err := <-errc; err == nil {
			t.Error("a request succeeded through a closed proxy")
		}
	}
	if err := p.Restart(); !errors.Is(err, ErrClosed) {
		t.Errorf("Restart after Close: %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		target string
		ok     bool
	}{
		{"127.0.0.1:9", true},
		{"127.1.2.3:9", true},
		{"localhost:9", true},
		{"[::1]:9", true},
		{"http://127.0.0.1:9", true},
		{"http://localhost", true},
		{"10.0.0.1:80", false},
		{"example.com:80", false},
		{"http://192.168.1.1:8080", false},
		{"0.0.0.0:80", false},
		{"127.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			t.Parallel()
			p, err := New(tt.target)
			if tt.ok {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if !strings.HasPrefix(p.Addr(), "127.0.0.1:") || p.URL() != "http://"+p.Addr() {
					t.Errorf("Addr=%q URL=%q", p.Addr(), p.URL())
				}
				_ = p.Close()
				return
			}
			if err == nil {
				_ = p.Close()
				t.Fatal("New accepted a non-loopback target")
			}
		})
	}
	if _, err := New("10.0.0.1:80"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("err = %v, want ErrNotLoopback", err)
	}
}

func TestStopRestartKeepsAddr(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p := newProxy(t, b.URL)
	c := newClient(t, true, 0)
	addr := p.Addr()
	for i := range 3 {
		p.Stop()
		p.Stop() // idempotent
		if !p.Stopped() {
			t.Fatal("Stopped = false after Stop")
		}
		if _, err := get(c, p.URL()+"/small"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("round %d: err = %v, want ECONNREFUSED", i, err)
		}
		if err := p.Restart(); err != nil {
			t.Fatalf("Restart: %v", err)
		}
		if p.Addr() != addr {
			t.Fatalf("Addr changed: %s → %s", addr, p.Addr())
		}
		mustGet(t, c, p.URL()+"/small", []byte("hello"))
	}
}

func TestBackendDown(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p := newProxy(t, b.URL)
	b.Close()
	c := newClient(t, false, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/small", nil)
	resp, err := c.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatal("request succeeded with the backend down")
	}
	wantReset(t, nil, err, 0)
}

// TestConcurrentControl flips every fault from several goroutines while
// requests flow, for the race detector; service must come back after Clear.
func TestConcurrentControl(t *testing.T) {
	t.Parallel()
	b := newBackend(t)
	p := newProxy(t, b.URL)
	c := newClient(t, true, 200*time.Millisecond)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			switch i % 9 {
			case 0:
				p.SetRefuse(i%2 == 0)
			case 1:
				p.SetLatency(Both, time.Duration(i%3)*time.Millisecond)
			case 2:
				p.SetBandwidth(Downstream, int64(i%2)*1_000_000)
			case 3:
				p.SetSlowloris(Downstream, time.Duration(i%2)*time.Millisecond)
			case 4:
				p.ResetAfter(int64(i%500), Downstream, 1)
			case 5:
				p.CloseAfter(int64(i%500), Upstream, 1)
			case 6:
				p.SetBlackhole(i%2 == 0)
			case 7:
				p.CutAll()
			case 8:
				_ = p.Stats()
				p.Clear()
			}
			time.Sleep(time.Millisecond)
		}
	}()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for range 20 {
				_, _ = get(c, p.URL()+"/medium") // any outcome is fine
			}
			errs <- nil
		}()
	}
	for range 4 {
		<-errs
	}
	close(stop)
	<-done
	p.Clear()
	mustGet(t, newClient(t, false, 0), p.URL()+"/medium", bigBody[:20000])
}
