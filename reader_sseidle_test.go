package durable

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReaderSSEIdleTimeout: an SSE connection that goes silent without
// closing (a half-open connection, a NAT that dropped the flow) is given up
// after the idle timeout, and the Reader reconnects from its last position.
// The first connection here delivers one message and then says nothing,
// forever; only a reconnect gets the second message.
func TestReaderSSEIdleTimeout(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Stream-Next-Offset", "0000000000000000_0000000000000000")
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		n := conns.Add(1)
		if n == 1 {
			fmt.Fprint(w, "event: data\ndata: [{\"n\":0}]\n\nevent: control\ndata: {\"streamNextOffset\":\"0000000000000000_0000000000000001\",\"streamCursor\":\"1\"}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done() // silent until the client gives up
			return
		}
		require.Equal(t, "0000000000000000_0000000000000001", r.URL.Query().Get("offset"), "reconnect from the last position")
		fmt.Fprint(w, "event: data\ndata: [{\"n\":1}]\n\nevent: control\ndata: {\"streamNextOffset\":\"0000000000000000_0000000000000002\",\"streamClosed\":true}\n\n")
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL + "/")
	require.NoError(t, err)
	t.Cleanup(c.hc.CloseIdleConnections)
	r := openReader[event](t, c, "s", WithLive(LiveSSE), WithStart("0000000000000000_0000000000000000"), WithSSEIdleTimeout(200*time.Millisecond))
	r.reading.live = true // already at the tail: go straight to SSE
	ctx := ctxT(t, 5*time.Second)
	for i := range 2 {
		m, err := r.Next(ctx)
		require.NoError(t, err, "message %d: the silent connection was never given up", i)
		require.Equal(t, i, m.Value.N)
	}
	require.Equal(t, int32(2), conns.Load())
}

func TestWithSSEIdleTimeoutValidation(t *testing.T) {
	t.Parallel()
	c, err := NewClient("http://127.0.0.1:1/")
	require.NoError(t, err)
	_, err = NewReader[event](c, "s", WithSSEIdleTimeout(0))
	require.Error(t, err)
}
