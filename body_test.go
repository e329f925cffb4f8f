package durable

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// endless is a body that never ends; it counts what was read from it.
type endless struct{ n atomic.Int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n.Add(int64(len(p)))
	return len(p), nil
}

func (e *endless) Close() error { return nil }

func TestOversizedBodies(t *testing.T) {
	t.Parallel()
	const limit = 1 << 10
	t.Run("content-length over limit", func(t *testing.T) {
		t.Parallel()
		c, mt := mockClient(t, WithMaxResponseSize(limit))
		body := &endless{}
		mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
			return mkResp(req, 200, map[string]string{"Content-Type": "text/plain", "Stream-Next-Offset": "1"}, body, 1<<40), nil
		})
		_, err := c.Read(context.Background(), "s", ReadOptions{})
		require.ErrorIs(t, err, ErrResponseTooLarge)
		require.False(t, IsRetryable(err))
		require.Zero(t, body.n.Load(), "nothing read when Content-Length is already too large")
		require.Equal(t, 1, mt.GetTotalCallCount(), "not retried")
	})
	t.Run("endless chunked body", func(t *testing.T) {
		t.Parallel()
		c, mt := mockClient(t, WithMaxResponseSize(limit))
		body := &endless{}
		mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
			return mkResp(req, 200, map[string]string{"Content-Type": "text/plain", "Stream-Next-Offset": "1"}, body, -1), nil
		})
		_, err := c.Read(context.Background(), "s", ReadOptions{})
		require.ErrorIs(t, err, ErrResponseTooLarge)
		require.Less(t, body.n.Load(), int64(64<<10), "bounded read")
	})
	t.Run("huge error body", func(t *testing.T) {
		t.Parallel()
		c, mt := mockClient(t)
		body := &endless{}
		mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
			return mkResp(req, 404, nil, body, -1), nil
		})
		_, err := c.Head(context.Background(), "s")
		require.ErrorIs(t, err, ErrNotFound)
		var e *Error
		require.ErrorAs(t, err, &e)
		require.LessOrEqual(t, len(e.Message), maxMessage)
		require.Less(t, body.n.Load(), int64(64<<10))
	})
}
