package durable

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/require"
)

// Responses a real server would not send: each must become a typed error.

func TestOddAppendResponses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		opts AppendOptions
	}{
		{"missing next offset", map[string]string{}, AppendOptions{ContentType: "text/plain"}},
		{"sentinel -1", map[string]string{"Stream-Next-Offset": "-1"}, AppendOptions{ContentType: "text/plain"}},
		{"sentinel now", map[string]string{"Stream-Next-Offset": "now"}, AppendOptions{ContentType: "text/plain"}},
		{"offset with slash", map[string]string{"Stream-Next-Offset": "a/b"}, AppendOptions{ContentType: "text/plain"}},
		{"offset too long", map[string]string{"Stream-Next-Offset": strings.Repeat("9", 2000)}, AppendOptions{ContentType: "text/plain"}},
		{"garbage producer epoch", map[string]string{"Stream-Next-Offset": "1", "Producer-Epoch": "x"},
			AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}}},
		{"garbage producer seq", map[string]string{"Stream-Next-Offset": "1", "Producer-Seq": "-3"},
			AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}}},
		{"close not confirmed", map[string]string{"Stream-Next-Offset": "1"}, AppendOptions{ContentType: "text/plain", Close: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t)
			mt.RegisterResponder(http.MethodPost, mockBase+"s", reply(http.StatusNoContent, tc.hdr, ""))
			_, err := c.Append(context.Background(), "s", []byte("x"), tc.opts)
			require.ErrorIs(t, err, ErrProtocol)
			require.False(t, IsRetryable(err))
		})
	}
}

func TestOddReadResponses(t *testing.T) {
	t.Parallel()
	ok := func(extra map[string]string) map[string]string {
		h := map[string]string{"Content-Type": "text/plain", "Stream-Next-Offset": "5"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		status int
		hdr    map[string]string
		body   string
		opts   ReadOptions
	}{
		{"missing next offset", 200, map[string]string{"Content-Type": "text/plain"}, "x", ReadOptions{}},
		{"next offset -1", 200, ok(map[string]string{"Stream-Next-Offset": "-1"}), "x", ReadOptions{}},
		{"next offset now", 200, ok(map[string]string{"Stream-Next-Offset": "now"}), "", ReadOptions{Offset: OffsetNow}},
		{"goes backwards", 200, ok(map[string]string{"Stream-Next-Offset": "3"}), "", ReadOptions{Offset: "4"}},
		{"event stream to plain read", 200, ok(map[string]string{"Content-Type": "text/event-stream"}), "data: x\n\n", ReadOptions{}},
		{"data without content type", 200, map[string]string{"Stream-Next-Offset": "5"}, "x", ReadOptions{}},
		{"unexpected content type", 200, ok(map[string]string{"Content-Type": "text/html"}), "<html>", ReadOptions{ContentType: "application/json"}},
		{"json not an array", 200, ok(map[string]string{"Content-Type": "application/json"}), `{"a":1}`, ReadOptions{}},
		{"json invalid", 200, ok(map[string]string{"Content-Type": "application/json"}), `[1,`, ReadOptions{}},
		{"204 on catch-up", 204, ok(nil), "", ReadOptions{}},
		{"304 not asked for", 304, ok(nil), "", ReadOptions{}},
		{"control char cursor", 200, ok(map[string]string{"Stream-Cursor": "a\x01"}), "", ReadOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t)
			mt.RegisterNoResponder(reply(tc.status, tc.hdr, tc.body))
			_, err := c.Read(context.Background(), "s", tc.opts)
			require.ErrorIs(t, err, ErrProtocol)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, "read", e.Op)
		})
	}
}

func TestOddHeadResponses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"missing next offset", map[string]string{"Content-Type": "text/plain"}},
		{"bad ttl", map[string]string{"Stream-Next-Offset": "1", "Stream-TTL": "1.5"}},
		{"bad expires", map[string]string{"Stream-Next-Offset": "1", "Stream-Expires-At": "tomorrow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t)
			mt.RegisterNoResponder(reply(200, tc.hdr, ""))
			_, err := c.Head(context.Background(), "s")
			require.ErrorIs(t, err, ErrProtocol)
		})
	}
}

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
		c, mt := mockClient(t, WithMaxResponseBytes(limit))
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
		c, mt := mockClient(t, WithMaxResponseBytes(limit))
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

