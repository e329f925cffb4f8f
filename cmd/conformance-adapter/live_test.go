package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReadLive(t *testing.T) {
	t.Parallel()
	modes := []struct {
		name string
		live any
	}{
		{"long-poll", "long-poll"},
		{"sse", "sse"},
		{"auto", true},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			s := startSession(t)
			s.init(e)

			t.Run("catch-up-then-up-to-date", func(t *testing.T) {
				p := s.create("text/plain")
				s.appendData(p, "data1")
				s.appendData(p, "data2")
				res := ok(t, s.do(map[string]any{"type": "read", "path": p, "live": m.live, "timeoutMs": 2000, "waitForUpToDate": true}), "read")
				require.Equal(t, "data1data2", data(res))
				require.Equal(t, true, res["upToDate"])
			})

			t.Run("waits-for-new-data", func(t *testing.T) {
				p := s.create("text/plain")
				off := s.appendData(p, "initial")
				done := e.appendLater(t, p, "new-data", 300*time.Millisecond)
				start := time.Now()
				res := ok(t, s.do(map[string]any{"type": "read", "path": p, "offset": off, "live": m.live, "timeoutMs": 5000, "maxChunks": 1}), "read")
				require.NoError(t, <-done)
				require.Equal(t, "new-data", data(res))
				require.Less(t, time.Since(start), 4*time.Second, "maxChunks ends the read before its timeout")
			})

			t.Run("timeout-is-not-an-error", func(t *testing.T) {
				p := s.create("text/plain")
				off := s.appendData(p, "x")
				start := time.Now()
				res := ok(t, s.do(map[string]any{"type": "read", "path": p, "offset": off, "live": m.live, "timeoutMs": 700}), "read")
				require.Equal(t, 0, chunkCount(res))
				require.Equal(t, true, res["upToDate"])
				require.Equal(t, off, res["offset"])
				require.GreaterOrEqual(t, time.Since(start), 600*time.Millisecond)
				if m.name == "long-poll" {
					require.EqualValues(t, 204, res["status"], "the last long-poll timed out on the server")
				}
			})

			t.Run("closed-stream-ends-read", func(t *testing.T) {
				p := s.create("application/json")
				ok(t, s.do(map[string]any{"type": "append", "path": p, "data": `{"a":1}`}), "append")
				ok(t, s.do(map[string]any{"type": "close", "path": p, "data": `{"b":2}`}), "close")
				start := time.Now()
				res := ok(t, s.do(map[string]any{"type": "read", "path": p, "live": m.live, "timeoutMs": 5000}), "read")
				require.Less(t, time.Since(start), 3*time.Second)
				require.Equal(t, true, res["streamClosed"])
				require.Contains(t, data(res), `{"a":1}`)
				require.Contains(t, data(res), `{"b":2}`)
			})

			t.Run("json-chunks-are-arrays", func(t *testing.T) {
				p := s.create("application/json")
				ok(t, s.do(map[string]any{"type": "append", "path": p, "data": `{"k": "v"}`}), "append")
				res := ok(t, s.do(map[string]any{"type": "read", "path": p, "live": m.live, "timeoutMs": 2000, "waitForUpToDate": true}), "read")
				require.Equal(t, `[{"k":"v"}]`, data(res))
			})

			t.Run("json-empty-then-data", func(t *testing.T) {
				p := s.create("application/json")
				res := ok(t, s.do(map[string]any{"type": "read", "path": p, "live": m.live, "timeoutMs": 2000, "waitForUpToDate": true}), "read")
				require.Equal(t, 0, chunkCount(res), "an empty stream has no chunk: %v", res)
				require.Equal(t, true, res["upToDate"])
				done := e.appendLater(t, p, `{"id":1}`, 300*time.Millisecond)
				res = ok(t, s.do(map[string]any{"type": "read", "path": p, "live": m.live, "timeoutMs": 5000, "maxChunks": 1}), "read")
				require.NoError(t, <-done)
				require.Equal(t, `[{"id":1}]`, data(res))
			})

			t.Run("binary", func(t *testing.T) {
				p := s.create("application/octet-stream")
				s.appendData(p, "Hello World")
				res := ok(t, s.do(map[string]any{"type": "read", "path": p, "live": m.live, "timeoutMs": 2000, "waitForUpToDate": true}), "read")
				require.Equal(t, "Hello World", data(res))
			})

			t.Run("missing-stream", func(t *testing.T) {
				fails(t, s.do(map[string]any{"type": "read", "path": "/live-missing", "live": m.live, "timeoutMs": 2000}), "read", codeNotFound, 404)
			})
		})
	}
}

func TestReadSSEAfterCatchUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	p := s.create("text/plain")
	off := s.appendData(p, "old")
	done := e.appendLater(t, p, "new", 300*time.Millisecond)
	res := ok(t, s.do(map[string]any{"type": "read", "path": p, "offset": off, "live": "sse", "timeoutMs": 5000, "waitForUpToDate": false, "maxChunks": 1}), "read")
	require.NoError(t, <-done)
	require.Equal(t, "new", data(res))
	var sse int
	for _, r := range e.requests(p) {
		if r.URL.Query().Get("live") == "sse" {
			sse++
		}
	}
	require.Equal(t, 1, sse, "one SSE connection after the catch-up GET")
}
