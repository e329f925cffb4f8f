package durable

import (
	"context"
	"errors"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/durablego/durable/internal/retry"
	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

func TestNewClientValidation(t *testing.T) {
	t.Parallel()
	bad := func(mut func(*RetryPolicy)) Option {
		p := DefaultRetryPolicy()
		mut(&p)
		return WithRetry(p)
	}
	for _, tc := range []struct {
		name string
		base string
		opts []Option
		ok   bool
	}{
		{"defaults", "http://h/v1/stream/", nil, true},
		{"no trailing slash", "http://h/v1/stream", nil, true},
		{"https", "https://h:8443/", nil, true},
		{"relative base", "/v1/stream/", nil, false},
		{"ftp base", "ftp://h/", nil, false},
		{"base with query", "http://h/?token=x", nil, false},
		{"garbage base", "http://%zz", nil, false},
		{"nil http client", "http://h/", []Option{WithHTTPClient(nil)}, false},
		{"nil option", "http://h/", []Option{nil}, false},
		{"empty header name", "http://h/", []Option{WithHeader("", "v")}, false},
		{"header value newline", "http://h/", []Option{WithHeader("X-A", "a\r\nb")}, false},
		{"nil header func", "http://h/", []Option{WithHeaderFunc(nil)}, false},
		{"nil logger", "http://h/", []Option{WithLogger(nil)}, false},
		{"zero timeout", "http://h/", []Option{WithTimeout(0)}, false},
		{"negative timeout", "http://h/", []Option{WithTimeout(-time.Second)}, false},
		{"timeout", "http://h/", []Option{WithTimeout(time.Second)}, true},
		{"empty user agent", "http://h/", []Option{WithUserAgent(" ")}, false},
		{"zero max response", "http://h/", []Option{WithMaxResponseSize(0)}, false},
		{"zero retry policy", "http://h/", []Option{WithRetry(RetryPolicy{})}, false},
		{"no retry", "http://h/", []Option{WithRetry(NoRetry())}, true},
		{"max < initial", "http://h/", []Option{bad(func(p *RetryPolicy) { p.Max = p.Initial / 2 })}, false},
		{"multiplier < 1", "http://h/", []Option{bad(func(p *RetryPolicy) { p.Multiplier = 0.5 })}, false},
		{"multiplier NaN", "http://h/", []Option{bad(func(p *RetryPolicy) { p.Multiplier = math.NaN() })}, false},
		{"jitter > 1", "http://h/", []Option{bad(func(p *RetryPolicy) { p.Jitter = 1.5 })}, false},
		{"negative attempts", "http://h/", []Option{bad(func(p *RetryPolicy) { p.MaxAttempts = -1 })}, false},
		{"negative elapsed", "http://h/", []Option{bad(func(p *RetryPolicy) { p.MaxElapsed = -1 })}, false},
		{"unlimited retries", "http://h/", []Option{bad(func(p *RetryPolicy) { p.MaxAttempts, p.MaxElapsed = 0, 0 })}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(tc.base, tc.opts...)
			if tc.ok {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrInvalidArgument)
		})
	}
}

func TestNewClientDoesNotMutateHTTPClient(t *testing.T) {
	t.Parallel()
	hc := &http.Client{}
	_, err := NewClient("http://h/", WithHTTPClient(hc))
	require.NoError(t, err)
	require.Nil(t, hc.CheckRedirect)
}

