package testserver

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSubscriptionCreate: §6.2 validation, the config hash (201 / 200 /
// 409) and its normalization.
func TestSubscriptionCreate(t *testing.T) {
	t.Parallel()
	const base = `{"type":"pull-wake","pattern":"events/*","streams":["b","a"],"wake_stream":"wake/pool","lease_ttl_ms":2000,"description":"d"}`
	cases := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"same again", base, 200, ""},
		{"streams reordered, duplicated, slashed", `{"type":"pull-wake","pattern":"/events/*/","streams":["a","/b","a"],"wake_stream":"wake/pool","lease_ttl_ms":2000,"description":"d"}`, 200, ""},
		{"other description", strings.Replace(base, `"d"`, `"e"`, 1), 409, "SUBSCRIPTION_ALREADY_EXISTS"},
		{"no description", strings.Replace(base, `,"description":"d"`, ``, 1), 409, "SUBSCRIPTION_ALREADY_EXISTS"},
		{"other lease", strings.Replace(base, `2000`, `3000`, 1), 409, "SUBSCRIPTION_ALREADY_EXISTS"},
		{"other pattern", strings.Replace(base, `events/*`, `events/**`, 1), 409, "SUBSCRIPTION_ALREADY_EXISTS"},
		{"other streams", strings.Replace(base, `"b","a"`, `"a"`, 1), 409, "SUBSCRIPTION_ALREADY_EXISTS"},
		{"other wake stream", strings.Replace(base, `wake/pool`, `wake/other`, 1), 409, "SUBSCRIPTION_ALREADY_EXISTS"},
		{"other type", `{"type":"webhook","pattern":"events/*","webhook":{"url":"http://127.0.0.1:1/h"}}`, 409, "SUBSCRIPTION_ALREADY_EXISTS"},
	}
	e := newSubEnv(t)
	e.put("s", base, 201)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.want(e.do("PUT", "subscriptions/s", "", c.body), c.status, c.code)
		})
	}

	bad := []struct{ name, body, code string }{
		{"not JSON", `{`, "INVALID_REQUEST"},
		{"array", `[]`, "INVALID_REQUEST"},
		{"no type", `{"pattern":"a/*","wake_stream":"w"}`, "INVALID_REQUEST"},
		{"unknown type", `{"type":"push","pattern":"a/*"}`, "INVALID_REQUEST"},
		{"no pattern or streams", `{"type":"pull-wake","wake_stream":"w"}`, "INVALID_REQUEST"},
		{"empty streams", `{"type":"pull-wake","streams":[],"wake_stream":"w"}`, "INVALID_REQUEST"},
		{"stream not a string", `{"type":"pull-wake","streams":[1],"wake_stream":"w"}`, "INVALID_REQUEST"},
		{"stream traversal", `{"type":"pull-wake","streams":["a/../b"],"wake_stream":"w"}`, "INVALID_REQUEST"},
		{"stream empty segment", `{"type":"pull-wake","streams":["a//b"],"wake_stream":"w"}`, "INVALID_REQUEST"},
		{"pattern traversal", `{"type":"pull-wake","pattern":"../*","wake_stream":"w"}`, "INVALID_REQUEST"},
		{"lease too short", `{"type":"pull-wake","pattern":"a/*","wake_stream":"w","lease_ttl_ms":999}`, "INVALID_REQUEST"},
		{"lease too long", `{"type":"pull-wake","pattern":"a/*","wake_stream":"w","lease_ttl_ms":600001}`, "INVALID_REQUEST"},
		{"lease fraction", `{"type":"pull-wake","pattern":"a/*","wake_stream":"w","lease_ttl_ms":1000.5}`, "INVALID_REQUEST"},
		{"pull-wake without wake stream", `{"type":"pull-wake","pattern":"a/*"}`, "INVALID_REQUEST"},
		{"pull-wake with webhook", `{"type":"pull-wake","pattern":"a/*","wake_stream":"w","webhook":{"url":"https://example.com/h"}}`, "INVALID_REQUEST"},
		{"webhook without url", `{"type":"webhook","pattern":"a/*"}`, "INVALID_REQUEST"},
		{"webhook url rejected", `{"type":"webhook","pattern":"a/*","webhook":{"url":"http://10.0.0.1/hook"}}`, "WEBHOOK_URL_REJECTED"},
	}
	for _, c := range bad {
		t.Run("bad/"+c.name, func(t *testing.T) {
			e.want(e.do("PUT", "subscriptions/new", "", c.body), 400, c.code)
		})
	}
	e.want(e.do("GET", "subscriptions/new", "", ""), 404, "SUBSCRIPTION_NOT_FOUND")
	e.want(e.do("PUT", "subscriptions/"+strings.Repeat("x", 257), "", base), 400, "INVALID_REQUEST")
	e.want(e.do("PATCH", "subscriptions/s", "", base), 405, "")
}

