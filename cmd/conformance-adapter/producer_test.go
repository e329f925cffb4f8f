package main

import (
	"context"
	"testing"

	"github.com/durablego/durable"
	"github.com/stretchr/testify/require"
)

func TestIdempotentAppend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)

	t.Run("json", func(t *testing.T) {
		p := s.create("application/json")
		res := ok(t, s.do(map[string]any{"type": "idempotent-append", "path": p, "producerId": "p1", "epoch": 0, "data": `{"message": "hello"}`}), "idempotent-append")
		require.EqualValues(t, 200, res["status"])
		off := res["offset"].(string)
		res = ok(t, s.do(map[string]any{"type": "idempotent-append", "path": p, "producerId": "p1", "epoch": 0, "data": `{"n":2}`}), "idempotent-append")
		require.Greater(t, res["offset"].(string), off)
		read := ok(t, s.do(map[string]any{"type": "read", "path": p}), "read")
		require.Equal(t, `[{"message":"hello"},{"n":2}]`, data(read))
		// The two appends were sequence 0 and 1 of one producer.
		pr := e.requests(p)
		var seqs []string
		for _, r := range pr {
			if r.Method == "POST" {
				seqs = append(seqs, r.Header.Get("Producer-Seq"))
				require.Equal(t, "p1", r.Header.Get("Producer-Id"))
				require.Equal(t, "0", r.Header.Get("Producer-Epoch"))
			}
		}
		require.Equal(t, []string{"0", "1"}, seqs)
		// Not one JSON value: rejected before any request.
		fails(t, s.do(map[string]any{"type": "idempotent-append", "path": p, "producerId": "p1", "epoch": 0, "data": `{oops`}), "idempotent-append", codeInvalidArgument, 0)
	})

	t.Run("stale-epoch-and-auto-claim", func(t *testing.T) {
		p := s.create("text/plain")
		_, err := e.direct.Append(context.Background(), e.url+p, []byte("from-epoch-5"),
			durable.AppendOptions{ContentType: "text/plain", Producer: &durable.Producer{ID: "claim", Epoch: 5}})
		require.NoError(t, err)
		fails(t, s.do(map[string]any{"type": "idempotent-append", "path": p, "producerId": "claim", "epoch": 0, "data": "zombie"}), "idempotent-append", codeUnexpected, 403)
		ok(t, s.do(map[string]any{"type": "idempotent-append", "path": p, "producerId": "claim", "epoch": 1, "autoClaim": true, "data": "recovered"}), "idempotent-append")
		read := ok(t, s.do(map[string]any{"type": "read", "path": p}), "read")
		require.Equal(t, "from-epoch-5recovered", data(read))
		last := e.requests(p)
		var epoch string
		for _, r := range last {
			if r.Method == "POST" {
				epoch = r.Header.Get("Producer-Epoch")
			}
		}
		require.Equal(t, "6", epoch, "auto-claim takes the server's epoch + 1")
	})

	t.Run("missing-stream", func(t *testing.T) {
		fails(t, s.do(map[string]any{"type": "idempotent-append", "path": "/producer-missing", "producerId": "x", "epoch": 0, "data": "d"}), "idempotent-append", codeNotFound, 404)
	})
}

func TestIdempotentAppendBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)
	for _, inFlight := range []int{1, 4} {
		p := s.create("application/json")
		items := []string{`{"i":0}`, `{"i":1}`, `{"i":2}`, `{"i":3}`, `{"i":4}`, `{"i":5}`}
		res := ok(t, s.do(map[string]any{"type": "idempotent-append-batch", "path": p, "producerId": "b", "epoch": 0, "items": items, "maxInFlight": inFlight}), "idempotent-append-batch")
		require.EqualValues(t, 200, res["status"])
		read := ok(t, s.do(map[string]any{"type": "read", "path": p}), "read")
		require.Equal(t, `[{"i":0},{"i":1},{"i":2},{"i":3},{"i":4},{"i":5}]`, data(read), "order kept with %d in flight", inFlight)
		posts := 0
		for _, r := range e.requests(p) {
			if r.Method == "POST" {
				posts++
			}
		}
		if inFlight == 1 {
			require.LessOrEqual(t, posts, 2, "items are batched")
		} else {
			require.GreaterOrEqual(t, posts, len(items), "one item per batch to keep several in flight")
		}
	}
	// The same (producer, epoch) again would restart at sequence 0: the
	// Writer reports the reuse instead of losing the batch as a duplicate.
	p := s.create("text/plain")
	ok(t, s.do(map[string]any{"type": "idempotent-append-batch", "path": p, "producerId": "r", "epoch": 0, "items": []string{"a", "b"}}), "idempotent-append-batch")
	fails(t, s.do(map[string]any{"type": "idempotent-append-batch", "path": p, "producerId": "r", "epoch": 0, "items": []string{"c"}}), "idempotent-append-batch", codeConflict, 0)
	fails(t, s.do(map[string]any{"type": "idempotent-append-batch", "path": "/batch-missing", "producerId": "r", "epoch": 0, "items": []string{"c"}}), "idempotent-append-batch", codeNotFound, 404)
}

