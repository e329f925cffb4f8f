package durable

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Retry rules checked against httpmock (the testserver versions are in
// server_test.go).

func TestPlainPostNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		r    func(*http.Request) (*http.Response, error)
	}{
		{"503", reply(503, nil, "busy")},
		{"429", reply(429, map[string]string{"Retry-After": "0"}, "")},
		{"reset after send", func(*http.Request) (*http.Response, error) {
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t)
			mt.RegisterNoResponder(tc.r)
			_, err := c.Append(context.Background(), "s", []byte("x"), AppendOptions{ContentType: "text/plain"})
			require.Error(t, err)
			require.Equal(t, 1, mt.GetTotalCallCount())
		})
	}
}

func TestPostRetriedWhenSafe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		data []byte
		opts AppendOptions
		fail func(*http.Request) (*http.Response, error)
	}{
		{"dial error, plain append", []byte("x"), AppendOptions{ContentType: "text/plain"}, func(*http.Request) (*http.Response, error) {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
		}},
		{"503, producer append", []byte("x"), AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}}, reply(503, nil, "")},
		{"reset, producer append", []byte("x"), AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}}, func(*http.Request) (*http.Response, error) {
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
		}},
		{"503, close-only", nil, AppendOptions{Close: true}, reply(503, nil, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t)
			var n atomic.Int32
			mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
				if n.Add(1) <= 2 {
					return tc.fail(req)
				}
				return reply(204, map[string]string{"Stream-Next-Offset": "7", "Stream-Closed": "true"}, "")(req)
			})
			res, err := c.Append(context.Background(), "s", tc.data, tc.opts)
			require.NoError(t, err)
			require.Equal(t, Offset("7"), res.NextOffset)
			require.Equal(t, int32(3), n.Load())
		})
	}
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t) // fastRetry: 4 attempts
	mt.RegisterNoResponder(reply(503, map[string]string{"Retry-After": "0"}, "down"))
	_, err := c.Head(context.Background(), "s")
	require.ErrorIs(t, err, ErrServer)
	require.True(t, IsRetryable(err))
	require.Equal(t, 4, mt.GetTotalCallCount())
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 503, e.Status)
	require.Equal(t, "down", e.Message)
}

func TestSingleAttemptHelpersDoNotRetry(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t)
	mt.RegisterNoResponder(reply(503, map[string]string{"Retry-After": "2"}, ""))
	u, err := c.URL("s")
	require.NoError(t, err)
	start := time.Now()
	_, err = c.appendOnce(context.Background(), u, []byte("x"), AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}})
	require.ErrorIs(t, err, ErrServer)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 2*time.Second, e.RetryAfter)
	_, err = c.getChunk(context.Background(), u, readQuery{limit: c.cfg.maxResponse}, new([]byte))
	require.ErrorIs(t, err, ErrServer)
	_, err = c.headOnce(context.Background(), u)
	require.ErrorIs(t, err, ErrServer)
	_, err = c.openEvents(context.Background(), "sse", u, "", "", c.cfg.maxResponse)
	require.ErrorIs(t, err, ErrServer)
	require.Equal(t, 4, mt.GetTotalCallCount())
	require.Less(t, time.Since(start), time.Second, "a single attempt never waits")
}

func TestHeaderFuncCalledPerAttempt(t *testing.T) {
	t.Parallel()
	var gen atomic.Int32
	c, mt := mockClient(t, WithHeaderFunc(func(context.Context) (http.Header, error) {
		return http.Header{"Authorization": {"Bearer t" + string(rune('0'+gen.Add(1)))}}, nil
	}))
	var seen []string
	mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
		seen = append(seen, req.Header.Get("Authorization"))
		if len(seen) == 1 {
			return reply(401, nil, "expired")(req)
		}
		if len(seen) == 2 {
			return reply(503, nil, "")(req)
		}
		return reply(200, map[string]string{"Stream-Next-Offset": "1"}, "")(req)
	})
	// 401 is not retried.
	_, err := c.Head(context.Background(), "s")
	require.ErrorIs(t, err, ErrUnauthorized)
	// 503 then success: the retry carries a fresh token.
	_, err = c.Head(context.Background(), "s")
	require.NoError(t, err)
	require.Equal(t, []string{"Bearer t1", "Bearer t2", "Bearer t3"}, seen)
}

func TestCtxCancelDuringBackoffMock(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t, WithRetry(RetryPolicy{Initial: time.Hour, Max: time.Hour, Multiplier: 1, MaxAttempts: 3}))
	mt.RegisterNoResponder(reply(503, nil, ""))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Head(ctx, "s")
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), 2*time.Second)
	require.Equal(t, 1, mt.GetTotalCallCount())
}

func TestDeadlineShorterThanBackoffGivesUp(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t, WithRetry(RetryPolicy{Initial: time.Hour, Max: time.Hour, Multiplier: 1, MaxAttempts: 3}), WithRequestTimeout(time.Second))
	mt.RegisterNoResponder(reply(503, nil, ""))
	start := time.Now()
	_, err := c.Head(context.Background(), "s")
	require.ErrorIs(t, err, ErrServer, "the real failure, not a timeout, when the wait cannot fit")
	require.Less(t, time.Since(start), 500*time.Millisecond)
}
