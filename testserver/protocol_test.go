package testserver

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// step is one request in a scripted scenario and what it must answer.
type step struct {
	method string
	path   string // stream path; "" = the scenario's stream
	query  string
	h      hdrs
	body   string

	status   int
	wantBody *string           // exact body, when set
	want     map[string]string // headers that must equal (value "" = must be absent)
}

func str(s string) *string { return &s }

func runSteps(t *testing.T, srv *Server, stream string, steps []step) {
	t.Helper()
	for i, st := range steps {
		p := st.path
		if p == "" {
			p = stream
		}
		u := srv.StreamURL(p)
		if st.query != "" {
			u += "?" + st.query
		}
		r := call(t, st.method, u, st.h, st.body)
		if r.status != st.status {
			t.Fatalf("step %d %s %s: status %d, want %d (body %q)", i, st.method, u, r.status, st.status, r.body)
		}
		if st.wantBody != nil && r.body != *st.wantBody {
			t.Fatalf("step %d %s: body %q, want %q", i, st.method, r.body, *st.wantBody)
		}
		for k, v := range st.want {
			if got := r.get(k); got != v {
				t.Fatalf("step %d %s: header %s = %q, want %q", i, st.method, k, got, v)
			}
		}
	}
}

const (
	ctText = "text/plain"
	ctJSON = "application/json"
)

var (
	text  = hdrs{"Content-Type": ctText}
	jsonH = hdrs{"Content-Type": ctJSON}
)

func TestProtocolRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		steps []step
	}{
		{"create 201 then idempotent 200 then 409 on other type", []step{
			{method: "PUT", h: text, status: 201, want: map[string]string{"Stream-Next-Offset": off(0), "Content-Type": ctText}},
			{method: "PUT", h: hdrs{"Content-Type": "TEXT/PLAIN"}, status: 200},
			{method: "PUT", h: jsonH, status: 409},
		}},
		{"create default content type", []step{
			{method: "PUT", status: 201, want: map[string]string{"Content-Type": "application/octet-stream"}},
			{method: "PUT", status: 200},
		}},
		{"create with body sets tail", []step{
			{method: "PUT", h: text, body: "hello", status: 201, want: map[string]string{"Stream-Next-Offset": off(5)}},
			{method: "GET", status: 200, wantBody: str("hello"), want: map[string]string{"Stream-Up-To-Date": "true"}},
		}},
		{"closure matching on create", []step{
			{method: "PUT", h: hdrs{"Content-Type": ctText, "Stream-Closed": "true"}, body: "x", status: 201, want: map[string]string{"Stream-Closed": "true"}},
			{method: "PUT", h: text, status: 409},
			{method: "PUT", h: hdrs{"Content-Type": ctText, "Stream-Closed": "TRUE"}, status: 200},
			{method: "POST", h: text, body: "y", status: 409, want: map[string]string{"Stream-Closed": "true", "Stream-Next-Offset": off(1)}},
		}},
		{"open stream then PUT closed is 409", []step{
			{method: "PUT", h: text, status: 201},
			{method: "PUT", h: hdrs{"Content-Type": ctText, "Stream-Closed": "true"}, status: 409},
			{method: "PUT", h: hdrs{"Content-Type": ctText, "Stream-Closed": "yes"}, status: 200},
		}},
		{"TTL and expiry validation", []step{
			{method: "PUT", h: hdrs{"Stream-TTL": "03600"}, status: 400},
			{method: "PUT", h: hdrs{"Stream-TTL": "+1"}, status: 400},
			{method: "PUT", h: hdrs{"Stream-TTL": "1.5"}, status: 400},
			{method: "PUT", h: hdrs{"Stream-TTL": "1e3"}, status: 400},
			{method: "PUT", h: hdrs{"Stream-TTL": "-1"}, status: 400},
			{method: "PUT", h: hdrs{"Stream-Expires-At": "tomorrow"}, status: 400},
			{method: "PUT", h: hdrs{"Stream-TTL": "60", "Stream-Expires-At": "2030-01-01T00:00:00Z"}, status: 400},
			{method: "HEAD", status: 404},
			{method: "PUT", h: hdrs{"Stream-TTL": "60"}, status: 201},
			{method: "PUT", h: hdrs{"Stream-TTL": "60"}, status: 200},
			{method: "PUT", h: hdrs{"Stream-TTL": "61"}, status: 409},
			{method: "PUT", status: 409},
			{method: "HEAD", status: 200, want: map[string]string{"Stream-TTL": "60", "Cache-Control": "no-store"}},
		}},
		{"append rules", []step{
			{method: "POST", h: text, body: "x", status: 404},
			{method: "PUT", h: text, status: 201},
			{method: "POST", h: text, status: 400},
			{method: "POST", body: "x", status: 400},
			{method: "POST", h: jsonH, body: "{}", status: 409},
			{method: "POST", h: hdrs{"Content-Type": "text/plain; charset=utf-8"}, body: "ab", status: 204, want: map[string]string{"Stream-Next-Offset": off(2)}},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Stream-Seq": "09"}, body: "c", status: 204},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Stream-Seq": "10"}, body: "d", status: 204},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Stream-Seq": "10"}, body: "e", status: 409},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Stream-Seq": "9"}, body: "e", status: 204},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Stream-Seq": "10"}, body: "f", status: 409},
			{method: "GET", status: 200, wantBody: str("abcde")},
		}},
		{"JSON flattening and validation", []step{
			{method: "PUT", h: jsonH, body: "[]", status: 201, want: map[string]string{"Stream-Next-Offset": off(0)}},
			{method: "GET", status: 200, wantBody: str("[]")},
			{method: "POST", h: jsonH, body: "[]", status: 400},
			{method: "POST", h: jsonH, body: " [ ] ", status: 400},
			{method: "POST", h: jsonH, body: "{bad", status: 400},
			{method: "POST", h: jsonH, body: `{"a":1}`, status: 204},
			{method: "POST", h: jsonH, body: `[1, "x,]", [2,3], {"b":[4]}]`, status: 204},
			{method: "POST", h: jsonH, body: `[[[5]]]`, status: 204},
			{method: "GET", status: 200, wantBody: str(`[{"a":1},1,"x,]",[2,3],{"b":[4]},[[5]]]`)},
		}},
		{"close only, idempotent close, append after close", []step{
			{method: "PUT", h: text, body: "ab", status: 201},
			{method: "POST", h: hdrs{"Stream-Closed": "true", "Content-Type": "application/json"}, status: 204, want: map[string]string{"Stream-Closed": "true", "Stream-Next-Offset": off(2)}},
			{method: "POST", h: hdrs{"Stream-Closed": "true"}, status: 204, want: map[string]string{"Stream-Closed": "true"}},
			{method: "POST", h: hdrs{"Stream-Closed": "true", "Content-Type": ctText}, body: "z", status: 409, want: map[string]string{"Stream-Closed": "true"}},
			{method: "GET", status: 200, wantBody: str("ab"), want: map[string]string{"Stream-Closed": "true", "Stream-Up-To-Date": "true"}},
			{method: "GET", query: "offset=" + off(2), status: 200, wantBody: str(""), want: map[string]string{"Stream-Closed": "true"}},
			{method: "GET", query: "offset=" + off(2) + "&live=long-poll", status: 204, want: map[string]string{"Stream-Closed": "true", "Stream-Up-To-Date": "true"}},
			{method: "GET", query: "offset=now", status: 200, wantBody: str(""), want: map[string]string{"Stream-Closed": "true", "Cache-Control": "no-store"}},
			{method: "HEAD", status: 200, want: map[string]string{"Stream-Closed": "true"}},
		}},
		{"atomic append and close", []step{
			{method: "PUT", h: text, status: 201},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Stream-Closed": "true"}, body: "end", status: 204, want: map[string]string{"Stream-Closed": "true", "Stream-Next-Offset": off(3)}},
			{method: "GET", status: 200, wantBody: str("end"), want: map[string]string{"Stream-Closed": "true"}},
		}},
		{"read offsets", []step{
			{method: "PUT", h: text, body: "0123456789", status: 201},
			{method: "GET", query: "offset=-1", status: 200, wantBody: str("0123456789")},
			{method: "GET", query: "offset=" + off(4), status: 200, wantBody: str("456789"), want: map[string]string{"Stream-Next-Offset": off(10)}},
			{method: "GET", query: "offset=now", status: 200, wantBody: str(""), want: map[string]string{"Stream-Next-Offset": off(10), "Stream-Up-To-Date": "true", "ETag": ""}},
			{method: "GET", query: "offset=", status: 400},
			{method: "GET", query: "offset=a&offset=b", status: 400},
			{method: "GET", query: "offset=0,1", status: 400},
			{method: "GET", query: "offset=" + off(11), status: 400},
			{method: "GET", query: "offset=" + strings.Repeat("9", 300), status: 400},
			{method: "GET", query: "live=long-poll", status: 400},
			{method: "GET", query: "offset=-1&live=sometimes", status: 400},
			{method: "GET", query: "offset=-1&x=y", status: 200},
		}},
		{"JSON offsets must be message boundaries", []step{
			{method: "PUT", h: jsonH, body: `[1,2]`, status: 201, want: map[string]string{"Stream-Next-Offset": off(4)}},
			{method: "GET", query: "offset=" + off(2), status: 200, wantBody: str("[2]")},
			{method: "GET", query: "offset=" + off(1), status: 400},
			{method: "GET", query: "offset=now", status: 200, wantBody: str("[]")},
		}},
		{"delete", []step{
			{method: "DELETE", status: 404},
			{method: "PUT", h: text, body: "old", status: 201},
			{method: "DELETE", status: 204},
			{method: "GET", status: 404},
			{method: "HEAD", status: 404},
			{method: "PUT", h: text, body: "new", status: 201},
			{method: "GET", status: 200, wantBody: str("new")},
		}},
		{"idempotent producer rules", []step{
			{method: "PUT", h: text, status: 201},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p"}, body: "x", status: 400},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "", "Producer-Epoch": "0", "Producer-Seq": "0"}, body: "x", status: 400},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "01", "Producer-Seq": "0"}, body: "x", status: 400},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "9007199254740992"}, body: "x", status: 400},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "1"}, body: "x", status: 400},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "0"}, body: "a", status: 200, want: map[string]string{"Producer-Epoch": "0", "Producer-Seq": "0"}},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "1"}, body: "b", status: 200, want: map[string]string{"Producer-Seq": "1"}},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "0"}, body: "a", status: 204, want: map[string]string{"Producer-Seq": "1"}},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "3"}, body: "d", status: 409, want: map[string]string{"Producer-Expected-Seq": "2", "Producer-Received-Seq": "3"}},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "2", "Producer-Seq": "1"}, body: "x", status: 400},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "2", "Producer-Seq": "0"}, body: "c", status: 200, want: map[string]string{"Producer-Epoch": "2"}},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "1", "Producer-Seq": "5"}, body: "z", status: 403, want: map[string]string{"Producer-Epoch": "2"}},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "q", "Producer-Epoch": "0", "Producer-Seq": "0"}, body: "q", status: 200},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "2", "Producer-Seq": "1", "Stream-Closed": "true"}, body: "E", status: 200, want: map[string]string{"Stream-Closed": "true"}},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "2", "Producer-Seq": "1", "Stream-Closed": "true"}, body: "other", status: 204, want: map[string]string{"Stream-Closed": "true"}},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "2", "Producer-Seq": "2"}, body: "late", status: 409, want: map[string]string{"Stream-Closed": "true"}},
			{method: "GET", status: 200, wantBody: str("abcqE")},
		}},
		{"producer close-only", []step{
			{method: "PUT", h: text, status: 201},
			{method: "POST", h: hdrs{"Stream-Closed": "true", "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "0"}, status: 204, want: map[string]string{"Stream-Closed": "true", "Producer-Seq": "0"}},
			{method: "POST", h: hdrs{"Stream-Closed": "true", "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "0"}, status: 204, want: map[string]string{"Stream-Closed": "true"}},
		}},
		{"bad paths", []step{
			{method: "PUT", path: "a/../b", status: 400},
			{method: "PUT", path: "a//b", status: 400},
			{method: "PUT", path: "a%2Fb", status: 400},
			{method: "PUT", path: "__ds/x", status: 404},
			{method: "PUT", path: strings.Repeat("p", 2000), status: 400},
			{method: "PATCH", status: 405},
		}},
	}
	srv := newTestServer(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runSteps(t, srv, fmt.Sprintf("rules/%d", i), tc.steps)
		})
	}
}

