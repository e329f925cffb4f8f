package durable

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDefaultTransportKeepsConnections(t *testing.T) {
	c, err := NewClient("http://127.0.0.1:1/")
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("default transport is %T", c.hc.Transport)
	}
	if tr.MaxIdleConnsPerHost != defaultIdleConnsPerHost || tr.MaxIdleConns < defaultIdleConnsPerHost {
		t.Errorf("idle connections per host = %d (total %d), want %d", tr.MaxIdleConnsPerHost, tr.MaxIdleConns, defaultIdleConnsPerHost)
	}
	if tr == http.DefaultTransport {
		t.Error("default transport shared with net/http")
	}
}

// dialCounter is an http.Client whose transport counts the TCP connections
// it opens.
func dialCounter() (*http.Client, *atomic.Int32) {
	var n atomic.Int32
	d := &net.Dialer{}
	tr := &http.Transport{
		MaxIdleConnsPerHost: 8,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			n.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr}, &n
}

// TestClientKeepsIdleConnections: closing a Reader, cancelling a request
// and a request that fails never empty the idle pool that every other user
// of the Client (and of a transport given with WithHTTPClient) relies on.
// go-retryablehttp closed the client's idle connections in all three cases.
func TestClientKeepsIdleConnections(t *testing.T) {
	t.Parallel()
	for _, tc := range []string{"reader closed", "request cancelled", "request failed"} {
		t.Run(tc, func(t *testing.T) {
			t.Parallel()
			srv := testserver.New(testserver.WithLongPollTimeout(5 * time.Second))
			defer srv.Close()
			hc, dials := dialCounter()
			defer hc.CloseIdleConnections()
			c, err := NewClient(srv.StreamURL(""), WithHTTPClient(hc), WithRetry(fastRetry()))
			require.NoError(t, err)
			ctx := context.Background()
			cr, err := c.Create(ctx, "s", CreateOptions{ContentType: "application/json"})
			require.NoError(t, err)
			require.EqualValues(t, 1, dials.Load())
			inFlight := func(method string, n int) {
				require.Eventually(t, func() bool { return srv.Requests("s", method) >= n }, 5*time.Second, time.Millisecond)
			}
			// While one request holds a connection, a Head makes sure
			// another one sits in the idle pool.
			var pooled int32
			idle := func() {
				_, err := c.Head(ctx, "s")
				require.NoError(t, err)
				pooled = dials.Load()
			}
			done := make(chan error, 1)
			switch tc {
			case "reader closed":
				r, err := NewReader(c, "s", JSONCodec[event]{}, WithStart(cr.NextOffset))
				require.NoError(t, err)
				go func() { _, err := r.Next(ctx); done <- err }()
				inFlight(http.MethodGet, 2) // a catch-up read, then the long-poll
				idle()
				require.NoError(t, r.Close(ctx))
			case "request cancelled":
				lpCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				go func() {
					_, err := c.Read(lpCtx, "s", ReadOptions{Offset: cr.NextOffset, Live: LiveLongPoll})
					done <- err
				}()
				inFlight(http.MethodGet, 1)
				idle()
				cancel()
			case "request failed":
				srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodPost, Delay: 300 * time.Millisecond, Drop: true, Count: 1})
				go func() {
					_, err := c.Append(ctx, "s", []byte(`[1]`), AppendOptions{ContentType: "application/json"})
					done <- err
				}()
				inFlight(http.MethodPost, 1)
				idle()
			}
			require.Error(t, <-done)
			_, err = c.Head(ctx, "s")
			require.NoError(t, err)
			require.Equal(t, pooled, dials.Load(), "the idle connection was closed: Head had to dial again")
		})
	}
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