// TestSubscriptionReadDelete: §6.3 fields, delete 204 (twice), and a
// deleted subscription's requests fail.
func TestSubscriptionReadDelete(t *testing.T) {
	t.Parallel()
	e := pullEnv(t)
	e.stream("events/a", `[1]`)
	s := e.get("s")
	if s.ID != "s" || s.SubID != "s" || s.Type != "pull-wake" || *s.Pattern != "events/*" || *s.WakeStream != "wake/pool" ||
		s.LeaseTTLms != 5000 || s.Status != "active" || s.Description != nil || s.Webhook != nil {
		t.Fatalf("subscription = %+v", s)
	}
	if _, err := time.Parse(time.RFC3339, s.CreatedAt); err != nil {
		t.Fatalf("created_at %q: %v", s.CreatedAt, err)
	}
	c := e.claim("s", "w1")
	mustStatus(t, e.do("DELETE", "subscriptions/s", "", ""), 204)
	mustStatus(t, e.do("DELETE", "subscriptions/s", "", ""), 204)
	e.want(e.do("GET", "subscriptions/s", "", ""), 404, "SUBSCRIPTION_NOT_FOUND")
	e.want(e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, c.Generation, true, [2]string{"events/a", c.Tail("events/a")})), 404, "SUBSCRIPTION_NOT_FOUND")
	e.want(e.do("POST", "subscriptions/s/release", c.Token, ackBody(c.WakeID, c.Generation, false)), 404, "SUBSCRIPTION_NOT_FOUND")
	// Re-created under the same id: the old token is not valid for it.
	e.put("s", pullSub("wake/pool", ""), 201)
	e.appendJSON("events/a", `2`)
	c2 := e.claim("s", "w1")
	e.want(e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c2.WakeID, c2.Generation, true)), 401, "TOKEN_INVALID")
}

