package durable

import (
	"context"
	"io"
	"net/http"
	"strings"
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

// truncated returns some bytes, then io.ErrUnexpectedEOF, like a
// connection cut mid-body.
type truncated struct{ r io.Reader }

func (t *truncated) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err == io.EOF {
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (t *truncated) Close() error { return nil }

func TestTruncatedBody(t *testing.T) {
	t.Parallel()
	hdr := map[string]string{"Content-Type": "text/plain", "Stream-Next-Offset": "9"}
	t.Run("retried for GET", func(t *testing.T) {
		t.Parallel()
		c, mt := mockClient(t)
		var calls atomic.Int32
		mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				return mkResp(req, 200, hdr, &truncated{strings.NewReader("hel")}, 5), nil
			}
			return mkResp(req, 200, hdr, io.NopCloser(strings.NewReader("hello")), 5), nil
		})
		ch, err := c.Read(context.Background(), "s", ReadOptions{})
		require.NoError(t, err)
		require.Equal(t, "hello", string(ch.Data))
		require.Equal(t, int32(2), calls.Load())
	})
	t.Run("single attempt reports it", func(t *testing.T) {
		t.Parallel()
		c, mt := mockClient(t)
		mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
			return mkResp(req, 200, hdr, &truncated{strings.NewReader("hel")}, 5), nil
		})
		u, _ := c.URL("s")
		_, err := c.getChunk(context.Background(), u, readQuery{limit: c.cfg.maxResponse}, new([]byte))
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.True(t, IsRetryable(err))
		require.Equal(t, 1, mt.GetTotalCallCount())
	})
}