func TestSecurityAndCORSHeaders(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	u := srv.StreamURL("sec")
	for _, tc := range []struct {
		method string
		h      hdrs
		body   string
	}{
		{"PUT", text, ""}, {"POST", text, "x"}, {"GET", nil, ""}, {"HEAD", nil, ""}, {"GET", nil, ""},
		{"OPTIONS", hdrs{"Origin": "http://example.com", "Access-Control-Request-Headers": "If-None-Match"}, ""},
	} {
		t.Run(tc.method, func(t *testing.T) {
			r := call(t, tc.method, u, tc.h, tc.body)
			if r.get("X-Content-Type-Options") != "nosniff" || r.get("Cross-Origin-Resource-Policy") != "cross-origin" {
				t.Fatalf("security headers missing: %v", r.h)
			}
			if r.get("Access-Control-Allow-Origin") == "" || !strings.Contains(r.get("Access-Control-Expose-Headers"), "Stream-Next-Offset") {
				t.Fatalf("CORS headers missing: %v", r.h)
			}
			if tc.method == "OPTIONS" && !strings.Contains(r.get("Access-Control-Allow-Headers"), "If-None-Match") {
				t.Fatalf("preflight does not allow If-None-Match: %v", r.h)
			}
		})
	}
	r := call(t, "GET", srv.StreamURL("missing"), nil, "")
	mustStatus(t, r, 404)
	if r.get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(r.get("Content-Type"), "text/plain") {
		t.Fatalf("error response headers: %v", r.h)
	}
}

