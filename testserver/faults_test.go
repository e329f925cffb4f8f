package testserver

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawCall is call without failing on transport errors.
func rawCall(method, url string, h hdrs, body string) (resp, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return resp{}, err
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, h: res.Header, body: string(b)}, err
}

func TestFaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		fault Fault
		// run does requests against stream url u and checks the outcome.
		run func(t *testing.T, srv *Server, u string)
	}{
		{"status with retry-after for count", Fault{Method: "POST", Status: 503, RetryAfter: 1500 * time.Millisecond, Count: 2}, func(t *testing.T, srv *Server, u string) {
			for i := 0; i < 2; i++ {
				r := call(t, "POST", u, text, "x")
				mustStatus(t, r, 503)
				if r.get("Retry-After") != "2" {
					t.Fatalf("Retry-After %q", r.get("Retry-After"))
				}
			}
			mustStatus(t, call(t, "POST", u, text, "y"), 204)
			if r := call(t, "GET", u, nil, ""); r.body != "y" {
				t.Fatalf("status faults applied data: %q", r.body)
			}
		}},
		{"method filter", Fault{Method: "GET", Status: 500}, func(t *testing.T, srv *Server, u string) {
			mustStatus(t, call(t, "POST", u, text, "x"), 204)
			mustStatus(t, call(t, "GET", u, nil, ""), 500)
			mustStatus(t, call(t, "HEAD", u, nil, ""), 200)
			srv.ClearFaults()
			mustStatus(t, call(t, "GET", u, nil, ""), 200)
		}},
		{"delay", Fault{Method: "GET", Delay: 150 * time.Millisecond, Count: 1}, func(t *testing.T, srv *Server, u string) {
			start := time.Now()
			mustStatus(t, call(t, "GET", u, nil, ""), 200)
			if d := time.Since(start); d < 140*time.Millisecond {
				t.Fatalf("no delay: %v", d)
			}
		}},
		{"drop is not applied", Fault{Method: "POST", Drop: true, Count: 1}, func(t *testing.T, srv *Server, u string) {
			if _, err := rawCall("POST", u, text, "x"); err == nil {
				t.Fatal("dropped request succeeded")
			}
			if r := call(t, "GET", u, nil, ""); r.body != "" {
				t.Fatalf("dropped append applied: %q", r.body)
			}
		}},
		{"drop after apply", Fault{Method: "POST", Drop: true, AfterApply: true, Count: 1}, func(t *testing.T, srv *Server, u string) {
			if _, err := rawCall("POST", u, text, "x"); err == nil {
				t.Fatal("dropped request succeeded")
			}
			if r := call(t, "GET", u, nil, ""); r.body != "x" {
				t.Fatalf("append not applied: %q", r.body)
			}
		}},
		{"status after apply", Fault{Method: "POST", Status: 502, AfterApply: true, Count: 1}, func(t *testing.T, srv *Server, u string) {
			mustStatus(t, call(t, "POST", u, text, "x"), 502)
			if r := call(t, "GET", u, nil, ""); r.body != "x" {
				t.Fatalf("append not applied: %q", r.body)
			}
		}},
		{"truncated read", Fault{Method: "GET", Truncate: true, Count: 1}, func(t *testing.T, srv *Server, u string) {
			mustStatus(t, call(t, "POST", u, text, "0123456789"), 204)
			r, err := rawCall("GET", u, nil, "")
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v, want unexpected EOF", err)
			}
			if r.status != 200 || r.body != "01234" {
				t.Fatalf("truncated response %d %q", r.status, r.body)
			}
			if r := call(t, "GET", u, nil, ""); r.body != "0123456789" {
				t.Fatalf("next read %q", r.body)
			}
		}},
		{"truncated sse", Fault{Method: "GET", Truncate: true, Count: 1}, func(t *testing.T, srv *Server, u string) {
			mustStatus(t, call(t, "POST", u, text, "0123456789"), 204)
			_, err := rawCall("GET", u+"?offset=-1&live=sse", nil, "")
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v, want unexpected EOF", err)
			}
		}},
		{"truncated append is not applied", Fault{Method: "POST", Truncate: true, Count: 1}, func(t *testing.T, srv *Server, u string) {
			if _, err := rawCall("POST", u, text, "x"); err == nil {
				t.Fatal("truncated response read cleanly")
			}
			if r := call(t, "GET", u, nil, ""); r.body != "" {
				t.Fatalf("append applied: %q", r.body)
			}
		}},
		{"probability one always hits", Fault{Method: "GET", Status: 500, Probability: 1}, func(t *testing.T, srv *Server, u string) {
			for i := 0; i < 3; i++ {
				mustStatus(t, call(t, "GET", u, nil, ""), 500)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t)
			u := srv.StreamURL("f")
			mustStatus(t, call(t, "PUT", u, text, ""), 201)
			f := tc.fault
			f.Path = "f"
			srv.InjectFault(f)
			srv.InjectFault(Fault{Path: "other", Status: 418}) // never matches this stream
			tc.run(t, srv, u)
		})
	}
}

