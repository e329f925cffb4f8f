package testserver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHTTP2 runs a long-poll, an SSE response and an append over HTTP/2,
// with TLS (ALPN) and without (h2c, prior knowledge), and checks on both
// ends that HTTP/2 was what travelled.
func TestHTTP2(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"tls", []Option{WithTLS(nil)}},
		{"h2c", []Option{WithUnencryptedHTTP2(true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, tc.opts...)
			hc := srv.Client()
			defer hc.CloseIdleConnections()
			do := func(method, url, ctype, body string) *http.Response {
				t.Helper()
				req, err := http.NewRequest(method, url, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if ctype != "" {
					req.Header.Set("Content-Type", ctype)
				}
				res, err := hc.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, url, err)
				}
				if res.ProtoMajor != 2 {
					t.Fatalf("%s %s: client got %s", method, url, res.Proto)
				}
				return res
			}
			u := srv.StreamURL("h2")
			res := do("PUT", u, "text/plain", "")
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("create: %d", res.StatusCode)
			}

			// A long-poll waits on its stream until an append wakes it.
			lp := make(chan string, 1)
			go func() {
				res, err := hc.Get(u + "?offset=now&live=long-poll")
				if err != nil {
					lp <- err.Error()
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				lp <- res.Proto + " " + string(b)
			}()
			for srv.Waiting("h2") == 0 {
				time.Sleep(time.Millisecond)
			}
			res = do("POST", u, "text/plain", "hello")
			res.Body.Close()
			if got := <-lp; got != "HTTP/2.0 hello" {
				t.Fatalf("long-poll: %q", got)
			}

			// SSE: the data so far, then an event for a later append on the
			// same open response.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", u+"?offset=-1&live=sse", nil)
			sres, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer sres.Body.Close()
			if sres.ProtoMajor != 2 {
				t.Fatalf("SSE over %s", sres.Proto)
			}
			if ev := readSSE(t, sres.Body, 1); len(ev) != 1 || ev[0].typ != "data" || ev[0].data != "hello" {
				t.Fatalf("first SSE events %+v", ev)
			}
			res = do("POST", u, "text/plain", "again")
			res.Body.Close()
			var ev []sseEvent
			for len(ev) == 0 || ev[len(ev)-1].typ != "data" {
				more := readSSE(t, sres.Body, 1)
				if len(more) == 0 {
					t.Fatalf("SSE ended after %+v", ev)
				}
				ev = append(ev, more...)
			}
			if last := ev[len(ev)-1]; last.data != "again" {
				t.Fatalf("SSE event after the append %+v", last)
			}
			cancel()

			protos := srv.ProtocolRequests()
			if protos["HTTP/2.0"] != 5 || len(protos) != 1 {
				t.Fatalf("server saw %v, want 5 requests over HTTP/2.0 only", protos)
			}
		})
	}
}

// TestUnencryptedHTTP2KeepsHTTP1 checks that a server with h2c on still
// serves HTTP/1.1 clients on the same port.
func TestUnencryptedHTTP2KeepsHTTP1(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithUnencryptedHTTP2(true))
	r := call(t, "PUT", srv.StreamURL("h1"), hdrs{"Content-Type": "text/plain"}, "x")
	if r.status != http.StatusCreated {
		t.Fatalf("status %d", r.status)
	}
	if p := srv.ProtocolRequests(); p["HTTP/1.1"] != 1 || len(p) != 1 {
		t.Fatalf("server saw %v", p)
	}
}

// TestHTTP2Faults checks that a dropped connection and a truncated body,
// which hijack the connection over HTTP/1.1, reach an HTTP/2 client as a
// failed request and as a body cut short.
func TestHTTP2Faults(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithUnencryptedHTTP2(true))
	hc := srv.Client()
	defer hc.CloseIdleConnections()
	u := srv.StreamURL("f")
	if r := call(t, "PUT", u, hdrs{"Content-Type": "text/plain"}, strings.Repeat("x", 1000)); r.status != http.StatusCreated {
		t.Fatalf("create: %d", r.status)
	}
	srv.InjectFault(Fault{Path: "f", Method: "GET", Drop: true, Count: 1})
	if res, err := hc.Get(u + "?offset=-1"); err == nil {
		res.Body.Close()
		t.Fatalf("dropped request answered %d", res.StatusCode)
	}
	srv.InjectFault(Fault{Path: "f", Method: "GET", Truncate: true, Count: 1})
	res, err := hc.Get(u + "?offset=-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil || res.StatusCode != http.StatusOK || res.ContentLength != 1000 || len(b) != 500 {
		t.Fatalf("truncated read: status %d, length %d, read %d bytes, err %v", res.StatusCode, res.ContentLength, len(b), err)
	}
	// The connection carries on.
	res, err = hc.Get(u + "?offset=-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || len(b) != 1000 || res.ProtoMajor != 2 {
		t.Fatalf("read after faults: %d bytes over %s, err %v", len(b), res.Proto, err)
	}
}