// TestGlobMatch: "*" is one segment, "**" zero or more (§6.2).
func TestGlobMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, path string
		want          bool
	}{
		{"events/*", "events/a", true},
		{"events/*", "events/a/b", false},
		{"events/*", "events", false},
		{"events/**", "events", true},
		{"events/**", "events/a/b/c", true},
		{"**", "a", true},
		{"**/x", "x", true},
		{"**/x", "a/b/x", true},
		{"**/x", "a/b/y", false},
		{"a/**/b/*", "a/b/c", true},
		{"a/**/b/*", "a/x/y/b/c", true},
		{"a/**/b/*", "a/x/y/b", false},
		{"*/*", "a/b", true},
		{"a", "a", true},
		{"a", "ab", false},
		{"a*", "ab", false},
	}
	for _, c := range cases {
		if got := globMatch(c.pattern, c.path); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

// TestSubscriptionMembership: backfill at the tail, explicit links (§6.4),
// explicit precedence, and a glob link that outlives its explicit one.
func TestSubscriptionMembership(t *testing.T) {
	t.Parallel()
	e := newSubEnv(t)
	e.stream("events/old", `[1,2]`)
	e.stream("other/x", `[1]`)
	e.put("s", `{"type":"pull-wake","pattern":"events/*","streams":["manual/a"],"wake_stream":"w"}`, 201)
	s := e.get("s")
	old, ok := s.link("events/old")
	if !ok || old.LinkType != "glob" || old.Acked != off(4) {
		t.Fatalf("backfilled link = %+v (%v), want glob at the tail %s", old, ok, off(4))
	}
	if l, ok := s.link("manual/a"); !ok || l.LinkType != "explicit" || l.Acked != off(0) {
		t.Fatalf("explicit link to a missing stream = %+v (%v)", l, ok)
	}
	steps := []struct {
		name, method, rel, body string
		status                  int
		links                   map[string]string // path → link type ("" = absent)
	}{
		{"add", "POST", "streams", `{"streams":["other/x","events/old"]}`, 204, map[string]string{"other/x": "explicit", "events/old": "explicit"}},
		{"add again", "POST", "streams", `{"streams":["other/x"]}`, 204, map[string]string{"other/x": "explicit"}},
		{"remove explicit of glob", "DELETE", "streams/events%2Fold", "", 204, map[string]string{"events/old": "glob"}},
		{"remove with raw slash", "DELETE", "streams/other/x", "", 204, map[string]string{"other/x": ""}},
		{"remove absent", "DELETE", "streams/nope", "", 204, map[string]string{"nope": ""}},
		{"remove glob-only keeps it", "DELETE", "streams/events%2Fold", "", 204, map[string]string{"events/old": "glob"}},
		{"add a matching stream not yet created", "POST", "streams", `{"streams":["events/later"]}`, 204, map[string]string{"events/later": "explicit"}},
		{"its glob link outlives the explicit one", "DELETE", "streams/events%2Flater", "", 204, map[string]string{"events/later": "glob"}},
		{"empty add", "POST", "streams", `{"streams":[]}`, 400, nil},
		{"bad path", "POST", "streams", `{"streams":["a/../b"]}`, 400, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			r := e.do(st.method, "subscriptions/s/"+st.rel, "", st.body)
			mustStatus(t, r, st.status)
			s := e.get("s")
			for p, want := range st.links {
				l, ok := s.link(p)
				if got := map[bool]string{true: l.LinkType}[ok]; got != want {
					t.Fatalf("link %s = %q, want %q", p, got, want)
				}
			}
		})
	}
	e.want(e.do("POST", "subscriptions/none/streams", "", `{"streams":["a"]}`), 404, "SUBSCRIPTION_NOT_FOUND")
	e.want(e.do("DELETE", "subscriptions/none/streams/a", "", ""), 404, "SUBSCRIPTION_NOT_FOUND")

	// A stream created later is linked; its first data is pending.
	e.stream("events/new", `[1]`)
	if l, ok := e.get("s").link("events/new"); !ok || l.Acked != off(0) {
		t.Fatalf("new stream link = %+v (%v), want acked at its start", l, ok)
	}
	// A deleted stream's glob link goes.
	mustStatus(t, call(t, "DELETE", e.srv.StreamURL("events/new"), nil, ""), 204)
	if _, ok := e.get("s").link("events/new"); ok {
		t.Fatal("deleted stream still linked")
	}
}

