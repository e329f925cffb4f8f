package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/syncbuf"
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

func TestValidate(t *testing.T) {
	t.Parallel()
	s := startSession(t) // validate needs no server
	tests := []struct {
		name     string
		target   map[string]any
		contains string // "" = valid
	}{
		{"retry-valid", map[string]any{"target": "retry-options", "maxRetries": 3, "initialDelayMs": 100, "maxDelayMs": 5000, "multiplier": 2.0}, ""},
		{"retry-zero-retries", map[string]any{"target": "retry-options", "maxRetries": 0}, ""},
		{"retry-negative-retries", map[string]any{"target": "retry-options", "maxRetries": -1}, "maxRetries"},
		{"retry-zero-initial", map[string]any{"target": "retry-options", "initialDelayMs": 0}, "initialDelayMs"},
		{"retry-negative-initial", map[string]any{"target": "retry-options", "initialDelayMs": -100}, "initialDelayMs"},
		{"retry-max-below-initial", map[string]any{"target": "retry-options", "initialDelayMs": 1000, "maxDelayMs": 500}, "maxDelayMs"},
		{"retry-multiplier-below-one", map[string]any{"target": "retry-options", "multiplier": 0.5}, "multiplier"},
		{"retry-fractional-retries", map[string]any{"target": "retry-options", "maxRetries": 1.5}, "maxRetries"},
		{"producer-valid", map[string]any{"target": "idempotent-producer", "producerId": "test-producer", "epoch": 0, "maxBatchBytes": 1048576}, ""},
		{"producer-defaults", map[string]any{"target": "idempotent-producer"}, ""},
		{"producer-empty-id", map[string]any{"target": "idempotent-producer", "producerId": ""}, "producerId"},
		{"producer-negative-epoch", map[string]any{"target": "idempotent-producer", "producerId": "p", "epoch": -1}, "epoch"},
		{"producer-zero-batch-bytes", map[string]any{"target": "idempotent-producer", "producerId": "p", "maxBatchBytes": 0}, "maxBatchBytes"},
		{"producer-negative-batch-bytes", map[string]any{"target": "idempotent-producer", "producerId": "p", "maxBatchBytes": -1}, "maxBatchBytes"},
		{"producer-zero-batch-items", map[string]any{"target": "idempotent-producer", "producerId": "p", "maxBatchItems": 0}, "maxBatchItems"},
		{"producer-negative-batch-items", map[string]any{"target": "idempotent-producer", "producerId": "p", "maxBatchItems": -1}, "maxBatchItems"},
		{"producer-batch-items", map[string]any{"target": "idempotent-producer", "producerId": "p", "maxBatchItems": 10}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.do(map[string]any{"type": "validate", "target": tt.target})
			if tt.contains == "" {
				ok(t, res, "validate")
				return
			}
			fails(t, res, "validate", codeInvalidArgument, 0)
			require.Contains(t, res["message"], tt.contains)
		})
	}
	fails(t, s.do(map[string]any{"type": "validate", "target": map[string]any{"target": "moon"}}), "validate", codeNotSupported, 0)
	fails(t, s.do(map[string]any{"type": "validate"}), "validate", codeInvalidArgument, 0)
}

