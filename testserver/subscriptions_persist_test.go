package testserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/subtest"
)

// TestSubscriptionPersistence: with a data directory a restarted server
// has the subscriptions, links, acked offsets, generation, lease, webhook
// retry schedule and signing keys it had; memory mode starts empty.
func TestSubscriptionPersistence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clk := newFakeClock()
	rc := newReceiver(t, subtest.Reply{Status: 500, Body: ``}, subtest.Reply{Status: 200, Body: `{"done":true}`})
	opts := []Option{WithDataDir(dir), WithSubscriptions(true), WithLoopbackWebhooks(true), WithClock(clk.Now)}
	e := &subEnv{t: t, srv: New(opts...), clk: clk}
	e.stream("wake/pool", "")
	e.put("s", pullSub("wake/pool", `"streams":["manual/x"]`), 201)
	e.put("h", `{"type":"webhook","streams":["hooked"],"webhook":{"url":"`+rc.url()+`"}}`, 201)
	longID := strings.Repeat("é", maxSubIDLen/2) // 256 bytes: longer than a file name may be
	e.put(longID, pullSub("wake/pool", ""), 201)
	tail := e.appendEvents(t, "events/a")
	e.appendJSON("events/a", `2`)
	c := e.claim("s", "w1")
	mustStatus(t, e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, c.Generation, false, [2]string{"events/a", tail})), 200)
	e.stream("hooked", `[1]`)
	first := rc.next()
	e.srv.RunTimers() // the failure is recorded and a retry scheduled
	before := e.get("h")
	if before.Status != "failed" || before.NextAttempt == nil {
		t.Fatalf("webhook subscription before restart = %+v", before)
	}
	jwksBefore := e.do("GET", "jwks.json", "", "").body
	e.srv.Close()

	e.srv = New(opts...)
	defer e.srv.Close()
	s := e.get("s")
	if l, _ := s.link("events/a"); l.Acked != tail || s.Generation != c.Generation {
		t.Fatalf("after restart: %+v", s)
	}
	if l, ok := s.link("manual/x"); !ok || l.LinkType != "explicit" {
		t.Fatalf("explicit link after restart: %+v", s)
	}
	if got := e.get(longID); got.ID != longID {
		t.Fatalf("long id after restart = %q", got.ID)
	}
	e.want(e.do("POST", "subscriptions/s/claim", "", `{"worker":"w2"}`), 409, "ALREADY_CLAIMED")
	mustStatus(t, e.do("POST", "subscriptions/s/ack", c.Token, ackBody(c.WakeID, c.Generation, true)), 200)
	e.put("s", pullSub("wake/pool", `"streams":["manual/x"]`), 200)
	if got := e.do("GET", "jwks.json", "", "").body; got != jwksBefore {
		t.Fatalf("JWKS changed across a restart:\n%s\n%s", jwksBefore, got)
	}
	// The retry schedule holds: nothing before next_attempt_at, then the
	// same wake again.
	h := e.get("h")
	if h.Status != "failed" || h.NextAttempt == nil || *h.NextAttempt != *before.NextAttempt {
		t.Fatalf("webhook subscription after restart = %+v, before %+v", h, before)
	}
	e.srv.RunTimers()
	if rc.count() != 1 {
		t.Fatal("a retry went out before its time after the restart")
	}
	clk.Advance(2 * time.Second)
	e.srv.RunTimers()
	if d := rc.next(); d.Body.WakeID != first.Body.WakeID {
		t.Fatalf("retry after restart has wake %s, want %s", d.Body.WakeID, first.Body.WakeID)
	}
	waitFor(t, func() bool { return e.get("h").Status == "active" })
	e.srv.Close()

	// Memory mode keeps nothing.
	mem := newSubEnv(t)
	mem.want(mem.do("GET", "subscriptions/s", "", ""), 404, "SUBSCRIPTION_NOT_FOUND")
}

// TestSubscriptionCorruptFiles: a damaged subscription or key file stops
// the server from starting instead of silently dropping state.
func TestSubscriptionCorruptFiles(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		damage func(dir string) error
	}{
		{"truncated subscription", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "subscriptions", subFileName("s")), []byte(`{"version":1,"subscr`), 0o600)
		}},
		{"unknown version", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "subscriptions", subFileName("s")), []byte(`{"version":9,"subscription":{"id":"s"}}`), 0o600)
		}},
		{"renamed subscription file", func(dir string) error {
			p := filepath.Join(dir, "subscriptions")
			return os.Rename(filepath.Join(p, subFileName("s")), filepath.Join(p, subFileName("t")))
		}},
		{"corrupt keys", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "subscriptions", "keys.json"), []byte(`{"version":1,"ring":{"keys":[]}}`), 0o600)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			srv := New(WithDataDir(dir), WithSubscriptions(true))
			e := &subEnv{t: t, srv: srv}
			e.put("s", pullSub("w", ""), 201)
			srv.Close()
			if err := c.damage(dir); err != nil {
				t.Fatal(err)
			}
			if s, err := Start("127.0.0.1:0", WithDataDir(dir), WithSubscriptions(true)); err == nil {
				s.Close()
				t.Fatal("started on a damaged data directory")
			} else if !strings.Contains(err.Error(), "subscriptions") && !strings.Contains(err.Error(), "keys.json") {
				t.Fatalf("error %v does not name the file", err)
			}
		})
	}
}