// TestPullWakeFlow: wake events, claim, ack (heartbeat and done), release
// and the next wake (§7.2).
func TestPullWakeFlow(t *testing.T) {
	t.Parallel()
	e := pullEnv(t)
	e.want(e.do("POST", "subscriptions/s/claim", "", `{"worker":"w1"}`), 409, "NO_PENDING_WORK")
	tail1 := e.appendEvents(t, "events/a")
	ev := e.wakeEvents("wake/pool")
	if len(ev) != 1 || ev[0].Type != "wake" || ev[0].Subscription != "s" || ev[0].Stream != "events/a" ||
		ev[0].Generation != 1 || ev[0].TS != e.clk.Now().UnixMilli() {
		t.Fatalf("wake events = %+v", ev)
	}
	e.appendJSON("events/a", `"more"`) // a wake is in flight: no second event
	if n := len(e.wakeEvents("wake/pool")); n != 1 {
		t.Fatalf("%d wake events, want 1 while a wake is in flight", n)
	}
	c := e.claim("s", "w1")
	if c.Generation != 1 || c.LeaseTTLms != 5000 || c.Token == "" || !strings.HasPrefix(c.WakeID, "w_") {
		t.Fatalf("claim = %+v", c)
	}
	busy := e.do("POST", "subscriptions/s/claim", "", `{"worker":"w2"}`)
	e.want(busy, 409, "ALREADY_CLAIMED")
	if b := decode[map[string]map[string]any](t, busy)["error"]; b["current_holder"] != "w1" || b["generation"] != float64(1) {
		t.Fatalf("ALREADY_CLAIMED body = %s", busy.body)
	}
	// Heartbeat with a partial ack, then done.
	r := e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, 1, false, [2]string{"events/a", tail1}))
	e.want(r, 200, "")
	if r.body != `{"ok":true,"next_wake":false}` {
		t.Fatalf("ack body = %s", r.body)
	}
	if l, _ := e.get("s").link("events/a"); l.Acked != tail1 {
		t.Fatalf("acked = %s, want %s", l.Acked, tail1)
	}
	r = e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, 1, true))
	e.want(r, 200, "")
	if r.body != `{"ok":true,"next_wake":true}` {
		t.Fatalf("done with work left: body = %s", r.body)
	}
	ev = e.wakeEvents("wake/pool")
	if len(ev) != 2 || ev[1].Generation != 2 {
		t.Fatalf("wake events after done with pending work = %+v", ev)
	}
	c2 := e.claim("s", "w2")
	if c2.Generation != 2 || c2.WakeID == c.WakeID {
		t.Fatalf("second claim = %+v", c2)
	}
	// Release with work pending: another wake event, next generation.
	mustStatus(t, e.do("POST", "subscriptions/s/release", c2.Token, ackBody(c2.WakeID, 2, false)), 204)
	if ev = e.wakeEvents("wake/pool"); len(ev) != 3 || ev[2].Generation != 3 {
		t.Fatalf("wake events after release = %+v", ev)
	}
	c3 := e.claim("s", "w1")
	r = e.do("POST", "subscriptions/s/ack", c3.Token, ackBody(c3.WakeID, 3, true, [2]string{"events/a", c3.Tail("events/a")}))
	if r.status != 200 || r.body != `{"ok":true,"next_wake":false}` {
		t.Fatalf("final ack = %d %s", r.status, r.body)
	}
	e.want(e.do("POST", "subscriptions/s/claim", "", `{"worker":"w1"}`), 409, "NO_PENDING_WORK")
	if n := len(e.wakeEvents("wake/pool")); n != 3 {
		t.Fatalf("%d wake events, want 3", n)
	}
	e.want(e.do("POST", "subscriptions/s/claim", "", `{}`), 400, "INVALID_REQUEST")
}

// appendEvents creates a JSON stream at path with one message and returns
// its tail.
func (e *subEnv) appendEvents(t *testing.T, path string) string {
	t.Helper()
	r := call(t, "PUT", e.srv.StreamURL(path), jsonH, `{"n":1}`)
	mustStatus(t, r, 201)
	return r.get("Stream-Next-Offset")
}

