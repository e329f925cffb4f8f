package durable

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// TestReaderPrefetchCatchUp: with many chunks to catch up on, the Reader
// reads the next chunk ahead while it hands out this one, delivers every
// message once and in order, and sends one GET per chunk (the read ahead
// replaces a read, it never adds one); a read ahead that fails is retried
// like any read, after the chunk in hand is delivered.
func TestReaderPrefetchCatchUp(t *testing.T) {
	t.Parallel()
	const total = 200
	// fill makes a stream of total messages served in chunks of at most 64
	// bytes (~13 bytes a message: about 5 messages a chunk).
	fill := func(t *testing.T, stream string, copts ...Option) (*testserver.Server, *Client) {
		srv, c := newServer(t, []testserver.Option{testserver.WithChunkLimit(64)}, copts...)
		createJSON(t, c, stream)
		for i := 0; i < total; i += 20 {
			appendEvents(t, c, stream, i, 20)
		}
		srv.ResetRequests()
		return srv, c
	}

	t.Run("clean", func(t *testing.T) {
		t.Parallel()
		const stream = "prefetch"
		srv, c := fill(t, stream)
		r := openReader[event](t, c, stream, WithLive(LiveNone))
		n := 0
		for m, err := range r.Messages(ctxT(t, 10*time.Second)) {
			require.NoError(t, err)
			require.Equal(t, n, m.Value.N)
			n++
		}
		require.Equal(t, total, n)
		gets := srv.Requests(stream, http.MethodGet)
		require.EqualValues(t, gets, r.Stats().Requests, "the server saw exactly the Reader's requests")
		require.Less(t, gets, total/2, "one GET per chunk, not per message")
		require.Greater(t, gets, total/10)
	})

	t.Run("a read ahead fails", func(t *testing.T) {
		t.Parallel()
		const stream = "prefetch-fails"
		h := &failSecondRead{started: make(chan struct{})}
		srv, c := fill(t, stream, WithHooks(h))
		h.fail = func() {
			srv.InjectFault(testserver.Fault{Path: stream, Method: http.MethodGet, Status: 503, Count: 2})
		}
		r := openReader[event](t, c, stream, WithLive(LiveNone))
		ctx := ctxT(t, 10*time.Second)
		var offsets []Offset // each message's chunk: the offset its read started from
		var chunk Offset     // within a chunk every position but the last is (its offset, index+1)
		for m, err := range r.Messages(ctx) {
			require.NoError(t, err)
			require.Equal(t, len(offsets), m.Value.N, "every message once, in order")
			if len(offsets) == 0 {
				// The first chunk is in hand: the read of the second one
				// has started (ahead), or it never will before Next.
				select {
				case <-h.started:
				case <-ctx.Done():
					t.Fatal("the second chunk was not read ahead while the first was handed out")
				}
			}
			if m.Position.Skip > 0 {
				chunk = Offset(m.Position.Offset)
			}
			offsets = append(offsets, chunk)
		}
		require.Len(t, offsets, total)

		h.mu.Lock()
		defer h.mu.Unlock()
		i := 0
		for i < len(offsets) && offsets[i] == offsets[0] {
			i++
		}
		require.Greater(t, i, 1, "the first chunk holds several messages")
		require.Less(t, i, total)
		require.Equal(t, offsets[i], h.second, "the failed read was the second chunk's")
		require.Equal(t, []int{503, 503, 0}, h.outcomes,
			"the read ahead failed, its retry failed, the next retry brought the chunk")
		require.GreaterOrEqual(t, r.Stats().Retries, int64(2))
		require.EqualValues(t, srv.Requests(stream, http.MethodGet), r.Stats().Requests, "the server saw exactly the Reader's requests")
	})
}

// failSecondRead is a hook that fails a Reader's read of its second chunk:
// when the first read of another offset than the first read's starts, it
// calls fail (which has the server answer that read and the next with
// 503s) and closes started; it records the outcome of every read of that
// offset (0 when it brought the chunk, else the status).
type failSecondRead struct {
	fail    func()
	started chan struct{}

	mu            sync.Mutex
	first, second Offset
	outcomes      []int
}

func (h *failSecondRead) OnStart(ctx context.Context, ev StartEvent) context.Context {
	if ev.Op != "read" {
		return ctx
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.first == "":
		h.first = ev.Offset
	case h.second == "" && ev.Offset != h.first:
		h.second = ev.Offset
		h.fail()
		close(h.started)
	}
	return ctx
}

func (h *failSecondRead) OnFetch(ev FetchEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.second == "" || ev.Offset != h.second {
		return
	}
	var e *Error
	switch {
	case ev.Err == nil:
		h.outcomes = append(h.outcomes, 0)
	case errors.As(ev.Err, &e):
		h.outcomes = append(h.outcomes, e.Status)
	default:
		h.outcomes = append(h.outcomes, -1)
	}
}