func TestFaultProbability(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	u := srv.StreamURL("p")
	mustStatus(t, call(t, "PUT", u, text, ""), 201)
	srv.InjectFault(Fault{Method: "HEAD", Status: 500, Probability: 0.5})
	hits := 0
	for i := 0; i < 200; i++ {
		if call(t, "HEAD", u, nil, "").status == 500 {
			hits++
		}
	}
	if hits < 50 || hits > 150 {
		t.Fatalf("%d of 200 hit with probability 0.5", hits)
	}
}

func TestRequestAccounting(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	a, b := srv.StreamURL("acct/a"), srv.StreamURL("acct/b")
	mustStatus(t, call(t, "PUT", a, text, ""), 201)
	mustStatus(t, call(t, "POST", a, text, "x"), 204)
	mustStatus(t, call(t, "POST", a, text, ""), 400) // rejected requests count too
	mustStatus(t, call(t, "GET", b, nil, ""), 404)
	for _, tc := range []struct {
		path, method string
		want         int
	}{
		{"acct/a", "POST", 2}, {"acct/a", "PUT", 1}, {"acct/a", "", 3}, {"acct/b", "", 1},
		{"/acct/a", "POST", 2}, {"/v1/stream/acct/a", "POST", 2},
		{"", "GET", 1}, {"", "", 4}, {"acct/c", "", 0},
	} {
		if got := srv.Requests(tc.path, tc.method); got != tc.want {
			t.Errorf("Requests(%q, %q) = %d, want %d", tc.path, tc.method, got, tc.want)
		}
	}
	srv.ResetRequests()
	if got := srv.Requests("", ""); got != 0 {
		t.Fatalf("after reset: %d", got)
	}
}

func TestControlAPI(t *testing.T) {
	t.Parallel()
	t.Run("disabled by default", func(t *testing.T) {
		srv := newTestServer(t)
		mustStatus(t, call(t, "POST", srv.URL()+"/__ds/testserver/faults", nil, `{"status":500}`), 404)
	})
	t.Run("enabled", func(t *testing.T) {
		srv := newTestServer(t, WithFaultControl(true))
		u := srv.StreamURL("ctl")
		mustStatus(t, call(t, "PUT", u, text, ""), 201)
		mustStatus(t, call(t, "POST", srv.URL()+"/__ds/testserver/faults", nil, `{"path":"ctl","method":"post","status":429,"retryAfter":"3s","count":1}`), 204)
		r := call(t, "POST", u, text, "x")
		mustStatus(t, r, 429)
		if r.get("Retry-After") != "3" {
			t.Fatalf("Retry-After %q", r.get("Retry-After"))
		}
		mustStatus(t, call(t, "POST", u, text, "x"), 204)
		mustStatus(t, call(t, "POST", srv.URL()+"/v1/stream/__ds/testserver/faults", nil, `[{"method":"GET","status":500},{"delay":10}]`), 204)
		mustStatus(t, call(t, "GET", u, nil, ""), 500)
		mustStatus(t, call(t, "DELETE", srv.URL()+"/__ds/testserver/faults", nil, ""), 204)
		mustStatus(t, call(t, "GET", u, nil, ""), 200)
		mustStatus(t, call(t, "POST", srv.URL()+"/__ds/testserver/faults", nil, `{bad`), 400)

		r = call(t, "GET", srv.URL()+"/__ds/testserver/requests?path=ctl&method=POST", nil, "")
		mustStatus(t, r, 200)
		if !strings.Contains(r.body, `"count":2`) {
			t.Fatalf("requests: %s", r.body)
		}
		mustStatus(t, call(t, "DELETE", srv.URL()+"/__ds/testserver/requests", nil, ""), 204)
		if srv.Requests("", "") != 0 {
			t.Fatal("control reset did not reset")
		}
	})
	t.Run("paths in every form", func(t *testing.T) {
		srv := newTestServer(t, WithFaultControl(true))
		u := srv.StreamURL("p/q")
		mustStatus(t, call(t, "PUT", u, text, ""), 201)
		for _, p := range []string{"p/q", "/p/q", "/v1/stream/p/q", u} {
			body, _ := json.Marshal(map[string]any{"path": p, "status": 503, "count": 1})
			mustStatus(t, call(t, "POST", srv.URL()+"/__ds/testserver/faults", nil, string(body)), 204)
			mustStatus(t, call(t, "GET", u, nil, ""), 503)
			r := call(t, "GET", srv.URL()+"/__ds/testserver/requests?method=get&path="+url.QueryEscape(p), nil, "")
			mustStatus(t, r, 200)
			if !strings.HasPrefix(r.body, `{"count":`) || !strings.Contains(r.body, `{"path":"p/q","method":"GET","count":`) {
				t.Fatalf("requests?path=%s: %s", p, r.body)
			}
		}
		mustStatus(t, call(t, "GET", u, nil, ""), 200)
		mustStatus(t, call(t, "POST", srv.URL()+"/__ds/testserver/faults", nil, `[{"status":500},{"status":5}]`), 400)
		mustStatus(t, call(t, "GET", u, nil, ""), 200) // nothing of a refused body was added
	})
}