// TestFencing: every way an ack, release or callback can be stale or
// unauthorized (§7.3, §12.9).
func TestFencing(t *testing.T) {
	t.Parallel()
	e := pullEnv(t)
	e.put("other", pullSub("wake/pool", ""), 201)
	e.appendEvents(t, "events/a")
	old := e.claim("s", "w1")
	mustStatus(t, e.do("POST", "subscriptions/s/release", old.Token, ackBody(old.WakeID, old.Generation, false)), 204)
	cur := e.claim("s", "w1") // generation 2 (work still pending)
	foreign := e.claim("other", "w9")
	cases := []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"stale generation", cur.Token, ackBody(cur.WakeID, cur.Generation-1, false), 409, "FENCED"},
		{"future generation", cur.Token, ackBody(cur.WakeID, cur.Generation+1, false), 409, "FENCED"},
		{"other wake id", cur.Token, ackBody(old.WakeID, cur.Generation, false), 409, "FENCED"},
		{"made-up wake id", cur.Token, ackBody("w_x", cur.Generation, false), 409, "FENCED"},
		{"old token", old.Token, ackBody(cur.WakeID, cur.Generation, false), 409, "FENCED"},
		{"missing fields", cur.Token, `{}`, 409, "FENCED"},
		{"no token", "", ackBody(cur.WakeID, cur.Generation, false), 401, "TOKEN_INVALID"},
		{"garbage token", "abc", ackBody(cur.WakeID, cur.Generation, false), 401, "TOKEN_INVALID"},
		{"tampered token", cur.Token[:len(cur.Token)-2] + "xx", ackBody(cur.WakeID, cur.Generation, false), 401, "TOKEN_INVALID"},
		{"other subscription's token", foreign.Token, ackBody(cur.WakeID, cur.Generation, false), 401, "TOKEN_INVALID"},
		{"bad JSON", cur.Token, `{"generation":"2"}`, 400, "INVALID_REQUEST"},
	}
	for _, ep := range []string{"ack", "release"} {
		for _, c := range cases {
			t.Run(ep+"/"+c.name, func(t *testing.T) {
				e.want(e.do("POST", "subscriptions/s/"+ep, c.token, c.body), c.status, c.code)
			})
		}
	}
	// None of that moved anything: the current holder still acks.
	mustStatus(t, e.do("POST", "subscriptions/s/ack", cur.Token, ackBody(cur.WakeID, cur.Generation, false)), 200)
	// A pull-wake subscription has no callback; a callback token is not a claim.
	e.want(e.do("POST", "subscriptions/s/callback", cur.Token, ackBody(cur.WakeID, cur.Generation, false)), 400, "INVALID_REQUEST")
}

// TestTokenExpiry: a lease renewed for longer than a token lives gets
// TOKEN_EXPIRED, not a silent pass.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	e := newSubEnv(t)
	e.stream("wake/pool", "")
	e.put("s", pullSub("wake/pool", `"streams":["x"]`), 201)
	e.put("s2", `{"type":"pull-wake","streams":["x"],"wake_stream":"wake/pool","lease_ttl_ms":600000}`, 201)
	e.appendEvents(t, "x")
	c := e.claim("s2", "w")
	body := ackBody(c.WakeID, c.Generation, false)
	for elapsed := time.Duration(0); elapsed <= tokenLifetime; elapsed += 9 * time.Minute {
		mustStatus(t, e.do("POST", "subscriptions/s2/ack", c.Token, body), 200)
		e.clk.Advance(9 * time.Minute)
	}
	e.want(e.do("POST", "subscriptions/s2/ack", c.Token, body), 401, "TOKEN_EXPIRED")
}

// TestLeaseExpiry: a lease not renewed within lease_ttl_ms ends; pending
// work makes the next generation, the old holder is fenced and another
// worker takes over. Acks without done keep it alive. No sleeping: the
// clock is moved and RunTimers (or the next claim) notices.
func TestLeaseExpiry(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"RunTimers", "claim"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			e := pullEnv(t)
			tail := e.appendEvents(t, "events/a")
			c := e.claim("s", "w1")
			// Heartbeats keep the lease well past one TTL.
			for i := 0; i < 4; i++ {
				e.clk.Advance(4 * time.Second)
				e.srv.RunTimers()
				mustStatus(t, e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, 1, false)), 200)
			}
			e.want(e.do("POST", "subscriptions/s/claim", "", `{"worker":"w2"}`), 409, "ALREADY_CLAIMED")
			e.clk.Advance(5*time.Second - time.Millisecond)
			e.srv.RunTimers()
			e.want(e.do("POST", "subscriptions/s/claim", "", `{"worker":"w2"}`), 409, "ALREADY_CLAIMED")
			e.clk.Advance(time.Millisecond)
			if via == "RunTimers" {
				e.srv.RunTimers()
				if ev := e.wakeEvents("wake/pool"); len(ev) != 2 || ev[1].Generation != 2 {
					t.Fatalf("wake events after expiry = %+v", ev)
				}
			}
			c2 := e.claim("s", "w2")
			if c2.Generation != 2 {
				t.Fatalf("takeover generation = %d, want 2", c2.Generation)
			}
			e.want(e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, 1, true, [2]string{"events/a", tail})), 409, "FENCED")
			if l, _ := e.get("s").link("events/a"); l.Acked == tail {
				t.Fatal("a fenced ack moved the acked offset")
			}
			mustStatus(t, e.do("POST", "subscriptions/s/ack", c2.Token, ackBody(c2.WakeID, 2, true, [2]string{"events/a", tail})), 200)
			// Expiry with nothing pending: no new wake, the holder is just gone.
			e.appendJSON("events/a", `2`)
			c3 := e.claim("s", "w3")
			mustStatus(t, e.do("POST", "subscriptions/s/ack", c3.Token, ackBody(c3.WakeID, 3, false, [2]string{"events/a", c3.Tail("events/a")})), 200)
			e.clk.Advance(6 * time.Second)
			e.srv.RunTimers()
			e.want(e.do("POST", "subscriptions/s/claim", "", `{"worker":"w4"}`), 409, "NO_PENDING_WORK")
			e.want(e.do("POST", "subscriptions/s/ack", c3.Token, ackBody(c3.WakeID, 3, true)), 409, "FENCED")
		})
	}
}

