package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDynamicHeadersAndParams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	p := s.create("text/plain")
	s.appendData(p, "seed")

	ok(t, s.do(map[string]any{"type": "set-dynamic-header", "name": "X-Request-Counter", "valueType": "counter"}), "set-dynamic-header")
	ok(t, s.do(map[string]any{"type": "set-dynamic-param", "name": "request_id", "valueType": "counter"}), "set-dynamic-param")
	for i := 1; i <= 3; i++ {
		res := ok(t, s.do(map[string]any{"type": "append", "path": p, "data": "x"}), "append")
		want := strconv.Itoa(i)
		require.Equal(t, map[string]any{"X-Request-Counter": want}, res["headersSent"])
		require.Equal(t, map[string]any{"request_id": want}, res["paramsSent"])
		reqs := e.requests(p)
		last := reqs[len(reqs)-1]
		require.Equal(t, want, last.Header.Get("X-Request-Counter"), "the header really went out")
		require.Equal(t, want, last.URL.Query().Get("request_id"), "the parameter really went out")
	}
	res := ok(t, s.do(map[string]any{"type": "read", "path": p, "live": false}), "read")
	require.Equal(t, map[string]any{"X-Request-Counter": "4"}, res["headersSent"], "one read, one request")
	require.Equal(t, map[string]any{"request_id": "4"}, res["paramsSent"])
	reqs := e.requests(p)
	require.NotEmpty(t, reqs[len(reqs)-1].URL.Query().Get("offset"), "the protocol's parameters are kept")

	// A token that changes between requests; a command header wins.
	ok(t, s.do(map[string]any{"type": "set-dynamic-header", "name": "Authorization", "valueType": "token", "initialValue": "Bearer v1"}), "set-dynamic-header")
	res = ok(t, s.do(map[string]any{"type": "append", "path": p, "data": "x"}), "append")
	require.Equal(t, "Bearer v1", res["headersSent"].(map[string]any)["Authorization"])
	ok(t, s.do(map[string]any{"type": "set-dynamic-header", "name": "Authorization", "valueType": "token", "initialValue": "Bearer v2"}), "set-dynamic-header")
	ok(t, s.do(map[string]any{"type": "append", "path": p, "data": "x", "headers": map[string]any{"Authorization": "Bearer fixed"}}), "append")
	reqs = e.requests(p)
	require.Equal(t, "Bearer fixed", reqs[len(reqs)-1].Header.Get("Authorization"))
	res = ok(t, s.do(map[string]any{"type": "append", "path": p, "data": "x"}), "append")
	require.Equal(t, "Bearer v2", res["headersSent"].(map[string]any)["Authorization"])

	// Timestamps.
	ok(t, s.do(map[string]any{"type": "set-dynamic-param", "name": "ts", "valueType": "timestamp"}), "set-dynamic-param")
	res = ok(t, s.do(map[string]any{"type": "append", "path": p, "data": "x"}), "append")
	ms, err := strconv.ParseInt(res["paramsSent"].(map[string]any)["ts"].(string), 10, 64)
	require.NoError(t, err)
	require.InDelta(t, time.Now().UnixMilli(), ms, 60_000)

	ok(t, s.do(map[string]any{"type": "clear-dynamic"}), "clear-dynamic")
	res = ok(t, s.do(map[string]any{"type": "append", "path": p, "data": "x"}), "append")
	require.Nil(t, res["headersSent"])
	require.Nil(t, res["paramsSent"])
	reqs = e.requests(p)
	require.Empty(t, reqs[len(reqs)-1].Header.Get("X-Request-Counter"))

	fails(t, s.do(map[string]any{"type": "set-dynamic-header", "name": "X", "valueType": "dice"}), "set-dynamic-header", codeInvalidArgument, 0)
	fails(t, s.do(map[string]any{"type": "set-dynamic-param", "name": "x", "valueType": "token"}), "set-dynamic-param", codeInvalidArgument, 0)
	fails(t, s.do(map[string]any{"type": "set-dynamic-header", "valueType": "counter"}), "set-dynamic-header", codeInvalidArgument, 0)
}
