package main

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

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
