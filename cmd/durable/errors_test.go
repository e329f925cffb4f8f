package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestErrorMessages checks what the user reads when a command fails: the
// operation they asked for (not an internal request), each thing said once,
// and what to do next.
func TestErrorMessages(t *testing.T) {
	t.Parallel()
	t.Run("server unreachable", func(t *testing.T) {
		t.Parallel()
		down := cli{env: []string{envServer + "=http://127.0.0.1:1"}}
		for _, args := range [][]string{
			{"append", "zz", "{}"},
			{"tail", "zz"},
			{"head", "zz"},
			{"create", "zz"},
			{"close", "zz"},
			{"delete", "zz"},
		} {
			r := down.run(t, args...)
			assert.Equal(t, 1, r.code, "%v", args)
			want := fmt.Sprintf("durable %s: cannot reach the server at http://127.0.0.1:1 (dial tcp 127.0.0.1:1: connect: connection refused); check --server or $DURABLE_SERVER\n", args[0])
			assert.Equal(t, want, r.stderr, "%v", args)
		}
	})
	srv := newServer(t)
	c := withServer(srv)
	t.Run("missing stream", func(t *testing.T) {
		t.Parallel()
		r := c.run(t, "append", "nope", "{}")
		assert.Equal(t, 1, r.code)
		assert.True(t, strings.HasPrefix(r.stderr, "durable append: "+srv.StreamURL("nope")+": stream not found (HTTP 404)"), r.stderr)
		assert.Contains(t, r.stderr, "; check the stream name and --server / $DURABLE_SERVER ('durable create NAME' creates a stream)\n")
	})
	t.Run("create outside the streams root", func(t *testing.T) {
		t.Parallel()
		r := c.run(t, "create", "/elsewhere/s")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "; check that --server / $DURABLE_SERVER is the server's streams root (for durable serve: http://HOST:PORT, which means http://HOST:PORT/v1/stream/)\n")
	})
	t.Run("close with data of another type", func(t *testing.T) {
		t.Parallel()
		c.ok(t, "create", "typed", "--json")
		r := c.run(t, "close", "typed", "x", "--content-type", "text/plain")
		assert.Equal(t, 1, r.code)
		assert.Equal(t, "durable close: "+srv.StreamURL("typed")+": content type does not match the stream's: sent text/plain, the stream's is application/json (HTTP 409); without --content-type the data is sent as the stream's type\n", r.stderr)
	})
	t.Run("closed stream", func(t *testing.T) {
		t.Parallel()
		c.ok(t, "create", "shut", "--json", "--closed")
		r := c.run(t, "append", "shut", "1")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "a closed stream takes no more appends")
	})
	t.Run("credentials in a stream URL never printed", func(t *testing.T) {
		t.Parallel()
		u := strings.Replace(srv.StreamURL("sec"), "http://", "http://user:pa55@", 1) + "?token=t0ken"
		for _, args := range [][]string{{"create", u}, {"head", u}, {"close", u}, {"delete", u}, {"delete", u}} {
			r := cli{}.run(t, args...)
			for _, secret := range []string{"pa55", "t0ken"} {
				assert.NotContains(t, r.stdout+r.stderr, secret, "%v", args[0])
			}
			assert.Contains(t, r.stdout+r.stderr, "REDACTED", "%v", args[0])
		}
	})
	t.Run("offset file locked names the holder", func(t *testing.T) {
		t.Parallel()
		c.ok(t, "create", "locked", "--json", "--data", "[1]")
		offsets := filepath.Join(t.TempDir(), "offsets")
		cmd, stdout, _ := c.start(t, "tail", "locked", "--offset-file", offsets)
		eventually(t, func() bool { return stdout.String() == "1\n" }, "first tail runs")
		r := c.run(t, "tail", "locked", "--offset-file", offsets)
		assert.Equal(t, 1, r.code)
		want := fmt.Sprintf("durable tail: lock %s: offset file is locked by process %d on host ", offsets, cmd.Process.Pid)
		assert.True(t, strings.HasPrefix(r.stderr, want), "%q does not start with %q", r.stderr, want)
		assert.True(t, strings.HasSuffix(r.stderr, "; stop that process, or use another file\n"), r.stderr)
	})
}
