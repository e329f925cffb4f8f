package testserver

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// sseEvent is one parsed server-sent event.
type sseEvent struct{ typ, data string }

// readSSE reads events from an SSE body until EOF or n events.
func readSSE(t testing.TB, body io.Reader, n int) []sseEvent {
	t.Helper()
	sc := bufio.NewScanner(body)
	var out []sseEvent
	var cur sseEvent
	var lines []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.typ != "" {
				cur.data = strings.Join(lines, "\n")
				out = append(out, cur)
				if len(out) == n {
					return out
				}
			}
			cur, lines = sseEvent{}, nil
		case strings.HasPrefix(line, "event:"):
			cur.typ = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "data:"):
			v := line[5:]
			v = strings.TrimPrefix(v, " ")
			lines = append(lines, v)
		}
	}
	return out
}

type control struct {
	StreamNextOffset string `json:"streamNextOffset"`
	StreamCursor     string `json:"streamCursor"`
	UpToDate         bool   `json:"upToDate"`
	StreamClosed     bool   `json:"streamClosed"`
}

func parseControl(t testing.TB, e sseEvent) control {
	t.Helper()
	if e.typ != "control" {
		t.Fatalf("event %q is not control (data %q)", e.typ, e.data)
	}
	var c control
	if err := json.Unmarshal([]byte(e.data), &c); err != nil {
		t.Fatalf("control %q: %v", e.data, err)
	}
	return c
}

func openSSE(t testing.TB, ctx context.Context, u string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func TestLongPoll(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithLongPollTimeout(200*time.Millisecond))

	t.Run("wakes on append", func(t *testing.T) {
		t.Parallel()
		u := srv.StreamURL("lp/wake")
		mustStatus(t, call(t, "PUT", u, text, "ab"), 201)
		got := longPoll(t, srv, "lp/wake", u+"?offset="+off(2)+"&live=long-poll")
		mustStatus(t, call(t, "POST", u, text, "cd"), 204)
		r := <-got
		mustStatus(t, r, 200)
		if r.body != "cd" || r.get("Stream-Next-Offset") != off(4) || r.get("Stream-Cursor") == "" || r.get("Stream-Up-To-Date") != "true" {
			t.Fatalf("long-poll answer %q %v", r.body, r.h)
		}
	})
	t.Run("timeout is 204 with headers", func(t *testing.T) {
		t.Parallel()
		u := srv.StreamURL("lp/timeout")
		mustStatus(t, call(t, "PUT", u, text, "ab"), 201)
		start := time.Now()
		r := call(t, "GET", u+"?offset=now&live=long-poll", nil, "")
		mustStatus(t, r, 204)
		if time.Since(start) < 150*time.Millisecond {
			t.Fatalf("returned after %v, before the timeout", time.Since(start))
		}
		if r.get("Stream-Next-Offset") != off(2) || r.get("Stream-Up-To-Date") != "true" || r.get("Stream-Cursor") == "" || r.get("Stream-Closed") != "" {
			t.Fatalf("204 headers %v", r.h)
		}
	})
	t.Run("close wakes waiter with EOF", func(t *testing.T) {
		t.Parallel()
		u := srv.StreamURL("lp/close")
		mustStatus(t, call(t, "PUT", u, text, ""), 201)
		got := longPoll(t, srv, "lp/close", u+"?offset=now&live=long-poll")
		mustStatus(t, call(t, "POST", u, hdrs{"Stream-Closed": "true"}, ""), 204)
		r := <-got
		mustStatus(t, r, 204)
		if r.get("Stream-Closed") != "true" || r.get("Stream-Up-To-Date") != "true" {
			t.Fatalf("headers %v", r.h)
		}
	})
	t.Run("delete wakes waiter with 404", func(t *testing.T) {
		t.Parallel()
		u := srv.StreamURL("lp/delete")
		mustStatus(t, call(t, "PUT", u, text, ""), 201)
		got := longPoll(t, srv, "lp/delete", u+"?offset=now&live=long-poll")
		mustStatus(t, call(t, "DELETE", u, nil, ""), 204)
		mustStatus(t, <-got, 404)
	})
	t.Run("cursor jitter is monotonic", func(t *testing.T) {
		t.Parallel()
		u := srv.StreamURL("lp/cursor")
		mustStatus(t, call(t, "PUT", u, text, "x"), 201)
		r := call(t, "GET", u+"?offset=-1&live=long-poll", nil, "")
		c1, _ := strconv.ParseInt(r.get("Stream-Cursor"), 10, 64)
		for _, sent := range []int64{c1, c1 + 1000} {
			r = call(t, "GET", u+"?offset=-1&live=long-poll&cursor="+strconv.FormatInt(sent, 10), nil, "")
			c2, _ := strconv.ParseInt(r.get("Stream-Cursor"), 10, 64)
			if c2 <= sent {
				t.Fatalf("cursor %d not greater than sent %d", c2, sent)
			}
		}
		r = call(t, "GET", u+"?offset=-1&live=long-poll&cursor=1", nil, "")
		if c, _ := strconv.ParseInt(r.get("Stream-Cursor"), 10, 64); c != c1 && c != c1+1 {
			t.Fatalf("old cursor: got %d, want current interval %d", c, c1)
		}
	})
}

