package durable

import (
	"net/http"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// TestReaderPrefetchCatchUp: with many chunks to catch up on, the read
// ahead delivers every message once and in order, sends one GET per chunk
// (the read ahead replaces a read, it never adds one), and a failed read
// ahead is retried like any read.
func TestReaderPrefetchCatchUp(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "clean", true: "a read ahead fails"}[fail]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, c := newReaderServer(t, testserver.WithChunkLimit(64))
			const stream, total = "prefetch", 200
			createJSON(t, c, stream)
			for i := 0; i < total; i += 20 {
				appendEvents(t, c, stream, i, 20)
			}
			srv.ResetRequests()
			if fail {
				srv.InjectFault(testserver.Fault{Path: stream, Method: http.MethodGet, Status: 503, Count: 2})
			}
			r := openReader[event](t, c, stream, WithLive(LiveNone))
			ctx := ctxT(t, 10*time.Second)
			n := 0
			for m, err := range r.Messages(ctx) {
				require.NoError(t, err)
				require.Equal(t, n, m.Value.N)
				n++
			}
			require.Equal(t, total, n)
			gets := srv.Requests(stream, http.MethodGet)
			chunks := r.Stats().Requests
			require.EqualValues(t, gets, chunks, "the server saw exactly the Reader's requests")
			if !fail {
				// ~13 bytes a message, at most 64 bytes a chunk: about 5 messages a chunk.
				require.Less(t, gets, total/2, "one GET per chunk, not per message")
				require.Greater(t, gets, total/10)
			}
		})
	}
}
