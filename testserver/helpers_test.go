package testserver

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// hdrs is a compact header list for requests: "Name: value" pairs.
type hdrs map[string]string

type resp struct {
	status int
	h      http.Header
	body   string
}

func (r resp) get(name string) string { return r.h.Get(name) }

// call performs one request against srv and returns the whole response.
func call(t testing.TB, method, url string, h hdrs, body string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp{status: res.StatusCode, h: res.Header, body: string(b)}
}

// newServer starts a server closed at the end of the test.
func newTestServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := New(opts...)
	t.Cleanup(s.Close)
	return s
}

func mustStatus(t testing.TB, r resp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d (body %q)", r.status, want, r.body)
	}
}

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func bodyBytes(n int, b byte) string { return string(bytes.Repeat([]byte{b}, n)) }

func off(pos int64) string { return formatOffset(pos) }

// longPoll sends a long-poll GET of url from another goroutine and
// returns once the server holds it waiting on stream name; its answer
// comes on the channel.
func longPoll(t testing.TB, srv *Server, name, url string) <-chan resp {
	t.Helper()
	got := make(chan resp, 1)
	go func() { got <- call(t, "GET", url, nil, "") }()
	for srv.Waiting(name) == 0 {
		time.Sleep(time.Millisecond)
	}
	return got
}