func TestBenchmark(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	p := s.create("application/octet-stream")
	j := s.create("application/json")
	for i := 0; i < 5; i++ {
		ok(t, s.do(map[string]any{"type": "append", "path": j, "data": `{"i":` + strconv.Itoa(i) + `}`}), "append")
	}
	tests := []struct {
		op       map[string]any
		bytes    float64
		messages float64
	}{
		{map[string]any{"op": "append", "path": p, "size": 100}, 100, 0},
		{map[string]any{"op": "read", "path": p}, 100, 0},
		{map[string]any{"op": "roundtrip", "path": newPath(), "size": 64, "live": "long-poll"}, 128, 0},
		{map[string]any{"op": "roundtrip", "path": newPath(), "size": 64, "live": "sse", "contentType": "application/octet-stream"}, 128, 0},
		{map[string]any{"op": "roundtrip", "path": newPath(), "size": 100, "live": "sse", "contentType": "application/json"}, 200, 0},
		{map[string]any{"op": "append", "path": j, "size": 50}, 50, 0},
		{map[string]any{"op": "create", "path": newPath(), "contentType": "text/plain"}, 0, 0},
		{map[string]any{"op": "throughput_append", "path": p, "count": 200, "size": 10, "concurrency": 4}, 2000, 200},
		{map[string]any{"op": "throughput_append", "path": newPath(), "count": 10, "size": 10, "concurrency": 1}, 100, 10},
		{map[string]any{"op": "throughput_read", "path": j, "expectedCount": 6}, 0, 6},
	}
	for i, tt := range tests {
		t.Run(tt.op["op"].(string), func(t *testing.T) {
			id := "it-" + strconv.Itoa(i)
			res := ok(t, s.do(map[string]any{"type": "benchmark", "iterationId": id, "operation": tt.op}), "benchmark")
			require.Equal(t, id, res["iterationId"])
			ns, err := strconv.ParseInt(res["durationNs"].(string), 10, 64)
			require.NoError(t, err)
			require.Positive(t, ns)
			m := res["metrics"].(map[string]any)
			if tt.bytes > 0 {
				require.Equal(t, tt.bytes, m["bytesTransferred"])
			}
			if tt.messages > 0 {
				require.Equal(t, tt.messages, m["messagesProcessed"])
			}
		})
	}
	head := ok(t, s.do(map[string]any{"type": "head", "path": p}), "head")
	require.NotEmpty(t, head["offset"])
	fails(t, s.do(map[string]any{"type": "benchmark", "iterationId": "x", "operation": map[string]any{"op": "juggle", "path": p}}), "benchmark", codeNotSupported, 0)
	fails(t, s.do(map[string]any{"type": "benchmark", "iterationId": "x", "operation": map[string]any{"op": "read", "path": "/bench-missing"}}), "benchmark", codeNotFound, 404)
	fails(t, s.do(map[string]any{"type": "benchmark", "iterationId": "x"}), "benchmark", codeInvalidArgument, 0)
}

// TestBinary builds the adapter and drives it through its real stdin and
// stdout, as the runner does: every stdout line is one JSON result, and
// shutdown ends the process with status 0.
func TestBinary(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	bin := filepath.Join(t.TempDir(), "conformance-adapter")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)

	path := newPath()
	cmds := []map[string]any{
		{"type": "init", "serverUrl": e.url},
		{"type": "create", "path": path, "contentType": "text/plain"},
		{"type": "append", "path": path, "data": "line\u2028sep"},
		{"type": "read", "path": path, "live": "long-poll", "timeoutMs": 500},
		{"type": "head", "path": "/missing-binary"},
		{"type": "shutdown"},
	}
	var results []map[string]any
	for _, c := range cmds {
		b, err := json.Marshal(c)
		require.NoError(t, err)
		_, err = stdin.Write(append(b, '\n'))
		require.NoError(t, err)
		require.True(t, sc.Scan(), "no result for %s (stderr: %s)", b, stderr.String())
		var res map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &res), "not JSON: %q", sc.Text())
		require.NotContains(t, sc.Text(), "\u2028", "U+2028 is escaped so a line stays a line")
		results = append(results, res)
	}
	require.False(t, sc.Scan(), "nothing after the shutdown result: %q", sc.Text())
	require.NoError(t, cmd.Wait())
	require.Empty(t, stderr.String())

	ok(t, results[0], "init")
	require.EqualValues(t, 201, ok(t, results[1], "create")["status"])
	ok(t, results[2], "append")
	read := ok(t, results[3], "read")
	require.Equal(t, "line\u2028sep", data(read))
	fails(t, results[4], "head", codeNotFound, 404)
	ok(t, results[5], "shutdown")
}