func TestCrossHostRedirect(t *testing.T) {
	t.Parallel()
	for _, target := range []string{"http://evil.test/steal", "https://mock.test/v1/stream/s", "http://mock.test:8080/v1/stream/s"} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t, WithHeader("X-Api-Key", "k"), WithHeaderFunc(func(context.Context) (http.Header, error) {
				return http.Header{"Authorization": {"Bearer secret"}}, nil
			}))
			mt.RegisterResponder(http.MethodGet, mockBase+"s", reply(http.StatusTemporaryRedirect, map[string]string{"Location": target}, ""))
			var leaked atomic.Bool
			mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
				leaked.Store(true)
				return mkResp(req, 200, nil, http.NoBody, 0), nil
			})
			_, err := c.Read(context.Background(), "s", ReadOptions{})
			require.ErrorIs(t, err, ErrCrossHostRedirect)
			require.False(t, leaked.Load(), "request sent to the redirect target")
			require.Equal(t, 1, mt.GetTotalCallCount(), "not retried")
		})
	}
	t.Run("same host followed", func(t *testing.T) {
		t.Parallel()
		c, mt := mockClient(t, WithHeader("X-Api-Key", "k"))
		mt.RegisterResponder(http.MethodGet, mockBase+"s", reply(http.StatusTemporaryRedirect, map[string]string{"Location": "/v1/stream/t"}, ""))
		mt.RegisterResponder(http.MethodGet, mockBase+"t", func(req *http.Request) (*http.Response, error) {
			require.Equal(t, "k", req.Header.Get("X-Api-Key"))
			return mkResp(req, 200, map[string]string{"Content-Type": "text/plain", "Stream-Next-Offset": "1"}, http.NoBody, 0), nil
		})
		_, err := c.Read(context.Background(), "s", ReadOptions{})
		require.NoError(t, err)
	})
}

func TestErrorURLRedacted(t *testing.T) {
	t.Parallel()
	mt := httpmock.NewMockTransport()
	c, err := NewClient("http://user:hunter2@mock.test/v1/stream/", WithHTTPClient(&http.Client{Transport: mt}), WithRetry(RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	mt.RegisterNoResponder(reply(404, nil, "no such stream"))
	_, err = c.Read(context.Background(), "http://mock.test/s?token=abc&offset=1", ReadOptions{})
	require.ErrorIs(t, err, ErrNotFound)
	require.NotContains(t, err.Error(), "abc")
	_, err = c.Head(context.Background(), "s")
	require.ErrorIs(t, err, ErrNotFound)
	require.NotContains(t, err.Error(), "hunter2")
	require.Contains(t, err.Error(), "no such stream")
}

func TestNetworkErrorRedacted(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t, WithRetry(RetryPolicy{MaxAttempts: 1}))
	mt.RegisterNoResponder(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("boom")
	})
	_, err := c.Head(context.Background(), "http://mock.test/v1/stream/s?token=abc")
	require.ErrorContains(t, err, "boom")
	require.NotContains(t, err.Error(), "abc")
}

func TestNetworkErrorTyped(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t, WithRetry(RetryPolicy{MaxAttempts: 1}))
	mt.RegisterNoResponder(func(*http.Request) (*http.Response, error) {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	})
	_, err := c.Head(context.Background(), "s")
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "head", e.Op)
	require.Zero(t, e.Status)
	require.True(t, IsRetryable(err))
}

func TestUserCheckRedirectConsulted(t *testing.T) {
	t.Parallel()
	mt := httpmock.NewMockTransport()
	stop := errors.New("no redirects here")
	hc := &http.Client{Transport: mt, CheckRedirect: func(*http.Request, []*http.Request) error { return stop }}
	c, err := NewClient(mockBase, WithHTTPClient(hc), WithRetry(RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	mt.RegisterResponder(http.MethodGet, mockBase+"s", reply(http.StatusFound, map[string]string{"Location": "/v1/stream/t"}, ""))
	_, err = c.Read(context.Background(), "s", ReadOptions{})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 1, mt.GetTotalCallCount())
}

// The Node reference server answers a producer duplicate with 204 and the
// producer headers but no Stream-Next-Offset; a first-time append must still
// carry the offset.
func TestProducerDuplicateWithoutOffset(t *testing.T) {
	t.Parallel()
	dup := map[string]string{"Producer-Epoch": "0", "Producer-Seq": "3"}
	prod := AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p", Seq: 3}}

	c, mt := mockClient(t)
	mt.RegisterResponder(http.MethodPost, mockBase+"s", reply(http.StatusNoContent, dup, ""))
	res, err := c.Append(context.Background(), "s", []byte("x"), prod)
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	require.Equal(t, Offset(""), res.NextOffset)
	require.Equal(t, int64(3), res.ProducerSeq)

	c, mt = mockClient(t)
	mt.RegisterResponder(http.MethodPost, mockBase+"s", reply(http.StatusOK, dup, ""))
	_, err = c.Append(context.Background(), "s", []byte("x"), prod)
	require.ErrorIs(t, err, ErrProtocol, "a 200 producer append without an offset")
}