func TestIdempotentCloseAndDetach(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	s := startSession(t)
	s.init(e)

	t.Run("close-with-final-message", func(t *testing.T) {
		p := s.create("text/plain")
		ok(t, s.do(map[string]any{"type": "idempotent-append", "path": p, "producerId": "p", "epoch": 0, "data": "message-1"}), "idempotent-append")
		res := ok(t, s.do(map[string]any{"type": "idempotent-close", "path": p, "producerId": "p", "epoch": 0, "data": "final"}), "idempotent-close")
		require.EqualValues(t, 200, res["status"])
		final := res["finalOffset"].(string)
		head := ok(t, s.do(map[string]any{"type": "head", "path": p}), "head")
		require.Equal(t, true, head["streamClosed"])
		require.Equal(t, final, head["offset"])
		// Again, same producer and data: the same outcome, nothing appended twice.
		ok(t, s.do(map[string]any{"type": "idempotent-close", "path": p, "producerId": "p", "epoch": 0, "data": "final"}), "idempotent-close")
		read := ok(t, s.do(map[string]any{"type": "read", "path": p}), "read")
		require.Equal(t, "message-1final", data(read))
		require.Equal(t, true, read["streamClosed"])
		// Another producer with a final message cannot append it.
		fails(t, s.do(map[string]any{"type": "idempotent-close", "path": p, "producerId": "other", "epoch": 0, "data": "late"}), "idempotent-close", codeStreamClosed, 409)
	})

	t.Run("close-without-data", func(t *testing.T) {
		p := s.create("text/plain")
		ok(t, s.do(map[string]any{"type": "idempotent-close", "path": p, "producerId": "p", "epoch": 0}), "idempotent-close")
		ok(t, s.do(map[string]any{"type": "idempotent-close", "path": p, "producerId": "p", "epoch": 0}), "idempotent-close")
		head := ok(t, s.do(map[string]any{"type": "head", "path": p}), "head")
		require.Equal(t, true, head["streamClosed"])
		// The SDK's choice (Writer.CloseStream): a stream already closed
		// counts as closed for any producer when no final message is given.
		ok(t, s.do(map[string]any{"type": "idempotent-close", "path": p, "producerId": "other", "epoch": 0}), "idempotent-close")
	})

	t.Run("detach-keeps-stream-open", func(t *testing.T) {
		p := s.create("text/plain")
		ok(t, s.do(map[string]any{"type": "idempotent-append", "path": p, "producerId": "p", "epoch": 0, "data": "m1"}), "idempotent-append")
		res := ok(t, s.do(map[string]any{"type": "idempotent-detach", "path": p, "producerId": "p", "epoch": 0}), "idempotent-detach")
		require.EqualValues(t, 200, res["status"])
		head := ok(t, s.do(map[string]any{"type": "head", "path": p}), "head")
		require.Equal(t, false, head["streamClosed"])
		s.appendData(p, "m2")
		// Detaching a producer never used opens and stops a Writer.
		ok(t, s.do(map[string]any{"type": "idempotent-detach", "path": p, "producerId": "never", "epoch": 3}), "idempotent-detach")
		fails(t, s.do(map[string]any{"type": "idempotent-detach", "path": "/detach-missing", "producerId": "x", "epoch": 0}), "idempotent-detach", codeNotFound, 404)
	})

	t.Run("close-missing-stream", func(t *testing.T) {
		fails(t, s.do(map[string]any{"type": "idempotent-close", "path": "/iclose-missing", "producerId": "x", "epoch": 0}), "idempotent-close", codeNotFound, 404)
	})
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
