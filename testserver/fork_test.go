package testserver

import (
	"fmt"
	"testing"
	"time"
)

func forkH(src string, extra ...string) hdrs {
	h := hdrs{"Stream-Forked-From": "/v1/stream/" + src}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func TestForks(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	cases := []struct {
		name  string
		steps func(src, fork string) []step
	}{
		{"default offset is the tail, content type inherited", func(src, fork string) []step {
			return []step{
				{method: "PUT", path: src, h: text, body: "abc", status: 201},
				{method: "PUT", path: fork, h: forkH(src), status: 201, want: map[string]string{"Content-Type": ctText, "Stream-Next-Offset": off(3)}},
				{method: "POST", path: src, h: text, body: "SRC", status: 204},
				{method: "POST", path: fork, h: text, body: "FORK", status: 204},
				{method: "GET", path: fork, status: 200, wantBody: str("abcFORK"), want: map[string]string{"Stream-Forked-From": ""}},
				{method: "GET", path: src, status: 200, wantBody: str("abcSRC")},
				{method: "PUT", path: fork, h: forkH(src), status: 200},
				{method: "PUT", path: fork, h: hdrs{"Stream-Forked-From": src}, status: 200},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Offset", off(0)), status: 409},
			}
		}},
		{"explicit offset, sub-offsets and errors", func(src, fork string) []step {
			return []step{
				{method: "PUT", path: src, h: text, body: "first", status: 201},
				{method: "POST", path: src, h: text, body: "second", status: 204},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Offset", off(12)), status: 400},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Offset", "bogus"), status: 400},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Offset", off(5), "Stream-Fork-Sub-Offset", "7"), status: 400},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Offset", off(5), "Stream-Fork-Sub-Offset", "05"), status: 400},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Sub-Offset", "1"), status: 400},
				{method: "PUT", path: fork, h: hdrs{"Stream-Fork-Sub-Offset": "0"}, status: 400},
				{method: "PUT", path: fork, h: forkH("nope/" + src), status: 404},
				{method: "PUT", path: fork, h: forkH(src, "Content-Type", ctJSON), status: 409},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Offset", off(5), "Stream-Fork-Sub-Offset", "3"), body: "XY", status: 201, want: map[string]string{"Stream-Next-Offset": off(10)}},
				{method: "GET", path: fork, status: 200, wantBody: str("firstsecXY")},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Offset", off(5), "Stream-Fork-Sub-Offset", "3"), status: 200},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Offset", off(5), "Stream-Fork-Sub-Offset", "2"), status: 409},
			}
		}},
		{"json sub-offset counts messages", func(src, fork string) []step {
			return []step{
				{method: "PUT", path: src, h: jsonH, body: `[{"a":1},{"b":2},{"c":3}]`, status: 201},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Offset", off(0), "Stream-Fork-Sub-Offset", "4"), status: 400},
				{method: "PUT", path: fork, h: forkH(src, "Stream-Fork-Offset", off(0), "Stream-Fork-Sub-Offset", "2"), status: 201},
				{method: "POST", path: fork, h: jsonH, body: `"z"`, status: 204},
				{method: "GET", path: fork, status: 200, wantBody: str(`[{"a":1},{"b":2},"z"]`)},
			}
		}},
		{"producer state is not inherited; closed source forks open", func(src, fork string) []step {
			p := func(seq string) hdrs {
				return hdrs{"Content-Type": ctText, "Producer-Id": "w", "Producer-Epoch": "3", "Producer-Seq": seq}
			}
			return []step{
				{method: "PUT", path: src, h: text, status: 201},
				{method: "POST", path: src, h: p("0"), body: "a", status: 200},
				{method: "POST", path: src, h: hdrs{"Stream-Closed": "true"}, status: 204},
				{method: "PUT", path: fork, h: forkH(src), status: 201, want: map[string]string{"Stream-Closed": ""}},
				{method: "POST", path: fork, h: p("1"), body: "b", status: 409, want: map[string]string{"Producer-Expected-Seq": "0"}}, // the fork has no state for w: a gap, not a continuation
				{method: "POST", path: fork, h: p("0"), body: "b", status: 200},
				{method: "GET", path: fork, status: 200, wantBody: str("ab")},
			}
		}},
		{"soft delete and cascade", func(src, fork string) []step {
			fork2 := fork + "/2"
			return []step{
				{method: "PUT", path: src, h: text, body: "abc", status: 201},
				{method: "PUT", path: fork, h: forkH(src), status: 201},
				{method: "PUT", path: fork2, h: forkH(fork, "Stream-Fork-Offset", off(1)), status: 201},
				{method: "DELETE", path: src, status: 204},
				{method: "GET", path: src, status: 410},
				{method: "HEAD", path: src, status: 410},
				{method: "POST", path: src, h: text, body: "x", status: 410},
				{method: "DELETE", path: src, status: 410},
				{method: "PUT", path: src, h: text, status: 409},
				{method: "PUT", path: fork + "/3", h: forkH(src), status: 409},
				{method: "DELETE", path: fork, status: 204},
				{method: "GET", path: fork, status: 410},
				{method: "GET", path: fork2, status: 200, wantBody: str("a")},
				{method: "DELETE", path: fork2, status: 204},
				{method: "GET", path: fork, status: 404},
				{method: "GET", path: src, status: 404},
				{method: "PUT", path: src, h: text, status: 201},
			}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := fmt.Sprintf("forks/%d/src", i)
			runSteps(t, srv, "", tc.steps(src, fmt.Sprintf("forks/%d/fork", i)))
		})
	}
}