// TestLoggerOnlyWhenAsked: the Client logs through the logger it was
// given: a call that sends nothing logs nothing; each retry of a failing
// call is logged, with the URL's secrets redacted.
func TestLoggerOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	var log relLog
	srv, c := newServer(t, nil, WithLogger(log.logger()))
	srv.InjectFault(testserver.Fault{Path: "s", Status: 503})
	_, err := c.Head(context.Background(), "s?token=x")
	require.Error(t, err) // invalid name: nothing sent, nothing logged
	require.Empty(t, log.String())
	_, err = c.Head(context.Background(), srv.StreamURL("s")+"?token=secret")
	require.ErrorIs(t, err, ErrServer)
	out := log.String()
	require.NotContains(t, out, "secret")
	require.Equal(t, fastRetry().MaxAttempts-1, strings.Count(out, "durable: retrying"))
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

// newServer starts a testserver and a Client on it.
// withDefaults returns the options of defaults that opts does not give
// (an option may be given once), followed by opts.
func withDefaults(defaults []Option, opts ...Option) []Option {
	var out []Option
	for _, d := range defaults {
		if !slices.ContainsFunc(opts, func(o Option) bool { return o.name == d.name }) {
			out = append(out, d)
		}
	}
	return append(out, opts...)
}

func newServer(t *testing.T, sopts []testserver.Option, copts ...Option) (*testserver.Server, *Client) {
	t.Helper()
	srv := testserver.New(sopts...)
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.StreamURL(""), withDefaults([]Option{WithRetry(fastRetry())}, copts...)...)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return srv, c
}

func TestOperations(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, []testserver.Option{testserver.WithLongPollTimeout(200 * time.Millisecond)})
	ctx := context.Background()

	cr, err := c.Create(ctx, "ops", CreateOptions{ContentType: "text/plain", Data: []byte("a")})
	require.NoError(t, err)
	require.True(t, cr.Created)
	require.Equal(t, "text/plain", cr.ContentType)
	again, err := c.Create(ctx, "ops", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	require.False(t, again.Created, "idempotent create answers 200")

	ar, err := c.Append(ctx, "ops", []byte("bc"), AppendOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	require.Greater(t, ar.NextOffset, cr.NextOffset)
	require.False(t, ar.Duplicate)

	info, err := c.Head(ctx, "ops")
	require.NoError(t, err)
	require.Equal(t, StreamInfo{ContentType: "text/plain", NextOffset: ar.NextOffset}, info)

	ch, err := c.Read(ctx, "ops", ReadOptions{Offset: OffsetStart})
	require.NoError(t, err)
	require.Equal(t, "abc", string(ch.Data))
	require.Equal(t, ar.NextOffset, ch.NextOffset)
	require.True(t, ch.UpToDate)
	require.False(t, ch.Closed)
	require.NotEmpty(t, ch.ETag)

	nm, err := c.Read(ctx, "ops", ReadOptions{Offset: OffsetStart, IfNoneMatch: ch.ETag})
	require.NoError(t, err)
	require.True(t, nm.NotModified)
	require.Empty(t, nm.Data)

	mid, err := c.Read(ctx, "ops", ReadOptions{Offset: cr.NextOffset})
	require.NoError(t, err)
	require.Equal(t, "bc", string(mid.Data))

	now, err := c.Read(ctx, "ops", ReadOptions{Offset: OffsetNow})
	require.NoError(t, err)
	require.Empty(t, now.Data)
	require.Equal(t, ar.NextOffset, now.NextOffset)
	require.True(t, now.UpToDate)

	// Long-poll at the tail times out with 204.
	lp, err := c.Read(ctx, "ops", ReadOptions{Offset: ar.NextOffset, Live: LiveLongPoll})
	require.NoError(t, err)
	require.Empty(t, lp.Data)
	require.True(t, lp.UpToDate)
	require.NotEmpty(t, lp.Cursor)
	require.Equal(t, ar.NextOffset, lp.NextOffset)

	// Long-poll woken by an append.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(30 * time.Millisecond) // let the long-poll start waiting (test only)
		_, err := c.Append(ctx, "ops", []byte("d"), AppendOptions{ContentType: "text/plain"})
		require.NoError(t, err)
	}()
	lp2, err := c.Read(ctx, "ops", ReadOptions{Offset: ar.NextOffset, Live: LiveLongPoll, Cursor: lp.Cursor})
	wg.Wait()
	require.NoError(t, err)
	require.Equal(t, "d", string(lp2.Data))
	require.NotEmpty(t, lp2.Cursor)

	// SSE: data up to the first control event.
	sse, err := c.Read(ctx, "ops", ReadOptions{Offset: OffsetStart, Live: LiveSSE})
	require.NoError(t, err)
	require.Equal(t, "abcd", string(sse.Data))
	require.Equal(t, lp2.NextOffset, sse.NextOffset)
	require.True(t, sse.UpToDate)

	cl, err := c.CloseStream(ctx, "ops", []byte("e"), AppendOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	require.Greater(t, cl.NextOffset, lp2.NextOffset)
	// Closing again without data is idempotent.
	cl2, err := c.CloseStream(ctx, "ops", nil, AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, cl.NextOffset, cl2.NextOffset)

	eof, err := c.Read(ctx, "ops", ReadOptions{Offset: cl.NextOffset})
	require.NoError(t, err)
	require.True(t, eof.Closed)
	require.Empty(t, eof.Data)
	lpEOF, err := c.Read(ctx, "ops", ReadOptions{Offset: cl.NextOffset, Live: LiveLongPoll})
	require.NoError(t, err)
	require.True(t, lpEOF.Closed)
	info, err = c.Head(ctx, "ops")
	require.NoError(t, err)
	require.True(t, info.Closed)

	require.NoError(t, c.Delete(ctx, "ops"))
	_, err = c.Head(ctx, "ops")
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, 1, srv.Requests("ops", http.MethodDelete))
}

