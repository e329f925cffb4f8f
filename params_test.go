package durable

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// queryRecorder serves a testserver through a handler that records the
// query of every request it receives.
type queryRecorder struct {
	mu   sync.Mutex
	seen []url.Values // in arrival order
	meth []string
}

func (q *queryRecorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q.mu.Lock()
		q.seen = append(q.seen, r.URL.Query())
		q.meth = append(q.meth, r.Method)
		q.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (q *queryRecorder) all() ([]url.Values, []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]url.Values(nil), q.seen...), append([]string(nil), q.meth...)
}

// newQueryServer starts a testserver behind a recording handler and a Client
// with fn as its QueryFunc.
func newQueryServer(t *testing.T, fn func(context.Context) (url.Values, error)) (*testserver.Server, *queryRecorder, *Client) {
	t.Helper()
	srv := testserver.New(testserver.WithLongPollTimeout(100 * time.Millisecond))
	t.Cleanup(srv.Close)
	rec := &queryRecorder{}
	hs := httptest.NewServer(rec.wrap(srv.Handler()))
	t.Cleanup(hs.Close)
	c, err := NewClient(hs.URL+"/v1/stream/", WithRetry(fastRetry()), WithQueryFunc(fn))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return srv, rec, c
}

// counterQuery returns a QueryFunc setting name to 1, 2, 3, ... per call.
func counterQuery(name string) (func(context.Context) (url.Values, error), *atomic.Int64) {
	n := new(atomic.Int64)
	return func(context.Context) (url.Values, error) {
		return url.Values{name: {strconv.FormatInt(n.Add(1), 10)}}, nil
	}, n
}

func TestQueryFuncOnEveryRequest(t *testing.T) {
	t.Parallel()
	fn, n := counterQuery("req")
	_, rec, c := newQueryServer(t, fn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := c.Create(ctx, "q", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	_, err = c.Append(ctx, "q", []byte("a"), AppendOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	_, err = c.Head(ctx, "q")
	require.NoError(t, err)
	ch, err := c.Read(ctx, "q", ReadOptions{})
	require.NoError(t, err)
	_, err = c.Read(ctx, "q", ReadOptions{Offset: ch.NextOffset, Live: LiveLongPoll})
	require.NoError(t, err)
	s, err := c.OpenSSE(ctx, "q", ReadOptions{})
	require.NoError(t, err)
	_, err = s.Next(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	w, err := NewWriter(c, "q", BytesCodec{}, WithContentType("text/plain"))
	require.NoError(t, err)
	_, err = w.WriteSync(ctx, []byte("b"))
	require.NoError(t, err)
	require.NoError(t, w.Close(ctx))

	r, err := NewReader(c, "q", BytesCodec{}, WithLive(LiveNone))
	require.NoError(t, err)
	for _, err := range r.Messages(ctx) {
		require.NoError(t, err)
	}
	require.NoError(t, r.Close(context.Background()))
	require.NoError(t, c.Delete(ctx, "q"))

	seen, meth := rec.all()
	require.Len(t, seen, int(n.Load()), "one QueryFunc call per request")
	for i, q := range seen {
		require.Equal(t, []string{strconv.Itoa(i + 1)}, q["req"], "request %d (%s)", i, meth[i])
	}
	require.Contains(t, meth, http.MethodPut)
	require.Contains(t, meth, http.MethodPost)
	require.Contains(t, meth, http.MethodHead)
	require.Contains(t, meth, http.MethodDelete)
	require.Contains(t, meth, http.MethodGet)
}

func TestQueryFuncProtocolParamsAuthoritative(t *testing.T) {
	t.Parallel()
	_, rec, c := newQueryServer(t, func(context.Context) (url.Values, error) {
		return url.Values{"offset": {"-1"}, "live": {"sse"}, "cursor": {"x"}, "tag": {"t"}}, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Create(ctx, "p", CreateOptions{ContentType: "text/plain", Data: []byte("old")})
	require.NoError(t, err)
	info, err := c.Head(ctx, "p")
	require.NoError(t, err)
	_, err = c.Append(ctx, "p", []byte("new"), AppendOptions{ContentType: "text/plain"})
	require.NoError(t, err)

	ch, err := c.Read(ctx, "p", ReadOptions{Offset: info.NextOffset})
	require.NoError(t, err)
	require.Equal(t, "new", string(ch.Data), "the QueryFunc's offset must not replace the Client's")

	seen, meth := rec.all()
	last := seen[len(seen)-1]
	require.Equal(t, http.MethodGet, meth[len(meth)-1])
	require.Equal(t, []string{string(info.NextOffset)}, last["offset"])
	require.Empty(t, last["live"], "live must not be added to a catch-up read")
	require.Empty(t, last["cursor"])
	require.Equal(t, []string{"t"}, last["tag"])
}

func TestQueryFuncRecomputedOnRetry(t *testing.T) {
	t.Parallel()
	fn, _ := counterQuery("req")
	srv, rec, c := newQueryServer(t, fn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Create(ctx, "r", CreateOptions{ContentType: "text/plain", Data: []byte("x")})
	require.NoError(t, err)
	srv.InjectFault(testserver.Fault{Path: "r", Method: http.MethodGet, Status: http.StatusServiceUnavailable, Count: 1})
	ch, err := c.Read(ctx, "r", ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, "x", string(ch.Data))

	seen, meth := rec.all()
	require.Len(t, seen, 3)
	require.Equal(t, []string{http.MethodPut, http.MethodGet, http.MethodGet}, meth)
	require.Equal(t, "2", seen[1].Get("req"))
	require.Equal(t, "3", seen[2].Get("req"), "a retry computes its parameters again")
}

func TestQueryFuncErrorAbortsCall(t *testing.T) {
	t.Parallel()
	boom := errors.New("no signature")
	_, rec, c := newQueryServer(t, func(context.Context) (url.Values, error) { return nil, boom })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tests := []struct {
		name string
		call func() error
	}{
		{"create", func() error { _, err := c.Create(ctx, "e", CreateOptions{}); return err }},
		{"append", func() error {
			_, err := c.Append(ctx, "e", []byte("x"), AppendOptions{ContentType: "text/plain"})
			return err
		}},
		{"read", func() error { _, err := c.Read(ctx, "e", ReadOptions{}); return err }},
		{"head", func() error { _, err := c.Head(ctx, "e"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.ErrorIs(t, err, boom)
			var e *Error
			require.ErrorAs(t, err, &e)
		})
	}
	seen, _ := rec.all()
	require.Empty(t, seen, "no request may be sent when the QueryFunc fails")
}

func TestWithQueryFuncNil(t *testing.T) {
	t.Parallel()
	_, err := NewClient("http://127.0.0.1:1/", WithQueryFunc(nil))
	require.ErrorIs(t, err, ErrInvalidArgument)
}