func TestETagAndNotModified(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	u := srv.StreamURL("etag")
	mustStatus(t, call(t, "PUT", u, text, "abc"), 201)
	r1 := call(t, "GET", u+"?offset=-1", nil, "")
	tag := r1.get("ETag")
	if tag == "" {
		t.Fatal("no ETag")
	}
	mustStatus(t, call(t, "GET", u+"?offset=-1", hdrs{"If-None-Match": tag}, ""), 304)
	mustStatus(t, call(t, "GET", u+"?offset=-1", hdrs{"If-None-Match": `"other"`}, ""), 200)
	// Closing without new data changes the ETag.
	mustStatus(t, call(t, "POST", u, hdrs{"Stream-Closed": "true"}, ""), 204)
	r2 := call(t, "GET", u+"?offset=-1", hdrs{"If-None-Match": tag}, "")
	mustStatus(t, r2, 200)
	if r2.get("ETag") == tag || r2.get("Stream-Closed") != "true" {
		t.Fatalf("closure-aware ETag: %q vs %q, closed %q", r2.get("ETag"), tag, r2.get("Stream-Closed"))
	}
}

func TestChunkLimit(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithChunkLimit(10))
	t.Run("bytes", func(t *testing.T) {
		u := srv.StreamURL("chunk/bytes")
		data := bodyBytes(25, 'x')
		mustStatus(t, call(t, "PUT", u, text, data), 201)
		var got strings.Builder
		offset := "-1"
		for i := 0; ; i++ {
			r := call(t, "GET", u+"?offset="+offset, nil, "")
			mustStatus(t, r, 200)
			got.WriteString(r.body)
			offset = r.get("Stream-Next-Offset")
			if r.get("Stream-Up-To-Date") == "true" {
				break
			}
			if len(r.body) != 10 || i > 5 {
				t.Fatalf("partial chunk of %d bytes", len(r.body))
			}
		}
		if got.String() != data {
			t.Fatalf("got %q", got.String())
		}
	})
	t.Run("json whole messages", func(t *testing.T) {
		u := srv.StreamURL("chunk/json")
		mustStatus(t, call(t, "PUT", u, jsonH, `["aaaaaaaaaaaaaaaa","b","c"]`), 201)
		r := call(t, "GET", u, nil, "")
		if r.body != `["aaaaaaaaaaaaaaaa"]` || r.get("Stream-Up-To-Date") != "" {
			t.Fatalf("first chunk %q up-to-date %q", r.body, r.get("Stream-Up-To-Date"))
		}
		r = call(t, "GET", u+"?offset="+r.get("Stream-Next-Offset"), nil, "")
		if r.body != `["b","c"]` || r.get("Stream-Up-To-Date") != "true" {
			t.Fatalf("second chunk %q", r.body)
		}
	})
}

func TestBodyLimit(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithMaxBodySize(8))
	u := srv.StreamURL("limit")
	mustStatus(t, call(t, "PUT", u, text, bodyBytes(9, 'a')), 413)
	mustStatus(t, call(t, "PUT", u, text, ""), 201)
	mustStatus(t, call(t, "POST", u, text, bodyBytes(9, 'a')), 413)
	mustStatus(t, call(t, "POST", u, text, bodyBytes(8, 'a')), 204)
	r := call(t, "GET", u, nil, "")
	if r.body != bodyBytes(8, 'a') {
		t.Fatalf("body %q", r.body)
	}
}