func TestForkLongPollWaitsForOwnAppends(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithLongPollTimeout(300*time.Millisecond))
	src, fork := srv.StreamURL("flp/src"), srv.StreamURL("flp/fork")
	mustStatus(t, call(t, "PUT", src, text, "ab"), 201)
	mustStatus(t, call(t, "PUT", fork, forkH("flp/src"), ""), 201)
	// Inherited data returns at once.
	r := call(t, "GET", fork+"?offset=-1&live=long-poll", nil, "")
	if r.status != 200 || r.body != "ab" {
		t.Fatalf("inherited read %d %q", r.status, r.body)
	}
	got := longPoll(t, srv, "flp/fork", fork+"?offset="+off(2)+"&live=long-poll")
	mustStatus(t, call(t, "POST", src, text, "S"), 204) // must not wake the fork reader
	mustStatus(t, call(t, "POST", fork, text, "F"), 204)
	if r := <-got; r.status != 200 || r.body != "F" {
		t.Fatalf("fork long-poll %d %q", r.status, r.body)
	}
}

func TestForkTTLInheritance(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	srv := newTestServer(t, WithClock(clk.Now))
	at := clk.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	cases := []struct {
		name        string
		src, fork   hdrs
		ttl, expiry string
	}{
		{"none/none", hdrs{}, hdrs{}, "", ""},
		{"ttl/none inherits ttl", hdrs{"Stream-TTL": "100"}, hdrs{}, "100", ""},
		{"ttl/ttl", hdrs{"Stream-TTL": "100"}, hdrs{"Stream-TTL": "5"}, "5", ""},
		{"expires/none inherits expiry", hdrs{"Stream-Expires-At": at}, hdrs{}, "", at},
		{"expires/ttl", hdrs{"Stream-Expires-At": at}, hdrs{"Stream-TTL": "7"}, "7", ""},
		{"none/expires", hdrs{}, hdrs{"Stream-Expires-At": at}, "", at},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := fmt.Sprintf("fttl/%d/src", i)
			mustStatus(t, call(t, "PUT", srv.StreamURL(src), tc.src, ""), 201)
			h := forkH(src)
			for k, v := range tc.fork {
				h[k] = v
			}
			mustStatus(t, call(t, "PUT", srv.StreamURL(src+"/fork"), h, ""), 201)
			r := call(t, "HEAD", srv.StreamURL(src+"/fork"), nil, "")
			if r.get("Stream-TTL") != tc.ttl || r.get("Stream-Expires-At") != tc.expiry {
				t.Fatalf("fork TTL %q expires %q", r.get("Stream-TTL"), r.get("Stream-Expires-At"))
			}
		})
	}
	// An expired source with a live fork becomes soft-deleted (410).
	mustStatus(t, call(t, "PUT", srv.StreamURL("fttl/x"), hdrs{"Stream-TTL": "10"}, "d"), 201)
	mustStatus(t, call(t, "PUT", srv.StreamURL("fttl/x/f"), forkH("fttl/x", "Stream-TTL", "1000"), ""), 201)
	clk.Advance(11 * time.Second)
	mustStatus(t, call(t, "GET", srv.StreamURL("fttl/x"), nil, ""), 410)
	if r := call(t, "GET", srv.StreamURL("fttl/x/f"), nil, ""); r.body != "d" {
		t.Fatalf("fork after source expiry: %d %q", r.status, r.body)
	}
}