func TestURL(t *testing.T) {
	t.Parallel()
	c, err := NewClient("http://u:p@h:1/v1/stream")
	require.NoError(t, err)
	for _, tc := range []struct{ in, want string }{
		{"orders", "http://u:p@h:1/v1/stream/orders"},
		{"/tenant/orders", "http://u:p@h:1/v1/stream/tenant/orders"},
		{"a b", "http://u:p@h:1/v1/stream/a%20b"},
		{"http://h:1/x?y=1", "http://u:p@h:1/x?y=1"},
		{"http://other:1/x", ""},
		{"https://h:1/x", ""},
		{"", ""},
		{"../etc", ""},
		{"a/./b", ""},
		{"a?b", ""},
		{"a\x01", ""},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := c.URL(tc.in)
			if tc.want == "" {
				require.ErrorIs(t, err, ErrInvalidArgument)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestRetryPolicySchedule(t *testing.T) {
	t.Parallel()
	p := RetryPolicy{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, Multiplier: 2, Jitter: 0, MaxAttempts: 5}
	s := retry.NewSchedule(p.internal())
	var got []time.Duration
	for range 5 {
		d, ok := s.Next(0)
		if !ok {
			d = -1
		}
		got = append(got, d)
	}
	require.Equal(t, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond, -1}, got)
}

func TestRetryAfterParse(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"1", time.Second, true},
		{"0", 0, true},
		{"120", 2 * time.Minute, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{now.Add(3 * time.Second).Format(http.TimeFormat), 3 * time.Second, true},
		{now.Add(-3 * time.Second).Format(http.TimeFormat), 0, true},
		{"99999999999", 24 * time.Hour, true},
	} {
		t.Run(tc.v, func(t *testing.T) {
			got, ok := retryAfter(http.Header{"Retry-After": {tc.v}}, now)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestHeaderPrecedence(t *testing.T) {
	t.Parallel()
	c, err := NewClient("http://h/",
		WithHeader("X-Static", "s"), WithHeader("Authorization", "static"),
		WithUserAgent("ua/1"),
		WithHeaderFunc(func(context.Context) (http.Header, error) {
			return http.Header{"authorization": {"Bearer fresh"}, "Content-Type": {"evil"}}, nil
		}))
	require.NoError(t, err)
	h, err := c.requestHeader(context.Background(), http.Header{"Content-Type": {"text/plain"}})
	require.NoError(t, err)
	require.Equal(t, "s", h.Get("X-Static"))
	require.Equal(t, "Bearer fresh", h.Get("Authorization"))
	require.Equal(t, "text/plain", h.Get("Content-Type"))
	require.Equal(t, "ua/1", h.Get("User-Agent"))

	boom := errors.New("no token")
	c2, err := NewClient("http://h/", WithHeaderFunc(func(context.Context) (http.Header, error) { return nil, boom }))
	require.NoError(t, err)
	_, err = c2.Head(context.Background(), "s")
	require.ErrorIs(t, err, boom)
}

// TestNewClientServerRoot: the server's address alone (what `durable
// serve` prints) means streams under /v1/stream/, so Create works with it;
// a base URL ending in "/" keeps streams at the root.
func TestNewClientServerRoot(t *testing.T) {
	t.Parallel()
	srv := testserver.New()
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL())
	require.NoError(t, err)
	u, err := c.URL("svc-events")
	require.NoError(t, err)
	require.Equal(t, srv.StreamURL("svc-events"), u)
	_, err = c.Create(context.Background(), "svc-events", CreateOptions{})
	require.NoError(t, err)

	root, err := NewClient(srv.URL() + "/")
	require.NoError(t, err)
	u, err = root.URL("svc-events")
	require.NoError(t, err)
	require.Equal(t, srv.URL()+"/svc-events", u)
}

func TestTimeoutBoundsUnaryNotLive(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, []testserver.Option{testserver.WithLongPollTimeout(300 * time.Millisecond)}, WithTimeout(150*time.Millisecond))
	ctx := context.Background()
	cr, err := c.Create(ctx, "to", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)

	// A long-poll outlives WithTimeout: it is bounded by ctx only.
	start := time.Now()
	lp, err := c.Read(ctx, "to", ReadOptions{Offset: cr.NextOffset, Live: LiveLongPoll})
	require.NoError(t, err)
	require.True(t, lp.UpToDate)
	require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)

	// A slow unary call does not.
	srv.InjectFault(testserver.Fault{Path: "to", Method: http.MethodHead, Delay: 2 * time.Second})
	start = time.Now()
	_, err = c.Head(ctx, "to")
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)
	require.False(t, IsRetryable(err))
}