func TestTTLWithClock(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	srv := newTestServer(t, WithClock(clk.Now))
	u := srv.StreamURL("ttl")
	mustStatus(t, call(t, "PUT", u, hdrs{"Stream-TTL": "10"}, "x"), 201)
	clk.Advance(9 * time.Second)
	mustStatus(t, call(t, "HEAD", u, nil, ""), 200) // HEAD does not renew
	clk.Advance(2 * time.Second)
	mustStatus(t, call(t, "GET", u, nil, ""), 404)
	mustStatus(t, call(t, "PUT", u, hdrs{"Stream-TTL": "10"}, ""), 201)
	clk.Advance(9 * time.Second)
	mustStatus(t, call(t, "GET", u, nil, ""), 200) // renews
	clk.Advance(9 * time.Second)
	mustStatus(t, call(t, "HEAD", u, nil, ""), 200)

	exp := srv.StreamURL("expires")
	at := clk.Now().Add(5 * time.Second).Format(time.RFC3339)
	mustStatus(t, call(t, "PUT", exp, hdrs{"Stream-Expires-At": at}, ""), 201)
	r := call(t, "HEAD", exp, nil, "")
	if r.get("Stream-Expires-At") != at {
		t.Fatalf("Stream-Expires-At %q want %q", r.get("Stream-Expires-At"), at)
	}
	clk.Advance(5 * time.Second)
	mustStatus(t, call(t, "POST", exp, hdrs{"Content-Type": "application/octet-stream"}, "x"), 404)
}

func TestConcurrentProducerIsSerialised(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	u := srv.StreamURL("serial")
	mustStatus(t, call(t, "PUT", u, text, ""), 201)
	mustStatus(t, call(t, "POST", u, hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "0"}, "0"), 200)
	// The same batch retried concurrently many times lands exactly once.
	done := make(chan int, 20)
	for i := 0; i < 20; i++ {
		go func() {
			req, _ := http.NewRequest("POST", u, strings.NewReader("1"))
			req.Header.Set("Content-Type", ctText)
			req.Header.Set("Producer-Id", "p")
			req.Header.Set("Producer-Epoch", "0")
			req.Header.Set("Producer-Seq", "1")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			res.Body.Close()
			done <- res.StatusCode
		}()
	}
	ok := 0
	for i := 0; i < 20; i++ {
		if <-done == 200 {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d requests applied, want 1", ok)
	}
	if r := call(t, "GET", u, nil, ""); r.body != "01" {
		t.Fatalf("body %q", r.body)
	}
}

