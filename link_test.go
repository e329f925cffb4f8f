package durable

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/durablego/durable/internal/link"
	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// TestLink: a request sent through the internal link is sent like the
// Client's own (send: headers, retries), and fails with an *Error naming
// its operation and the redacted URL.
func TestLink(t *testing.T) {
	t.Parallel()
	srv := testserver.New()
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.StreamURL(""), WithRetry(fastRetry()), WithHeader("X-Static", "s"),
		WithHeaderFunc(func(context.Context) (http.Header, error) { return http.Header{"X-Token": {"fresh"}}, nil }))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodPut, Status: 503, Count: 1})
	l, ok := link.Of(c)
	require.True(t, ok)
	_, ok = link.Of("not a client")
	require.False(t, ok)
	ctx := context.Background()

	resp, err := l.Do(ctx, link.Request{Op: "create", Method: http.MethodPut, Target: "s", Retry: true,
		Header: http.Header{"Content-Type": {"text/plain"}}})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.Status)
	require.Equal(t, 2, srv.Requests("s", http.MethodPut), "the 503 was retried")
	require.NotEmpty(t, resp.Header.Get("Stream-Next-Offset"))

	_, err = l.Do(ctx, link.Request{Op: "claim", Method: http.MethodGet, Target: srv.StreamURL("missing") + "?token=secret"})
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "claim", e.Op)
	require.Equal(t, http.StatusNotFound, e.Status)
	require.NotContains(t, err.Error(), "secret")
	require.True(t, errors.Is(err, ErrNotFound))
	retry, _ := l.Classify(err, true)
	require.False(t, retry)
	require.Equal(t, c.cfg.retry.internal(), l.Policy())
}