func TestJSONStreams(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, nil)
	ctx := context.Background()
	_, err := c.Create(ctx, "j", CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	_, err = c.AppendJSON(ctx, "j", map[string]int{"a": 1}, AppendOptions{})
	require.NoError(t, err)
	_, err = c.AppendJSON(ctx, "j", []int{1, 2}, AppendOptions{}) // one message, not two
	require.NoError(t, err)
	ch, err := c.Read(ctx, "j", ReadOptions{})
	require.NoError(t, err)
	var msgs []json.RawMessage
	require.NoError(t, json.Unmarshal(ch.Data, &msgs))
	require.Equal(t, []json.RawMessage{json.RawMessage(`{"a":1}`), json.RawMessage(`[1,2]`)}, msgs)

	_, err = c.Append(ctx, "j", []byte("{not json"), AppendOptions{ContentType: "application/json"})
	require.ErrorIs(t, err, ErrBadRequest)

	s, err := c.OpenSSE(ctx, "j", ReadOptions{ContentType: "application/json"})
	require.NoError(t, err)
	defer s.Close()
	first, err := s.Next(ctx)
	require.NoError(t, err)
	require.JSONEq(t, `[{"a":1},[1,2]]`, string(first.Data))
	require.True(t, first.UpToDate)
	_, err = c.CloseStream(ctx, "j", []byte(`"bye"`), AppendOptions{ContentType: "application/json"})
	require.NoError(t, err)
	var got []Chunk
	for {
		ch, err := s.Next(ctx)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		got = append(got, ch)
	}
	require.NotEmpty(t, got)
	last := got[len(got)-1]
	require.True(t, last.Closed)
	var all []string
	for _, ch := range got {
		if len(ch.Data) > 0 {
			all = append(all, string(ch.Data))
		}
	}
	require.Equal(t, []string{`["bye"]`}, all)
}

// fastRetry retries quickly so tests stay fast.
func fastRetry() RetryPolicy {
	return RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2, Jitter: 0, MaxAttempts: 4}
}
