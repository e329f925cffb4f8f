package testserver

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPersistenceAcrossRestart runs "before" steps on a server with a data
// directory, restarts a new server on the same directory, and runs "after"
// steps: the restarted server must serve the same data, offsets, closure,
// producer and Stream-Seq state.
func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	prodH := func(seq string) hdrs {
		return hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "1", "Producer-Seq": seq}
	}
	cases := []struct {
		name          string
		before, after []step
	}{
		{"bytes and offsets", []step{
			{method: "PUT", h: text, body: "hello ", status: 201},
			{method: "POST", h: text, body: "world", status: 204, want: map[string]string{"Stream-Next-Offset": off(11)}},
		}, []step{
			{method: "GET", status: 200, wantBody: str("hello world"), want: map[string]string{"Stream-Next-Offset": off(11)}},
			{method: "GET", query: "offset=" + off(6), status: 200, wantBody: str("world")},
			{method: "HEAD", status: 200, want: map[string]string{"Content-Type": ctText, "Stream-Next-Offset": off(11)}},
			{method: "POST", h: text, body: "!", status: 204, want: map[string]string{"Stream-Next-Offset": off(12)}},
			{method: "GET", status: 200, wantBody: str("hello world!")},
		}},
		{"json messages", []step{
			{method: "PUT", h: jsonH, body: `[{"a":1},{"b":2}]`, status: 201},
			{method: "POST", h: jsonH, body: `"c"`, status: 204},
		}, []step{
			{method: "GET", status: 200, wantBody: str(`[{"a":1},{"b":2},"c"]`)},
			{method: "GET", query: "offset=" + off(8), status: 200, wantBody: str(`[{"b":2},"c"]`)},
			{method: "GET", query: "offset=" + off(3), status: 400},
		}},
		{"closure and producer state", []step{
			{method: "PUT", h: text, status: 201},
			{method: "POST", h: prodH("0"), body: "a", status: 200},
			{method: "POST", h: hdrWith(prodH("1"), "Stream-Closed", "true"), body: "b", status: 200},
		}, []step{
			{method: "GET", status: 200, wantBody: str("ab"), want: map[string]string{"Stream-Closed": "true"}},
			{method: "POST", h: hdrWith(prodH("1"), "Stream-Closed", "true"), body: "b", status: 204, want: map[string]string{"Producer-Seq": "1", "Stream-Closed": "true"}},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Producer-Id": "p", "Producer-Epoch": "0", "Producer-Seq": "0"}, body: "z", status: 403},
			{method: "POST", h: text, body: "z", status: 409},
			{method: "PUT", h: hdrs{"Content-Type": ctText, "Stream-Closed": "true"}, status: 200},
		}},
		{"stream-seq and ttl config", []step{
			{method: "PUT", h: hdrs{"Content-Type": ctText, "Stream-TTL": "3600"}, status: 201},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Stream-Seq": "b"}, body: "x", status: 204},
		}, []step{
			{method: "POST", h: hdrs{"Content-Type": ctText, "Stream-Seq": "a"}, body: "y", status: 409},
			{method: "POST", h: hdrs{"Content-Type": ctText, "Stream-Seq": "c"}, body: "y", status: 204},
			{method: "HEAD", status: 200, want: map[string]string{"Stream-TTL": "3600"}},
			{method: "PUT", h: hdrs{"Content-Type": ctText, "Stream-TTL": "3600"}, status: 200},
		}},
		{"deleted stays deleted", []step{
			{method: "PUT", h: text, body: "x", status: 201},
			{method: "DELETE", status: 204},
		}, []step{
			{method: "GET", status: 404},
			{method: "PUT", h: text, body: "y", status: 201},
			{method: "GET", status: 200, wantBody: str("y")},
		}},
		{"forks and soft delete", []step{
			{method: "PUT", h: text, body: "abc", status: 201},
			{method: "POST", h: text, body: "def", status: 204},
			{method: "PUT", path: "persist/5/fork", h: hdrs{"Stream-Forked-From": "/v1/stream/persist/5", "Stream-Fork-Offset": off(3), "Stream-Fork-Sub-Offset": "1"}, status: 201},
			{method: "POST", path: "persist/5/fork", h: text, body: "XY", status: 204},
			{method: "DELETE", status: 204},
		}, []step{
			{method: "GET", status: 410},
			{method: "PUT", h: text, status: 409},
			{method: "GET", path: "persist/5/fork", status: 200, wantBody: str("abcdXY")},
			{method: "DELETE", path: "persist/5/fork", status: 204},
			{method: "GET", status: 404},
		}},
	}
	dir := t.TempDir()
	a := New(WithDataDir(dir))
	for i, tc := range cases {
		t.Run("before/"+tc.name, func(t *testing.T) {
			runSteps(t, a, "persist/"+itoa(i), tc.before)
		})
	}
	a.Close()
	b := newTestServer(t, WithDataDir(dir))
	for i, tc := range cases {
		t.Run("after/"+tc.name, func(t *testing.T) {
			runSteps(t, b, "persist/"+itoa(i), tc.after)
		})
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

func hdrWith(h hdrs, k, v string) hdrs {
	o := hdrs{}
	for a, b := range h {
		o[a] = b
	}
	o[k] = v
	return o
}

// TestPersistenceTornRecord appends garbage (a torn final record) to a
// stream log: the restarted server drops it and keeps serving.
func TestPersistenceTornRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := New(WithDataDir(dir))
	u := a.StreamURL("torn")
	mustStatus(t, call(t, "PUT", u, text, "ok"), 201)
	mustStatus(t, call(t, "POST", u, text, "!"), 204)
	a.Close()

	logs, _ := filepath.Glob(filepath.Join(dir, "streams", "*", "log"))
	if len(logs) != 1 {
		t.Fatalf("logs: %v", logs)
	}
	f, err := os.OpenFile(logs[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte{20, 0, 0, 0, 5, 0, 0, 0, 1, 2, 3, 4, '{'})
	f.Close()

	b := newTestServer(t, WithDataDir(dir))
	u = b.StreamURL("torn")
	r := call(t, "GET", u, nil, "")
	if r.body != "ok!" {
		t.Fatalf("body %q", r.body)
	}
	mustStatus(t, call(t, "POST", u, text, "?"), 204)
	b.Close()
	c := newTestServer(t, WithDataDir(dir), WithoutSync())
	if r := call(t, "GET", c.StreamURL("torn"), nil, ""); r.body != "ok!?" {
		t.Fatalf("after second restart %q", r.body)
	}
}

func TestPersistenceCorruptMeta(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := New(WithDataDir(dir))
	mustStatus(t, call(t, "PUT", a.StreamURL("m"), text, ""), 201)
	a.Close()
	metas, _ := filepath.Glob(filepath.Join(dir, "streams", "*", "meta.json"))
	if err := os.WriteFile(metas[0], []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Start("127.0.0.1:0", WithDataDir(dir)); err == nil {
		t.Fatal("corrupt metadata was accepted")
	}
}

func TestDataDirLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := New(WithDataDir(dir))
	if _, err := Start("127.0.0.1:0", WithDataDir(dir)); err == nil {
		t.Fatal("second server on the same data directory started")
	}
	a.Close()
	b, err := Start("127.0.0.1:0", WithDataDir(dir))
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	b.Close()
}