// TestAckOffsets: INVALID_OFFSET for every bad ack; a bad ack in a list
// applies none of them.
func TestAckOffsets(t *testing.T) {
	t.Parallel()
	e := pullEnv(t)
	e.stream("events/a", `[{"k":"aaaa"},{"k":"bbbb"}]`)
	e.stream("events/b", `[1]`)
	c := e.claim("s", "w1")
	tailA, tailB := c.Tail("events/a"), c.Tail("events/b")
	mid := off(13) // after the first message {"k":"aaaa"}+","
	cases := []struct {
		name string
		acks [][2]string
		code string
	}{
		{"unlinked stream", [][2]string{{"other/x", tailA}}, "INVALID_OFFSET"},
		{"not an offset", [][2]string{{"events/a", "abc"}}, "INVALID_OFFSET"},
		{"minus one", [][2]string{{"events/a", "-1"}}, "INVALID_OFFSET"},
		{"beyond tail", [][2]string{{"events/a", off(1000)}}, "INVALID_OFFSET"},
		{"inside a message", [][2]string{{"events/a", off(5)}}, "INVALID_OFFSET"},
		{"good then bad", [][2]string{{"events/b", tailB}, {"events/a", off(1000)}}, "INVALID_OFFSET"},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			e.want(e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, 1, false, cs.acks...)), 409, cs.code)
		})
	}
	if l, _ := e.get("s").link("events/b"); l.Acked != off(0) {
		t.Fatalf("events/b acked %s after a rejected ack list", l.Acked)
	}
	e.want(e.do("POST", "subscriptions/s/ack", c.Token, `{"wake_id":"`+c.WakeID+`","generation":1,"acks":[{"offset":"`+tailA+`"}]}`), 400, "INVALID_REQUEST")
	mustStatus(t, e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, 1, false, [2]string{"events/a", mid})), 200)
	mustStatus(t, e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, 1, false, [2]string{"events/a", mid})), 200) // same again is fine
	e.want(e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, 1, false, [2]string{"events/a", off(0)})), 409, "INVALID_OFFSET")
	mustStatus(t, e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, 1, true, [2]string{"events/a", tailA}, [2]string{"/events/b/", tailB})), 200)
	s := e.get("s")
	for p, want := range map[string]string{"events/a": tailA, "events/b": tailB} {
		if l, _ := s.link(p); l.Acked != want {
			t.Fatalf("%s acked %s, want %s", p, l.Acked, want)
		}
	}
}