// TestBadInputChangesNothing sends malformed requests at an existing stream:
// each gets its 4xx with a short text/plain message, the stream is unchanged
// and the server keeps serving.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithMaxBodySize(1024))
	u := srv.StreamURL("bad/s")
	mustStatus(t, call(t, "PUT", u, hdrs{"Content-Type": ctJSON, "Stream-TTL": "3600"}, `[1,2]`), 201)
	cases := []struct {
		name   string
		method string
		url    string
		h      hdrs
		body   string
		status int
	}{
		{"PUT garbage content type", "PUT", srv.StreamURL("bad/new"), hdrs{"Content-Type": "garbage"}, "", 400},
		{"PUT non-canonical TTL", "PUT", srv.StreamURL("bad/new"), hdrs{"Stream-TTL": "1_000"}, "", 400},
		{"PUT invalid JSON body", "PUT", srv.StreamURL("bad/new"), jsonH, "{", 400},
		{"PUT too large", "PUT", srv.StreamURL("bad/new"), text, bodyBytes(1025, 'x'), 413},
		{"PUT conflicting config", "PUT", u, jsonH, "", 409},
		{"POST invalid JSON", "POST", u, jsonH, `[1,`, 400},
		{"POST empty array", "POST", u, jsonH, `[]`, 400},
		{"POST wrong type", "POST", u, text, `3`, 409},
		{"POST garbage content type", "POST", u, hdrs{"Content-Type": "nonsense"}, `3`, 400},
		{"POST empty body", "POST", u, jsonH, "", 400},
		{"POST empty body, Stream-Closed not true", "POST", u, hdrs{"Stream-Closed": "yes"}, "", 400},
		{"POST partial producer headers", "POST", u, hdrs{"Content-Type": ctJSON, "Producer-Id": "p", "Producer-Seq": "0"}, `3`, 400},
		{"POST producer epoch too large", "POST", u, hdrs{"Content-Type": ctJSON, "Producer-Id": "p", "Producer-Epoch": "9007199254740992", "Producer-Seq": "0"}, `3`, 400},
		{"POST producer seq negative", "POST", u, hdrs{"Content-Type": ctJSON, "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "-1"}, `3`, 400},
		{"POST over-long Stream-Seq", "POST", u, hdrs{"Content-Type": ctJSON, "Stream-Seq": strings.Repeat("9", 2000)}, `3`, 400},
		{"POST too large", "POST", u, jsonH, "[" + strings.Repeat("1,", 600) + "1]", 413},
		{"GET unicode offset", "GET", u + "?offset=%E2%82%AC", nil, "", 400},
		{"GET over-long offset", "GET", u + "?offset=" + strings.Repeat("0", 257), nil, "", 400},
		{"GET unknown live mode", "GET", u + "?offset=-1&live=websocket", nil, "", 400},
		{"traversal", "GET", srv.URL() + "/v1/stream/bad/../bad/s", nil, "", 400},
		{"encoded traversal", "GET", srv.URL() + "/v1/stream/bad/%2e%2e/bad/s", nil, "", 400},
		{"encoded slash", "GET", srv.URL() + "/v1/stream/bad%2Fs", nil, "", 400},
		{"encoded NUL", "PUT", srv.URL() + "/v1/stream/bad%00s", nil, "", 400},
		{"backslash", "PUT", srv.URL() + "/v1/stream/bad%5Cs", nil, "", 400},
		{"reserved prefix", "PUT", srv.URL() + "/v1/stream/__ds/subscriptions/x", nil, "", 404},
		{"outside the prefix", "GET", srv.URL() + "/elsewhere", nil, "", 404},
		{"over-long path", "PUT", srv.StreamURL(strings.Repeat("a/", 600)), nil, "", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tc.method, tc.url, tc.h, tc.body)
			mustStatus(t, r, tc.status)
			if !strings.HasPrefix(r.get("Content-Type"), "text/plain") || len(r.body) == 0 || len(r.body) > 200 {
				t.Fatalf("error body %q (%s)", r.body, r.get("Content-Type"))
			}
		})
	}
	r := call(t, "GET", u, nil, "")
	if r.status != 200 || r.body != "[1,2]" || r.get("Stream-Next-Offset") != off(4) {
		t.Fatalf("stream changed: %d %q %s", r.status, r.body, r.get("Stream-Next-Offset"))
	}
	mustStatus(t, call(t, "HEAD", srv.StreamURL("bad/new"), nil, ""), 404)
}

func TestChunkedBodyLimit(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithMaxBodySize(16))
	u := srv.StreamURL("chunked")
	mustStatus(t, call(t, "PUT", u, text, ""), 201)
	for _, tc := range []struct {
		n    int
		want int
	}{{16, 204}, {17, 413}} {
		// io.MultiReader hides the length, so the client sends chunked.
		req, _ := http.NewRequest("POST", u, io.MultiReader(strings.NewReader(bodyBytes(tc.n, 'z'))))
		req.Header.Set("Content-Type", ctText)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Fatalf("%d bytes chunked: status %d, want %d", tc.n, res.StatusCode, tc.want)
		}
	}
}

func TestCustomPrefixAndHandlerMount(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithPrefix("streams"), WithFaultControl(true))
	if got := srv.StreamURL("/a/b"); got != srv.URL()+"/streams/a/b" {
		t.Fatalf("StreamURL %q", got)
	}
	mustStatus(t, call(t, "PUT", srv.StreamURL("a/b"), text, "x"), 201)
	mustStatus(t, call(t, "GET", srv.URL()+"/v1/stream/a/b", nil, ""), 404)
	mustStatus(t, call(t, "GET", srv.URL()+"/streams/__ds/testserver/requests", nil, ""), 200)
	if srv.Requests("/streams/a/b", "PUT") != 1 {
		t.Fatal("request not counted under the custom prefix")
	}

	// Handler mounted in another server's mux.
	mux := http.NewServeMux()
	mux.Handle("/streams/", srv.Handler())
	other := httptest.NewServer(mux)
	defer other.Close()
	r := call(t, "GET", other.URL+"/streams/a/b", nil, "")
	if r.status != 200 || r.body != "x" {
		t.Fatalf("mounted handler: %d %q", r.status, r.body)
	}
}
