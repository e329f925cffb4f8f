package durable

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// TestReaderRetryBudgetStartsAtFirstFailure: a bounded retry budget counts
// from the first failure of an outage, not from NewReader, and idle
// long-polls (successful answers) do not use it up: a 503 arriving after a
// quiet start longer than MaxElapsed is retried.
func TestReaderRetryBudgetStartsAtFirstFailure(t *testing.T) {
	t.Parallel()
	var failures atomic.Int32
	srv, c := newServer(t, []testserver.Option{testserver.WithLongPollTimeout(100 * time.Millisecond)},
		WithHooks(onRetry(func(RetryEvent) { failures.Add(1) })))
	createJSON(t, c, "s")
	p := readerRetry()
	p.MaxElapsed = 300 * time.Millisecond
	r := openReader[event](t, c, "s", WithRetry(p))
	ctx := ctxT(t, 10*time.Second)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Quiet: idle long-polls only, for well over MaxElapsed.
		require.Eventually(t, func() bool {
			return srv.Requests("s", http.MethodGet) >= 3 && time.Since(start) > 3*p.MaxElapsed
		}, 5*time.Second, time.Millisecond)
		srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: 503, Count: 1})
		// The 503 has been answered (the Reader waits to retry it).
		require.Eventually(t, func() bool { return failures.Load() >= 1 }, 5*time.Second, time.Millisecond)
		_, _ = c.Append(ctx, "s", []byte(`[{"n":1}]`), AppendOptions{ContentType: "application/json"})
	}()
	m, err := r.Next(ctx)
	<-done
	require.NoError(t, err)
	require.Equal(t, 1, m.Value.N)
}

// TestReaderRetryBudgetBounded: within one outage the budget holds: a
// server that keeps failing ends Next with its error after about
// MaxElapsed, and the next Next starts a fresh episode.
func TestReaderRetryBudgetBounded(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil)
	createJSON(t, c, "s")
	p := readerRetry()
	p.MaxElapsed = 200 * time.Millisecond
	r := openReader[event](t, c, "s", WithRetry(p), WithLive(LiveNone))
	srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: 503})
	ctx := ctxT(t, 10*time.Second)
	_, err := r.Next(ctx)
	require.ErrorIs(t, err, ErrServer)
	n := srv.Requests("s", http.MethodGet)
	require.Greater(t, n, 1, "not retried")
	srv.ClearFaults()
	_, err = r.Next(context.Background())
	require.ErrorIs(t, err, ErrCaughtUp, "a transient failure is not sticky")
}

// TestReaderRetriesLogged: an outage is logged through the Client's
// logger once at Warn when it starts (with the redacted URL, the error and
// the wait), once at Info when the Reader recovers, and each further retry
// only at Debug; the retry hook sees every retry.
func TestReaderRetriesLogged(t *testing.T) {
	t.Parallel()
	var log relLog
	srv := testserver.New(testserver.WithLongPollTimeout(300 * time.Millisecond))
	t.Cleanup(srv.Close)
	var hooked atomic.Int32
	c, err := NewClient(srv.StreamURL(""), WithLogger(log.logger()), WithHooks(onRetry(func(RetryEvent) { hooked.Add(1) })))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	createJSON(t, c, "s")
	srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: 503, Count: 3})
	r := openReader[event](t, c, srv.StreamURL("s")+"?token=secret-value")
	appendEvents(t, c, "s", 0, 1)
	_, err = r.Next(ctxT(t, 10*time.Second))
	require.NoError(t, err)
	out := log.String()
	require.Equal(t, 1, strings.Count(out, "level=WARN"), out)
	require.Equal(t, 1, strings.Count(out, `level=WARN msg="durable: retrying" op=read`), out)
	require.Equal(t, 2, strings.Count(out, `level=DEBUG msg="durable: retrying" op=read`), out)
	require.Equal(t, 1, strings.Count(out, `level=INFO msg="durable: recovered" op=read`), out)
	require.Contains(t, out, "wait=")
	require.Contains(t, out, "token=REDACTED")
	require.NotContains(t, out, "secret-value")
	require.EqualValues(t, 3, hooked.Load())
}

func TestReaderRetryAfterAndHook(t *testing.T) {
	t.Parallel()
	var infos []RetryEvent
	srv, c := newServer(t, []testserver.Option{testserver.WithLongPollTimeout(300 * time.Millisecond), testserver.WithSSECloseInterval(2 * time.Second)},
		WithHooks(onRetry(func(ev RetryEvent) { infos = append(infos, ev) })))
	createJSON(t, c, "s")
	appendEvents(t, c, "s", 0, 1)
	srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: http.StatusTooManyRequests, RetryAfter: time.Second, Count: 1})
	srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: http.StatusServiceUnavailable, Count: 2})
	r := openReader[event](t, c, "s")
	ctx := ctxT(t, 5*time.Second)
	start := time.Now()
	m, err := r.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, m.Value.N)
	require.GreaterOrEqual(t, time.Since(start), time.Second, "Retry-After is a floor")
	require.Len(t, infos, 3)
	require.ErrorIs(t, infos[0].Err, ErrStatus)
	require.Equal(t, time.Second, infos[0].Wait)
	require.Equal(t, 3, infos[2].Attempt)
	require.ErrorIs(t, infos[2].Err, ErrServer)
	require.Equal(t, "read", infos[0].Op)
}

func TestReaderBoundedRetryGivesUp(t *testing.T) {
	t.Parallel()
	srv, c := newReaderServer(t)
	createJSON(t, c, "s")
	srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: http.StatusBadGateway})
	r := openReader[event](t, c, "s", WithRetry(RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, MaxAttempts: 3}))
	ctx := ctxT(t, 5*time.Second)
	_, err := r.Next(ctx)
	require.ErrorIs(t, err, ErrServer)
	require.Equal(t, 3, srv.Requests("s", http.MethodGet))
	srv.ClearFaults()
	appendEvents(t, c, "s", 0, 1)
	m, err := r.Next(ctx)
	require.NoError(t, err, "not sticky: a later Next starts a fresh schedule")
	require.Equal(t, 0, m.Value.N)
}
