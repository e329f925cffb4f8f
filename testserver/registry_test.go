package testserver

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// registryEvents reads the whole registry stream of srv.
func registryEvents(t *testing.T, srv *Server) []map[string]any {
	t.Helper()
	r := call(t, "GET", srv.StreamURL(RegistryPath), nil, "")
	mustStatus(t, r, http.StatusOK)
	if ct := r.get("Content-Type"); ct != "application/json" {
		t.Fatalf("registry Content-Type %q", ct)
	}
	var evs []map[string]any
	if err := json.Unmarshal([]byte(r.body), &evs); err != nil {
		t.Fatalf("registry body %q: %v", r.body, err)
	}
	return evs
}

// brief is an event without its timestamp, for comparisons.
func brief(evs []map[string]any) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev["type"].(string) + " " + ev["path"].(string)
	}
	return out
}

func TestRegistryOffByDefault(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	mustStatus(t, call(t, "PUT", srv.StreamURL("a"), jsonH, ""), 201)
	mustStatus(t, call(t, "HEAD", srv.StreamURL(RegistryPath), nil, ""), 404)
}

// TestRegistryEventFormat checks every field of the events for a create, a
// fork, an idempotent re-create (no event) and a delete.
func TestRegistryEventFormat(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	srv := newTestServer(t, WithRegistry(true), WithClock(clk.Now))
	ms := clk.Now().UnixMilli()
	mustStatus(t, call(t, "PUT", srv.StreamURL("orders"), jsonH, `[{"n":1},{"n":2}]`), 201)
	clk.Advance(time.Second)
	mustStatus(t, call(t, "PUT", srv.StreamURL("orders"), jsonH, ""), 200) // idempotent: no event
	mustStatus(t, call(t, "PUT", srv.StreamURL("logs/app"), hdrs{"Content-Type": "text/plain; charset=utf-8"}, ""), 201)
	mustStatus(t, call(t, "PUT", srv.StreamURL("orders-fork"), hdrs{
		"Stream-Forked-From": "orders", "Stream-Fork-Offset": off(0), "Stream-Fork-Sub-Offset": "1",
	}, ""), 201)
	clk.Advance(time.Second)
	mustStatus(t, call(t, "DELETE", srv.StreamURL("logs/app"), nil, ""), 204)

	got := registryEvents(t, srv)
	want := []map[string]any{
		{"type": "created", "path": RegistryPath, "contentType": "application/json", "timestamp": float64(ms)},
		{"type": "created", "path": "orders", "contentType": "application/json", "timestamp": float64(ms)},
		{"type": "created", "path": "logs/app", "contentType": "text/plain; charset=utf-8", "timestamp": float64(ms + 1000)},
		{"type": "created", "path": "orders-fork", "contentType": "application/json", "timestamp": float64(ms + 1000),
			"forkedFrom": "orders", "forkOffset": off(0), "forkSubOffset": float64(1)},
		{"type": "deleted", "path": "logs/app", "timestamp": float64(ms + 2000)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("registry events\n got %v\nwant %v", got, want)
	}
}

// TestRegistryDeletions: a soft delete (forks exist) and an expiry count as
// deletions; the cascade that cleans up a soft-deleted source records
// nothing more; a deleted registry comes back with the next event.
func TestRegistryDeletions(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	srv := newTestServer(t, WithRegistry(true), WithClock(clk.Now))
	mustStatus(t, call(t, "PUT", srv.StreamURL("src"), text, "abc"), 201)
	mustStatus(t, call(t, "PUT", srv.StreamURL("fork"), hdrs{"Stream-Forked-From": "src"}, ""), 201)
	mustStatus(t, call(t, "DELETE", srv.StreamURL("src"), nil, ""), 204) // soft
	mustStatus(t, call(t, "DELETE", srv.StreamURL("fork"), nil, ""), 204)
	mustStatus(t, call(t, "PUT", srv.StreamURL("short"), hdrs{"Content-Type": ctText, "Stream-TTL": "5"}, ""), 201)
	clk.Advance(6 * time.Second)
	mustStatus(t, call(t, "HEAD", srv.StreamURL("short"), nil, ""), 404) // the server notices the expiry
	want := []string{
		"created " + RegistryPath, "created src", "created fork", "deleted src", "deleted fork",
		"created short", "deleted short",
	}
	if got := brief(registryEvents(t, srv)); !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}

	mustStatus(t, call(t, "DELETE", srv.StreamURL(RegistryPath), nil, ""), 204)
	mustStatus(t, call(t, "PUT", srv.StreamURL("again"), text, ""), 201)
	want = []string{"created " + RegistryPath, "created again"}
	if got := brief(registryEvents(t, srv)); !reflect.DeepEqual(got, want) {
		t.Fatalf("after deleting the registry\n got %v\nwant %v", got, want)
	}
}

// TestRegistryWakesLiveReaders: a long-poll on the registry returns the
// event of a stream created while it waits.
func TestRegistryWakesLiveReaders(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithRegistry(true))
	tail := call(t, "HEAD", srv.StreamURL(RegistryPath), nil, "").get("Stream-Next-Offset")
	got := longPoll(t, srv, RegistryPath, srv.StreamURL(RegistryPath)+"?live=long-poll&offset="+tail)
	mustStatus(t, call(t, "PUT", srv.StreamURL("new"), jsonH, ""), 201)
	r := <-got
	mustStatus(t, r, 200)
	var evs []registryEvent
	if err := json.Unmarshal([]byte(r.body), &evs); err != nil || len(evs) != 1 || evs[0].Path != "new" || evs[0].Type != "created" {
		t.Fatalf("long-poll body %q (%v)", r.body, err)
	}
}

// TestRegistryPersistence: a restarted server keeps the registry as it was
// (no event repeated), and one restarted with the registry on records what
// happened while it was off.
func TestRegistryPersistence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := New(WithDataDir(dir), WithRegistry(true))
	mustStatus(t, call(t, "PUT", srv.StreamURL("a"), jsonH, ""), 201)
	mustStatus(t, call(t, "PUT", srv.StreamURL("b"), text, ""), 201)
	before := registryEvents(t, srv)
	srv.Close()

	srv = New(WithDataDir(dir), WithRegistry(true))
	if got := registryEvents(t, srv); !reflect.DeepEqual(got, before) {
		srv.Close()
		t.Fatalf("after restart\n got %v\nwant %v", got, before)
	}
	srv.Close()

	srv = New(WithDataDir(dir)) // registry off: nothing recorded
	mustStatus(t, call(t, "PUT", srv.StreamURL("c"), text, ""), 201)
	mustStatus(t, call(t, "PUT", srv.StreamURL("d"), text, ""), 201)
	mustStatus(t, call(t, "DELETE", srv.StreamURL("a"), nil, ""), 204)
	if got := len(registryEvents(t, srv)); got != len(before) {
		t.Errorf("registry off recorded events: %d, want %d", got, len(before))
	}
	srv.Close()

	srv = New(WithDataDir(dir), WithRegistry(true))
	defer srv.Close()
	want := []string{"created " + RegistryPath, "created a", "created b", "created c", "created d", "deleted a"}
	if got := brief(registryEvents(t, srv)); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a restart with the registry on\n got %v\nwant %v", got, want)
	}
}
