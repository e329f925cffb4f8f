package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
)

func TestAppendProducer(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "{\"i\":%d}\n", i)
		}
		return b.String()
	}

	t.Run("batched and exactly once through faults", func(t *testing.T) {
		c.ok(t, "create", "p", "--json")
		// Every third POST is applied, then answered 503 or dropped: the
		// producer retries it and the server drops the duplicate.
		srv.InjectFault(testserver.Fault{Path: "p", Method: http.MethodPost, Status: 503, AfterApply: true, Count: 2})
		srv.InjectFault(testserver.Fault{Path: "p", Method: http.MethodPost, Drop: true, AfterApply: true, Count: 1})
		r := c.withStdin(lines(0, 2000)).ok(t, "append", "p", "--producer-id", "w1", "--max-batch-bytes", "2048", "--linger", "1ms", "--max-in-flight", "2")
		assert.NotEmpty(t, strings.TrimSpace(r.stdout))
		assert.Equal(t, lines(0, 2000), streamContent(t, srv, "p"))
	})
	t.Run("arguments", func(t *testing.T) {
		c.ok(t, "create", "pa", "--json")
		c.ok(t, "append", "pa", "--producer-id", "w", "1", "[2,3]")
		assert.Equal(t, "1\n[2,3]\n", streamContent(t, srv, "pa"))
	})
	t.Run("bytes", func(t *testing.T) {
		c.ok(t, "create", "pb", "--content-type", "text/plain")
		c.withStdin("hello\nworld\n").ok(t, "append", "pb", "--producer-id", "w")
		assert.Equal(t, "hello\nworld\n", streamContent(t, srv, "pb"))
	})
	t.Run("each run claims a new epoch from the epoch file", func(t *testing.T) {
		c.ok(t, "create", "pe", "--json")
		ef := filepath.Join(t.TempDir(), "epochs")
		c.ok(t, "append", "pe", "--producer-id", "w", "--epoch-file", ef, "1")
		c.ok(t, "append", "pe", "--producer-id", "w", "--epoch-file", ef, "2")
		assert.Equal(t, "1\n2\n", streamContent(t, srv, "pe"), "the second run's seq 0 is not a duplicate")
		st, err := offsetstore.OpenFile(ef)
		require.NoError(t, err)
		defer st.Close()
		e, ok, err := st.LoadEpoch(context.Background(), "w")
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Greater(t, e, int64(1_000_000_000_000), "time-based")
		// The clock "goes back": the saved epoch is a day ahead of it, so
		// the next run is behind whatever time the runs take on a busy
		// machine (a second ahead was overtaken by three slow runs).
		ahead := e + (24 * time.Hour).Milliseconds()
		require.NoError(t, st.SaveEpoch(context.Background(), "w", ahead))
		require.NoError(t, st.Close())
		c.ok(t, "append", "pe", "--producer-id", "w", "--epoch-file", ef, "3")
		assert.Equal(t, "1\n2\n3\n", streamContent(t, srv, "pe"))
		st, err = offsetstore.OpenFile(ef)
		require.NoError(t, err)
		defer st.Close()
		e2, _, err := st.LoadEpoch(context.Background(), "w")
		require.NoError(t, err)
		assert.Equal(t, ahead+1, e2, "saved + 1 when the clock is behind")
	})
	t.Run("default epochs grow: a rerun is not dropped", func(t *testing.T) {
		c.ok(t, "create", "pd", "--json")
		c.ok(t, "append", "pd", "--producer-id", "w", "1")
		c.ok(t, "append", "pd", "--producer-id", "w", "2")
		assert.Equal(t, "1\n2\n", streamContent(t, srv, "pd"))
	})
	t.Run("fenced by a later epoch", func(t *testing.T) {
		c.ok(t, "create", "pf", "--json")
		c.ok(t, "append", "pf", "--producer-id", "w", "--epoch", "5", "1")
		r := c.run(t, "append", "pf", "--producer-id", "w", "--epoch", "3", "2")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "epoch")
		assert.Equal(t, "1\n", streamContent(t, srv, "pf"))
	})
	t.Run("closed stream", func(t *testing.T) {
		c.ok(t, "create", "pc", "--json", "--closed")
		r := c.run(t, "append", "pc", "--producer-id", "w", "1")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "closed")
	})
	t.Run("usage", func(t *testing.T) {
		r := c.run(t, "append", "p", "--producer-id", "w", "--epoch", "1", "--epoch-file", "f", "1")
		assert.Equal(t, 2, r.code)
		r = c.run(t, "append", "p", "--producer-id", "w", "--max-in-flight", "0", "1")
		assert.Equal(t, 2, r.code)
	})
}
