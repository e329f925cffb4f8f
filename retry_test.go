package durable

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// Retry rules, against the testserver and, for what a real server never
// sends, against httpmock.

// TestRetryGivesUpAfterMaxAttempts: a server that keeps answering 503 is
// tried MaxAttempts times; the last answer is the (retryable) error.
func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil) // fastRetry: 4 attempts
	srv.InjectFault(testserver.Fault{Path: "s", Status: 503})
	_, err := c.Read(context.Background(), "s", ReadOptions{})
	require.ErrorIs(t, err, ErrServer)
	require.True(t, IsRetryable(err))
	require.Equal(t, 4, srv.Requests("s", http.MethodGet))
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 503, e.Status)
	require.Equal(t, "injected fault", e.Message)
}

// TestSingleAttemptHelpersDoNotRetry: the one-attempt paths (the Writer's
// and the Reader's, which run their own retry loop) send one request and
// return the failure with its Retry-After, without waiting.
func TestSingleAttemptHelpersDoNotRetry(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil)
	_, err := c.Create(context.Background(), "s", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	srv.ResetRequests()
	srv.InjectFault(testserver.Fault{Path: "s", Status: 503, RetryAfter: 2 * time.Second})
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
	require.Equal(t, 4, srv.Requests("s", ""))
	require.Less(t, time.Since(start), time.Second, "a single attempt never waits")
}

// TestDeadlineShorterThanBackoffGivesUp: when the next wait cannot fit in
// the call's time, the call ends at once with the failure itself.
func TestDeadlineShorterThanBackoffGivesUp(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil, WithRetry(RetryPolicy{Initial: time.Hour, Max: time.Hour, Multiplier: 1, MaxAttempts: 3}))
	srv.InjectFault(testserver.Fault{Path: "s", Status: 503})
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := c.Head(ctx, "s")
	require.ErrorIs(t, err, ErrServer, "the real failure, not a timeout, when the wait cannot fit")
	require.Less(t, time.Since(start), 500*time.Millisecond)
	require.Equal(t, 1, srv.Requests("s", http.MethodHead))
}

// TestRetryAfterBeyondMaxElapsedGivesUp: a Retry-After beyond the retry
// budget ends the call at once with the 429 and its Retry-After.
func TestRetryAfterBeyondMaxElapsedGivesUp(t *testing.T) {
	t.Parallel()
	p := fastRetry()
	p.MaxAttempts, p.MaxElapsed = 0, 500*time.Millisecond
	srv, c := newServer(t, nil, WithRetry(p))
	srv.InjectFault(testserver.Fault{Path: "s", Status: 429, RetryAfter: time.Minute})
	start := time.Now()
	_, err := c.Head(context.Background(), "s")
	require.ErrorIs(t, err, ErrStatus)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, time.Minute, e.RetryAfter)
	require.Less(t, time.Since(start), 400*time.Millisecond)
	require.Equal(t, 1, srv.Requests("s", http.MethodHead))
}

// TestRetryTwo503ThenSuccess: every idempotent request, a producer append
// and a close-only append (idempotent without a producer) are retried
// through two 503s.
func TestRetryTwo503ThenSuccess(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil)
	ctx := context.Background()
	_, err := c.Create(ctx, "r", CreateOptions{ContentType: "text/plain", Data: []byte("x")})
	require.NoError(t, err)
	for _, tc := range []struct {
		name, method string
		do           func() error
	}{
		{"HEAD", http.MethodHead, func() error { _, err := c.Head(ctx, "r"); return err }},
		{"GET", http.MethodGet, func() error { _, err := c.Read(ctx, "r", ReadOptions{}); return err }},
		{"PUT", http.MethodPut, func() error { _, err := c.Create(ctx, "r", CreateOptions{ContentType: "text/plain"}); return err }},
		{"POST producer", http.MethodPost, func() error {
			_, err := c.Append(ctx, "r", []byte("y"), AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}})
			return err
		}},
		{"POST close-only", http.MethodPost, func() error {
			res, err := c.Append(ctx, "r", nil, AppendOptions{Close: true})
			if err == nil && !res.Closed {
				err = errors.New("close-only append: stream not closed")
			}
			return err
		}},
		{"DELETE", http.MethodDelete, func() error { return c.Delete(ctx, "r") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.ResetRequests()
			srv.InjectFault(testserver.Fault{Path: "r", Method: tc.method, Status: 503, Count: 2})
			defer srv.ClearFaults()
			require.NoError(t, tc.do())
			require.Equal(t, 3, srv.Requests("r", tc.method))
		})
	}
}

func TestPlainPostNotRetriedAgainstServer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		fault     testserver.Fault
		wantData  string
		wantError error
	}{
		{"503 after body read", testserver.Fault{Status: 503}, "", ErrServer},
		{"429 after body read", testserver.Fault{Status: 429}, "", ErrStatus},
		{"dropped before applying", testserver.Fault{Drop: true}, "", nil},
		{"503 after applying", testserver.Fault{Status: 503, AfterApply: true}, "y", ErrServer},
		{"dropped after applying", testserver.Fault{Drop: true, AfterApply: true}, "y", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, c := newServer(t, nil)
			ctx := context.Background()
			_, err := c.Create(ctx, "p", CreateOptions{ContentType: "text/plain"})
			require.NoError(t, err)
			srv.ResetRequests()
			f := tc.fault
			f.Path, f.Method, f.Count = "p", http.MethodPost, 1
			srv.InjectFault(f)
			_, err = c.Append(ctx, "p", []byte("y"), AppendOptions{ContentType: "text/plain"})
			require.Error(t, err)
			if tc.wantError != nil {
				require.ErrorIs(t, err, tc.wantError)
			}
			require.True(t, IsRetryable(err))
			require.Equal(t, 1, srv.Requests("p", http.MethodPost), "the server saw exactly one POST")
			ch, err := c.Read(ctx, "p", ReadOptions{})
			require.NoError(t, err)
			require.Equal(t, tc.wantData, string(ch.Data), "no duplicate")
		})
	}
}

