package durable

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

func TestLoggerOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	h := slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})
	c, mt := mockClient(t, WithLogger(slog.New(h)))
	mt.RegisterNoResponder(reply(503, nil, ""))
	_, err := c.Head(context.Background(), "s?token=x")
	require.Error(t, err) // invalid name: nothing sent, nothing logged
	u := "http://mock.test/v1/stream/s?token=secret"
	_, err = c.Head(context.Background(), u)
	require.ErrorIs(t, err, ErrServer)
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	require.Contains(t, out, "durable: retrying")
	require.NotContains(t, out, "secret")
	require.Equal(t, fastRetry().MaxAttempts-1, strings.Count(out, "durable: retrying"))
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestTimeoutBoundsUnaryNotLive(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, []testserver.Option{testserver.WithLongPollTimeout(300 * time.Millisecond)}, WithRequestTimeout(150*time.Millisecond))
	ctx := context.Background()
	cr, err := c.Create(ctx, "to", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)

	// A long-poll outlives WithRequestTimeout: it is bounded by ctx only.
	start := time.Now()
	lp, err := c.Read(ctx, "to", ReadOptions{Offset: cr.NextOffset, Live: LiveLongPoll})
	require.NoError(t, err)
	require.True(t, lp.UpToDate)
	require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)

	// Each attempt of a slow unary call is cut off, and retried like any
	// transient failure until the retry policy gives up (fastRetry: 4
	// attempts).
	srv.InjectFault(testserver.Fault{Path: "to", Method: http.MethodHead, Delay: 2 * time.Second})
	_, err = c.Head(ctx, "to")
	require.ErrorIs(t, err, errAttemptTimeout)
	require.ErrorContains(t, err, "durable: head ")
	require.Equal(t, 1, strings.Count(err.Error(), "durable: head"), "said once: %v", err)
	require.True(t, IsRetryable(err))
	require.Equal(t, 4, srv.Requests("to", http.MethodHead))
}

func TestRetryAfterBeyondMaxElapsedGivesUp(t *testing.T) {
	t.Parallel()
	p := fastRetry()
	p.MaxAttempts, p.MaxElapsed = 0, 500*time.Millisecond
	c, mt := mockClient(t, WithRetry(p))
	mt.RegisterNoResponder(reply(429, map[string]string{"Retry-After": "60"}, ""))
	start := time.Now()
	_, err := c.Head(context.Background(), "s")
	require.ErrorIs(t, err, ErrRateLimited)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, time.Minute, e.RetryAfter)
	require.Less(t, time.Since(start), 400*time.Millisecond)
	require.Equal(t, 1, mt.GetTotalCallCount())
}

// One Client used from many goroutines at once (run with -race).
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, nil)
	ctx := context.Background()
	_, err := c.Create(ctx, "cc", CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				_, err := c.AppendJSON(ctx, "cc", map[string]int{"g": g, "i": i}, AppendOptions{})
				require.NoError(t, err)
				_, err = c.Head(ctx, "cc")
				require.NoError(t, err)
				_, err = c.Read(ctx, "cc", ReadOptions{})
				require.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	ch, err := c.Read(ctx, "cc", ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, 80, strings.Count(string(ch.Data), `"g"`))
}

func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"http://u:pw@h/a?token=pw", "https://h/?a=1&api_key=pw", "pw", "http://%zz@pw"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Contains(s, "hunter2") {
			t.Skip()
		}
		out := redactURL("http://user:hunter2@h/p?token=hunter2&x=" + s)
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %q", out)
		}
	})
}