func TestSSE(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithSSECloseInterval(2*time.Second))
	ctx := context.Background()

	t.Run("json catch-up then live then close", func(t *testing.T) {
		t.Parallel()
		u := srv.StreamURL("sse/json")
		mustStatus(t, call(t, "PUT", u, jsonH, `[{"a":1},{"b":"x\ny"}]`), 201)
		res := openSSE(t, ctx, u+"?offset=-1&live=sse")
		if res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("Stream-Sse-Data-Encoding") != "" {
			t.Fatalf("headers %v", res.Header)
		}
		ev := readSSE(t, res.Body, 2)
		if ev[0].typ != "data" || ev[0].data != `[{"a":1},{"b":"x\ny"}]` {
			t.Fatalf("data event %+v", ev[0])
		}
		c := parseControl(t, ev[1])
		if c.StreamNextOffset == "" || !c.UpToDate || c.StreamCursor == "" || c.StreamClosed {
			t.Fatalf("control %+v", c)
		}
		mustStatus(t, call(t, "POST", u, hdrs{"Content-Type": ctJSON, "Stream-Closed": "true"}, `{"end":true}`), 204)
		ev = readSSE(t, res.Body, 3)
		if len(ev) != 2 || ev[0].data != `[{"end":true}]` {
			t.Fatalf("events after close %+v", ev)
		}
		c = parseControl(t, ev[1])
		if !c.StreamClosed || c.StreamCursor != "" {
			t.Fatalf("final control %+v", c)
		}
	})
	t.Run("binary is base64", func(t *testing.T) {
		t.Parallel()
		u := srv.StreamURL("sse/bin")
		payload := string([]byte{0, 1, 2, 255, '\n', '\r'})
		mustStatus(t, call(t, "PUT", u, hdrs{"Content-Type": "application/octet-stream"}, payload), 201)
		res := openSSE(t, ctx, u+"?offset=-1&live=sse")
		if res.Header.Get("Stream-Sse-Data-Encoding") != "base64" {
			t.Fatalf("headers %v", res.Header)
		}
		ev := readSSE(t, res.Body, 2)
		dec, err := base64.StdEncoding.DecodeString(ev[0].data)
		if err != nil || string(dec) != payload {
			t.Fatalf("decoded %q, %v", dec, err)
		}
	})
	t.Run("text lines and injection", func(t *testing.T) {
		t.Parallel()
		u := srv.StreamURL("sse/text")
		payload := " lead\r\n\r\nevent: control\rdata: x\nend"
		mustStatus(t, call(t, "PUT", u, text, payload), 201)
		res := openSSE(t, ctx, u+"?offset=-1&live=sse")
		ev := readSSE(t, res.Body, 2)
		if ev[0].typ != "data" || ev[0].data != " lead\n\nevent: control\ndata: x\nend" {
			t.Fatalf("data %q", ev[0].data)
		}
		parseControl(t, ev[1])
	})
	t.Run("closed stream at tail closes at once", func(t *testing.T) {
		t.Parallel()
		u := srv.StreamURL("sse/closed")
		mustStatus(t, call(t, "PUT", u, hdrs{"Content-Type": ctText, "Stream-Closed": "true"}, "z"), 201)
		res := openSSE(t, ctx, u+"?offset=now&live=sse")
		ev := readSSE(t, res.Body, 10)
		if len(ev) != 1 {
			t.Fatalf("events %+v", ev)
		}
		if c := parseControl(t, ev[0]); !c.StreamClosed || !c.UpToDate || c.StreamNextOffset != off(1) {
			t.Fatalf("control %+v", c)
		}
	})
	t.Run("periodic close", func(t *testing.T) {
		t.Parallel()
		srv2 := newTestServer(t, WithSSECloseInterval(100*time.Millisecond))
		u := srv2.StreamURL("sse/periodic")
		mustStatus(t, call(t, "PUT", u, text, ""), 201)
		start := time.Now()
		res := openSSE(t, ctx, u+"?offset=-1&live=sse")
		ev := readSSE(t, res.Body, 10) // ends at EOF
		if len(ev) != 1 || !parseControl(t, ev[0]).UpToDate {
			t.Fatalf("events %+v", ev)
		}
		if d := time.Since(start); d < 90*time.Millisecond || d > 5*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	t.Run("missing stream and bad offset", func(t *testing.T) {
		t.Parallel()
		mustStatus(t, call(t, "GET", srv.StreamURL("sse/none")+"?offset=-1&live=sse", nil, ""), 404)
		mustStatus(t, call(t, "GET", srv.StreamURL("sse/none")+"?live=sse", nil, ""), 400)
	})
}

func TestCloseWithWaitingReaders(t *testing.T) {
	t.Parallel()
	srv := New(WithLongPollTimeout(time.Hour), WithSSECloseInterval(time.Hour))
	u := srv.StreamURL("shutdown")
	mustStatus(t, call(t, "PUT", u, text, ""), 201)
	// Each waiting long-poll is answered as a long-poll timeout (204 with
	// the tail), never left with no answer: the requests' contexts end
	// with the server's, and the handler must not take that for a client
	// gone away (an empty 200, without Stream-Next-Offset).
	const polls, streams = 12, 4
	errs := make(chan error, polls+streams)
	for i := 0; i < polls; i++ {
		go func() {
			res, err := http.Get(u + "?offset=now&live=long-poll")
			if err == nil {
				res.Body.Close()
				if res.StatusCode != http.StatusNoContent || res.Header.Get(protocol.HeaderNextOffset) == "" {
					err = fmt.Errorf("long-poll at shutdown answered %d, Stream-Next-Offset %q", res.StatusCode, res.Header.Get(protocol.HeaderNextOffset))
				}
			}
			errs <- err
		}()
	}
	for i := 0; i < streams; i++ {
		go func() {
			res, err := http.Get(u + "?offset=now&live=sse")
			if err == nil {
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			errs <- err
		}()
	}
	for srv.Waiting("shutdown") < polls+streams {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	srv.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	for i := 0; i < polls+streams; i++ {
		if err := <-errs; err != nil && strings.Contains(err.Error(), "long-poll at shutdown") {
			t.Error(err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	srv.Close() // idempotent
}

func TestHandlerAfterClose(t *testing.T) {
	t.Parallel()
	srv := New()
	srv.Close()
	rec := newRecorder(http.Header{}, httptestRequest(t))
	srv.Handler().ServeHTTP(rec, rec.req)
	rec.cancel()
	if rec.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d after Close", rec.status)
	}
}

func httptestRequest(t *testing.T) *http.Request {
	t.Helper()
	r, err := http.NewRequest("GET", "http://example.com/v1/stream/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSlowReaderDoesNotBlockOthers: a client that requests a large body and
// never reads it must not hold up other requests.
func TestSlowReaderDoesNotBlockOthers(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithChunkLimit(64<<20), WithMaxBodySize(64<<20))
	u := srv.StreamURL("slow")
	mustStatus(t, call(t, "PUT", u, hdrs{"Content-Type": "application/octet-stream"}, bodyBytes(48<<20, 'x')), 201)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/stream/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // let the server block on the unread body (test only)
	done := make(chan struct{})
	go func() {
		defer close(done)
		mustStatus(t, call(t, "POST", u, hdrs{"Content-Type": "application/octet-stream"}, "y"), 204)
		mustStatus(t, call(t, "HEAD", u, nil, ""), 200)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("requests blocked behind a slow reader")
	}
}

// TestWaitAtShutdownIsNotGone: at Close, a waiting request's context ends
// with the server's (its BaseContext), so both are done when the wait
// wakes. That is a shutdown, answered as a long-poll timeout, never a
// client gone away (which gets no answer: net/http sends an empty 200
// without Stream-Next-Offset, a protocol violation for the client). The
// old wait picked either at random.
func TestWaitAtShutdownIsNotGone(t *testing.T) {
	t.Parallel()
	srv := New()
	srv.Close()
	ctx, cancel := context.WithCancel(srv.baseCtx)
	cancel()
	r := httptestRequest(t).WithContext(ctx)
	for i := 0; i < 64; i++ {
		if got := srv.waitOn(r, "x", nil, nil); got != waitShutdown {
			t.Fatalf("wait %d at shutdown: %v, want waitShutdown", i, got)
		}
	}
}