// TestSubscriptionFaultsAndAccounting: __ds routes are counted and take
// injected faults like stream routes.
func TestSubscriptionFaultsAndAccounting(t *testing.T) {
	t.Parallel()
	e := pullEnv(t)
	e.appendEvents(t, "events/a")
	e.srv.InjectFault(Fault{Path: "__ds/subscriptions/s/claim", Method: "POST", Status: 503, Count: 1})
	mustStatus(t, e.do("POST", "subscriptions/s/claim", "", `{"worker":"w"}`), 503)
	c := e.claim("s", "w")
	e.srv.InjectFault(Fault{Path: "__ds/subscriptions/s/ack", Method: "POST", Drop: true, AfterApply: true, Count: 1})
	if st, _ := httpDo("POST", e.url("subscriptions/s/ack"), c.Token, ackBody(c.WakeID, 1, true, [2]string{"events/a", c.Tail("events/a")})); st != 0 {
		t.Fatalf("dropped ack answered %d", st)
	}
	// The ack was applied before the connection dropped: a retry is fenced.
	e.want(e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, 1, true)), 409, "FENCED")
	if n := e.srv.Requests("__ds/subscriptions/s/claim", "POST"); n != 2 {
		t.Fatalf("claim requests = %d, want 2", n)
	}
	if n := e.srv.Requests("__ds/subscriptions/s/ack", ""); n != 2 {
		t.Fatalf("ack requests = %d, want 2", n)
	}
}

// TestSubscriptionsOff: without WithSubscriptions every __ds path is 404.
func TestSubscriptionsOff(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	for _, p := range []string{"__ds/jwks.json", "__ds/subscriptions/s"} {
		if r := call(t, "GET", srv.StreamURL(p), nil, ""); r.status != 404 {
			t.Fatalf("GET %s = %d, want 404", p, r.status)
		}
	}
	srv.RunTimers() // nothing to do, must not block
	if _, err := srv.RotateSigningKey(); err == nil {
		t.Fatal("RotateSigningKey without subscriptions succeeded")
	}
	e := newSubEnv(t)
	e.want(e.do("GET", "nothing", "", ""), 404, "NOT_FOUND")
	e.want(e.do("POST", "jwks.json", "", ""), 405, "")
}

// TestConcurrentWorkers: workers racing for one subscription while writers
// append: one lease at a time (every claim is 200 or ALREADY_CLAIMED /
// NO_PENDING_WORK), acked offsets never move backwards, and once the
// writers stop the workers drain every stream to its tail.
func TestConcurrentWorkers(t *testing.T) {
	t.Parallel()
	e := pullEnv(t)
	streams := []string{"events/a", "events/b", "events/c"}
	for _, p := range streams {
		e.stream(p, "")
	}
	var wg sync.WaitGroup
	for _, p := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				if st, _ := httpDo("POST", e.srv.StreamURL(p), "", `{"i":1}`); st != 204 {
					t.Errorf("append %s: %d", p, st)
					return
				}
			}
		}()
	}
	stop := make(chan struct{})
	var workers sync.WaitGroup
	var bad atomic.Int64
	for w := 0; w < 4; w++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, body := httpDo("POST", e.url("subscriptions/s/claim"), "", `{"worker":"w"}`)
				if st != 200 {
					if code := errCode(resp{body: body}); code != "ALREADY_CLAIMED" && code != "NO_PENDING_WORK" {
						bad.Add(1)
					}
					continue
				}
				var c claimJS
				_ = json.Unmarshal([]byte(body), &c)
				var acks [][2]string
				for _, l := range c.Streams {
					acks = append(acks, [2]string{l.Path, l.Tail})
				}
				if st, _ := httpDo("POST", e.url("subscriptions/s/ack"), c.Token, ackBody(c.WakeID, c.Generation, true, acks...)); st != 200 {
					bad.Add(1)
				}
			}
		}()
	}
	last := map[string]string{}
	watch := func() {
		for _, l := range e.get("s").Streams {
			if l.Acked < last[l.Path] {
				t.Errorf("%s acked went back from %s to %s", l.Path, last[l.Path], l.Acked)
			}
			last[l.Path] = l.Acked
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			watch()
		}
	}
	waitFor(t, func() bool {
		watch()
		s := e.get("s")
		for _, p := range streams {
			l, _ := s.link(p)
			if l.Acked != call(t, "HEAD", e.srv.StreamURL(p), nil, "").get("Stream-Next-Offset") {
				return false
			}
		}
		return true
	})
	close(stop)
	workers.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d claims or acks got an unexpected answer", n)
	}
}

// httpDo sends a JSON request with an optional bearer token and returns
// the status and body (0 on a transport error).
func httpDo(method, url, token, body string) (int, string) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, ""
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}