func TestProducerAppendRetriedAndDeduplicated(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil)
	ctx := context.Background()
	_, err := c.Create(ctx, "d", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	srv.ResetRequests()
	srv.InjectFault(testserver.Fault{Path: "d", Method: http.MethodPost, Drop: true, AfterApply: true, Count: 1})
	res, err := c.Append(ctx, "d", []byte("once"), AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "w", Epoch: 0, Seq: 0}})
	require.NoError(t, err)
	require.True(t, res.Duplicate, "the retry was recognised as a duplicate")
	require.Equal(t, 2, srv.Requests("d", http.MethodPost))
	ch, err := c.Read(ctx, "d", ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, "once", string(ch.Data))
}

// TestTruncatedReadRetriedAgainstServer: a read whose body is cut short is
// retried; a single attempt reports io.ErrUnexpectedEOF as retryable.
func TestTruncatedReadRetriedAgainstServer(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil)
	ctx := context.Background()
	_, err := c.Create(ctx, "t", CreateOptions{ContentType: "text/plain", Data: []byte(strings.Repeat("x", 4096))})
	require.NoError(t, err)
	srv.ResetRequests()
	srv.InjectFault(testserver.Fault{Path: "t", Method: http.MethodGet, Truncate: true, Count: 1})
	ch, err := c.Read(ctx, "t", ReadOptions{})
	require.NoError(t, err)
	require.Len(t, ch.Data, 4096)
	require.Equal(t, 2, srv.Requests("t", http.MethodGet))

	srv.ResetRequests()
	srv.InjectFault(testserver.Fault{Path: "t", Method: http.MethodGet, Truncate: true, Count: 1})
	u, err := c.URL("t")
	require.NoError(t, err)
	_, err = c.getChunk(ctx, u, readQuery{limit: c.cfg.maxResponse}, new([]byte))
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.True(t, IsRetryable(err))
	require.Equal(t, 1, srv.Requests("t", http.MethodGet))
}

func TestRetryAfterIsAFloor(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil)
	ctx := context.Background()
	_, err := c.Create(ctx, "ra", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	srv.ResetRequests()
	srv.InjectFault(testserver.Fault{Path: "ra", Method: http.MethodHead, Status: 429, RetryAfter: time.Second, Count: 1})
	start := time.Now()
	_, err = c.Head(ctx, "ra")
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	require.Equal(t, 2, srv.Requests("ra", http.MethodHead))
}

func TestCtxCancelDuringBackoffAgainstServer(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil, WithRetry(RetryPolicy{Initial: time.Minute, Max: time.Minute, Multiplier: 1, MaxAttempts: 5}))
	srv.InjectFault(testserver.Fault{Path: "c", Status: 503, RetryAfter: 30 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Head(ctx, "c")
	require.ErrorIs(t, err, context.Canceled)
	require.Less(t, time.Since(start), time.Second, "returns at once on cancel")
	require.Equal(t, 1, srv.Requests("c", http.MethodHead))
}

// TestRefreshedTokenOnRetryAgainstServer: the HeaderFunc runs for every
// attempt, so a retry carries a fresh token; a 401 is not retried.
func TestRefreshedTokenOnRetryAgainstServer(t *testing.T) {
	t.Parallel()
	var (
		mu   sync.Mutex
		seen []string
	)
	rec := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, req.Header.Get("Authorization"))
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(req)
	})
	var n atomic.Int32
	srv, c := newServer(t, nil, WithHTTPClient(&http.Client{Transport: rec}), WithHeaderFunc(func(context.Context) (http.Header, error) {
		return http.Header{"Authorization": {"Bearer v" + string(rune('0'+n.Add(1)))}}, nil
	}))
	srv.InjectFault(testserver.Fault{Path: "tok", Status: 401, Count: 1})
	_, err := c.Create(context.Background(), "tok", CreateOptions{ContentType: "text/plain"})
	require.ErrorIs(t, err, ErrUnauthorized)
	srv.InjectFault(testserver.Fault{Path: "tok", Status: 503, Count: 1})
	_, err = c.Create(context.Background(), "tok", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	require.Equal(t, []string{"Bearer v1", "Bearer v2", "Bearer v3"}, seen)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDialErrorRetriesPlainPost(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	var dials atomic.Int32
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}}
	defer tr.CloseIdleConnections()
	c, err := NewClient("http://"+addr+"/v1/stream/", WithHTTPClient(&http.Client{Transport: tr}), WithRetry(fastRetry()))
	require.NoError(t, err)
	_, err = c.Append(context.Background(), "s", []byte("x"), AppendOptions{ContentType: "text/plain"})
	require.Error(t, err)
	var op *net.OpError
	require.ErrorAs(t, err, &op)
	require.Equal(t, "dial", op.Op)
	require.True(t, IsRetryable(err))
	require.Equal(t, int32(fastRetry().MaxAttempts), dials.Load(), "a dial failure never reached the server: retried")
}
