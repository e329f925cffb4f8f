package testserver

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/subtest"
)

// subEnv is a server with subscriptions on a fake clock, and helpers for
// its __ds API.
type subEnv struct {
	t   testing.TB
	srv *Server
	clk *fakeClock
}

func newSubEnv(t testing.TB, opts ...Option) *subEnv {
	t.Helper()
	clk := newFakeClock()
	all := append([]Option{WithSubscriptions(true), WithLoopbackWebhooks(true), WithClock(clk.Now)}, opts...)
	return &subEnv{t: t, srv: newTestServer(t, all...), clk: clk}
}

func (e *subEnv) url(rel string) string { return e.srv.StreamURL("__ds/" + rel) }

// do sends a request to the __ds API (token "" = no Authorization).
func (e *subEnv) do(method, rel, token, body string) resp {
	e.t.Helper()
	h := hdrs{}
	if body != "" {
		h["Content-Type"] = "application/json"
	}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return call(e.t, method, e.url(rel), h, body)
}

// want checks the status and, for an error, the error code.
func (e *subEnv) want(r resp, status int, code string) {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	if code == "" {
		return
	}
	if got := errCode(r); got != code {
		e.t.Fatalf("error code = %q, want %q (body %s)", got, code, r.body)
	}
}

func errCode(r resp) string {
	var b struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(r.body), &b)
	return b.Error.Code
}

func decode[T any](t testing.TB, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("decode %q: %v", r.body, err)
	}
	return v
}

// put creates (or re-confirms) subscription id with body and checks status.
func (e *subEnv) put(id, body string, status int) map[string]any {
	e.t.Helper()
	r := e.do("PUT", "subscriptions/"+id, "", body)
	e.want(r, status, "")
	return decode[map[string]any](e.t, r)
}

// stream creates a JSON stream at path with initial messages (may be "").
func (e *subEnv) stream(path, body string) {
	e.t.Helper()
	mustStatus(e.t, call(e.t, "PUT", e.srv.StreamURL(path), jsonH, body), 201)
}

// appendJSON appends one JSON value to path and returns the new tail.
func (e *subEnv) appendJSON(path, v string) string {
	e.t.Helper()
	r := call(e.t, "POST", e.srv.StreamURL(path), jsonH, v)
	mustStatus(e.t, r, 204)
	return r.get("Stream-Next-Offset")
}

// wakeEvents reads the wake events in a JSON wake stream.
func (e *subEnv) wakeEvents(path string) []wakeEvent {
	e.t.Helper()
	r := call(e.t, "GET", e.srv.StreamURL(path)+"?offset=-1", nil, "")
	mustStatus(e.t, r, 200)
	return decode[[]wakeEvent](e.t, r)
}

type wakeEvent struct {
	Type         string `json:"type"`
	Subscription string `json:"subscription_id"`
	Stream       string `json:"stream"`
	Generation   int64  `json:"generation"`
	TS           int64  `json:"ts"`
}

// subInfo is a subscription as GET shows it.
type subInfo struct {
	ID          string   `json:"id"`
	SubID       string   `json:"subscription_id"`
	Type        string   `json:"type"`
	Pattern     *string  `json:"pattern"`
	Streams     []linkJS `json:"streams"`
	WakeStream  *string  `json:"wake_stream"`
	LeaseTTLms  int64    `json:"lease_ttl_ms"`
	CreatedAt   string   `json:"created_at"`
	Status      string   `json:"status"`
	Description *string  `json:"description"`
	Generation  int64    `json:"generation"`
	NextAttempt *string  `json:"next_attempt_at"`
	Webhook     *struct {
		URL     string `json:"url"`
		Signing struct {
			Alg     string `json:"alg"`
			KID     string `json:"kid"`
			JWKSURL string `json:"jwks_url"`
		} `json:"signing"`
	} `json:"webhook"`
}

type linkJS struct {
	Path       string `json:"path"`
	LinkType   string `json:"link_type"`
	Acked      string `json:"acked_offset"`
	Tail       string `json:"tail_offset"`
	HasPending bool   `json:"has_pending"`
}

func (e *subEnv) get(id string) subInfo {
	e.t.Helper()
	r := e.do("GET", "subscriptions/"+id, "", "")
	e.want(r, 200, "")
	return decode[subInfo](e.t, r)
}

func (s subInfo) link(path string) (linkJS, bool) {
	for _, l := range s.Streams {
		if l.Path == path {
			return l, true
		}
	}
	return linkJS{}, false
}

// claimJS is a claim answer.
type claimJS = subtest.Claim

func (e *subEnv) claim(id, worker string) claimJS {
	e.t.Helper()
	r := e.do("POST", "subscriptions/"+id+"/claim", "", `{"worker":"`+worker+`"}`)
	e.want(r, 200, "")
	return decode[claimJS](e.t, r)
}

var ackBody = subtest.AckBody

// ---------------------------------------------------------------- webhook receiver

// receiver is a subtest.Receiver that hands out its deliveries in order
// and fails the test when one does not come.
type receiver struct {
	*subtest.Receiver
	t    testing.TB
	seen int
}

func newReceiver(t testing.TB, replies ...subtest.Reply) *receiver {
	rc := subtest.NewReceiver(replies...)
	t.Cleanup(rc.Close)
	return &receiver{Receiver: rc, t: t}
}

func (rc *receiver) url() string { return rc.URL() }
func (rc *receiver) count() int  { return rc.Count() }

// next waits for the next delivery (real time bound: the delivery is
// already on its way when this is called).
func (rc *receiver) next() subtest.Delivery {
	rc.t.Helper()
	d, ok := rc.Wait(rc.seen, 10*time.Second)
	if !ok {
		rc.t.Fatal("no webhook delivery arrived")
	}
	rc.seen++
	return d
}

func webhookSub(url string, extra string) string {
	b := `{"type":"webhook","pattern":"events/*","webhook":{"url":"` + url + `"},"lease_ttl_ms":5000`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

func pullSub(wake, extra string) string {
	b := `{"type":"pull-wake","pattern":"events/*","wake_stream":"` + wake + `","lease_ttl_ms":5000`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

// pullEnv is a server with a JSON wake stream "wake/pool" and a pull-wake
// subscription "s" over events/* with a 5 s lease.
func pullEnv(t testing.TB) *subEnv {
	e := newSubEnv(t)
	e.stream("wake/pool", "")
	e.put("s", pullSub("wake/pool", ""), 201)
	return e
}
