package durable

import (
	"context"
	"encoding/json"
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
	"github.com/stretchr/testify/require"
)

// Behaviour against the real in-process testserver.

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

	cl, err := c.CloseStream(ctx, "ops", CloseOptions{Data: []byte("e"), ContentType: "text/plain"})
	require.NoError(t, err)
	require.Greater(t, cl.NextOffset, lp2.NextOffset)
	// Closing again without data is idempotent.
	cl2, err := c.CloseStream(ctx, "ops", CloseOptions{})
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

func TestCreateVariants(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, nil)
	ctx := context.Background()

	_, err := c.Create(ctx, "ttl", CreateOptions{ContentType: "text/plain", TTL: time.Hour})
	require.NoError(t, err)
	info, err := c.Head(ctx, "ttl")
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.TTL)

	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	_, err = c.Create(ctx, "exp", CreateOptions{ContentType: "text/plain", ExpiresAt: exp})
	require.NoError(t, err)
	info, err = c.Head(ctx, "exp")
	require.NoError(t, err)
	require.True(t, exp.Equal(info.ExpiresAt), "%v != %v", exp, info.ExpiresAt)

	closed, err := c.Create(ctx, "done", CreateOptions{ContentType: "text/plain", Closed: true, Data: []byte("all")})
	require.NoError(t, err)
	require.True(t, closed.Closed)
	_, err = c.Append(ctx, "done", []byte("more"), AppendOptions{ContentType: "text/plain"})
	require.ErrorIs(t, err, ErrStreamClosed)

	// Forks: inherit data up to the fork offset, then diverge.
	src, err := c.Create(ctx, "src", CreateOptions{ContentType: "text/plain", Data: []byte("xy")})
	require.NoError(t, err)
	_, err = c.Append(ctx, "src", []byte("z"), AppendOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	_, err = c.Create(ctx, "fork", CreateOptions{ForkFrom: "src", ForkOffset: src.NextOffset})
	require.NoError(t, err)
	_, err = c.Append(ctx, "fork", []byte("!"), AppendOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	ch, err := c.Read(ctx, "fork", ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, "xy!", string(ch.Data))
	sub, err := c.Create(ctx, "fork-sub", CreateOptions{ForkFrom: "src", ForkOffset: src.NextOffset, ForkSubOffset: 1})
	require.NoError(t, err)
	require.True(t, sub.Created)
	ch, err = c.Read(ctx, "fork-sub", ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, "xyz", string(ch.Data))

	// A source with forks is soft-deleted: 410 afterwards.
	require.NoError(t, c.Delete(ctx, "src"))
	_, err = c.Head(ctx, "src")
	require.ErrorIs(t, err, ErrGone)
	_, err = c.Create(ctx, "src", CreateOptions{ContentType: "text/plain"})
	require.ErrorIs(t, err, ErrStreamExists)
	_, err = c.Create(ctx, "fork2", CreateOptions{ForkFrom: "missing"})
	require.ErrorIs(t, err, ErrNotFound)
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

	s, err := c.OpenSSE(ctx, "j", SSEOptions{ContentType: "application/json"})
	require.NoError(t, err)
	defer s.Close()
	first, err := s.Next(ctx)
	require.NoError(t, err)
	require.JSONEq(t, `[{"a":1},[1,2]]`, string(first.Data))
	require.True(t, first.UpToDate)
	_, err = c.CloseStream(ctx, "j", CloseOptions{Data: []byte(`"bye"`), ContentType: "application/json"})
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

func TestBinarySSE(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, nil)
	ctx := context.Background()
	data := []byte{0, 1, 2, 0xff, '\n', '\r'}
	_, err := c.Create(ctx, "bin", CreateOptions{ContentType: "application/octet-stream", Data: data, Closed: true})
	require.NoError(t, err)
	s, err := c.OpenSSE(ctx, "bin", SSEOptions{})
	require.NoError(t, err)
	defer s.Close()
	var buf []byte
	for {
		ch, err := s.Next(ctx)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		buf = append(buf, ch.Data...)
	}
	require.Equal(t, data, buf)
}

func TestSSEServerReconnectInterval(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, []testserver.Option{testserver.WithSSECloseInterval(100 * time.Millisecond)})
	ctx := context.Background()
	_, err := c.Create(ctx, "r", CreateOptions{ContentType: "text/plain", Data: []byte("x")})
	require.NoError(t, err)
	s, err := c.OpenSSE(ctx, "r", SSEOptions{})
	require.NoError(t, err)
	defer s.Close()
	ch, err := s.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "x", string(ch.Data))
	_, err = s.Next(ctx)
	require.ErrorIs(t, err, ErrDisconnected)
	require.True(t, IsRetryable(err))
}

func TestErrorMappingsAgainstServer(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, []testserver.Option{testserver.WithMaxBodySize(16)}, WithRetry(RetryPolicy{MaxAttempts: 1}))
	ctx := context.Background()
	_, err := c.Create(ctx, "e", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	tp := AppendOptions{ContentType: "text/plain"}

	for _, tc := range []struct {
		name  string
		do    func() error
		want  error
		check func(t *testing.T, e *Error)
	}{
		{"create with other config", func() error {
			_, err := c.Create(ctx, "e", CreateOptions{ContentType: "application/json"})
			return err
		}, ErrStreamExists, nil},
		{"content type mismatch", func() error {
			_, err := c.Append(ctx, "e", []byte("1"), AppendOptions{ContentType: "application/json"})
			return err
		}, ErrContentTypeMismatch, nil},
		{"payload too large", func() error {
			_, err := c.Append(ctx, "e", []byte(strings.Repeat("x", 64)), tp)
			return err
		}, ErrPayloadTooLarge, nil},
		{"not found", func() error { _, err := c.Append(ctx, "nope", []byte("x"), tp); return err }, ErrNotFound, nil},
		{"read not found", func() error { _, err := c.Read(ctx, "nope", ReadOptions{}); return err }, ErrNotFound, nil},
		{"sse not found", func() error { _, err := c.OpenSSE(ctx, "nope", SSEOptions{}); return err }, ErrNotFound, nil},
		{"delete not found", func() error { return c.Delete(ctx, "nope") }, ErrNotFound, nil},
		{"bad offset", func() error { _, err := c.Read(ctx, "e", ReadOptions{Offset: "garbage!"}); return err }, ErrBadRequest, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			require.ErrorIs(t, err, tc.want)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.NotZero(t, e.Status)
		})
	}

	// Stream-Seq.
	_, err = c.Append(ctx, "e", []byte("1"), AppendOptions{ContentType: "text/plain", Seq: "b"})
	require.NoError(t, err)
	_, err = c.Append(ctx, "e", []byte("2"), AppendOptions{ContentType: "text/plain", Seq: "a"})
	require.ErrorIs(t, err, ErrSeqConflict)
	// Stream-Seq that would be fine, but the content type is wrong: the HEAD tells.
	_, err = c.Append(ctx, "e", []byte("3"), AppendOptions{ContentType: "application/json", Seq: "c"})
	require.ErrorIs(t, err, ErrContentTypeMismatch)

	// Producers.
	p := func(epoch, seq int64) AppendOptions {
		return AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "w1", Epoch: epoch, Seq: seq}}
	}
	r, err := c.Append(ctx, "e", []byte("p0"), p(1, 0))
	require.NoError(t, err)
	require.False(t, r.Duplicate)
	require.Equal(t, int64(1), r.ProducerEpoch)
	require.Equal(t, int64(0), r.ProducerSeq)
	dup, err := c.Append(ctx, "e", []byte("p0"), p(1, 0))
	require.NoError(t, err)
	require.True(t, dup.Duplicate)
	_, err = c.Append(ctx, "e", []byte("p3"), p(1, 3))
	require.ErrorIs(t, err, ErrProducerSeqGap)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, int64(1), e.ExpectedSeq)
	require.Equal(t, int64(3), e.ReceivedSeq)
	_, err = c.Append(ctx, "e", []byte("z"), p(0, 0))
	require.ErrorIs(t, err, ErrStaleEpoch)
	require.ErrorAs(t, err, &e)
	require.Equal(t, int64(1), e.ServerEpoch)
	_, err = c.Append(ctx, "e", []byte("x"), p(2, 5))
	require.ErrorIs(t, err, ErrBadRequest, "a new epoch must start at seq 0")

	// Closed.
	fin, err := c.CloseStream(ctx, "e", CloseOptions{})
	require.NoError(t, err)
	_, err = c.Append(ctx, "e", []byte("late"), tp)
	require.ErrorIs(t, err, ErrStreamClosed)
	require.ErrorAs(t, err, &e)
	require.Equal(t, fin.NextOffset, e.NextOffset)
	_, err = c.CloseStream(ctx, "e", CloseOptions{Data: []byte("late"), ContentType: "text/plain"})
	require.ErrorIs(t, err, ErrStreamClosed)
}

func TestInjectedStatusMappings(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil, WithRetry(RetryPolicy{MaxAttempts: 1}))
	ctx := context.Background()
	_, err := c.Create(ctx, "f", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	for _, tc := range []struct {
		status int
		want   error
	}{
		{401, ErrUnauthorized}, {403, ErrForbidden}, {412, ErrPreconditionFailed},
		{429, ErrRateLimited}, {500, ErrServer}, {501, ErrNotSupported}, {418, ErrUnexpectedStatus},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv.InjectFault(testserver.Fault{Path: "f", Status: tc.status, Count: 1})
			defer srv.ClearFaults()
			_, err := c.Head(ctx, "f")
			require.ErrorIs(t, err, tc.want)
		})
	}
}

// Done-when 2 of issue 3.

func TestRetryTwo503ThenSuccess(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil)
	ctx := context.Background()
	_, err := c.Create(ctx, "r", CreateOptions{ContentType: "text/plain", Data: []byte("x")})
	require.NoError(t, err)
	for _, tc := range []struct {
		method string
		do     func() error
	}{
		{http.MethodHead, func() error { _, err := c.Head(ctx, "r"); return err }},
		{http.MethodGet, func() error { _, err := c.Read(ctx, "r", ReadOptions{}); return err }},
		{http.MethodPut, func() error { _, err := c.Create(ctx, "r", CreateOptions{ContentType: "text/plain"}); return err }},
		{http.MethodPost, func() error {
			_, err := c.Append(ctx, "r", []byte("y"), AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}})
			return err
		}},
		{http.MethodDelete, func() error { return c.Delete(ctx, "r") }},
	} {
		t.Run(tc.method, func(t *testing.T) {
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
	srv.InjectFault(testserver.Fault{Path: "tok", Status: 503, Count: 1})
	_, err := c.Create(context.Background(), "tok", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	require.Equal(t, []string{"Bearer v1", "Bearer v2"}, seen)
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

func TestReadLiveSSEAtTail(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cr, err := c.Create(ctx, "tail", CreateOptions{ContentType: "text/plain", Data: []byte("x")})
	require.NoError(t, err)
	for _, off := range []Offset{cr.NextOffset, OffsetNow} {
		ch, err := c.Read(ctx, "tail", ReadOptions{Offset: off, Live: LiveSSE})
		require.NoError(t, err)
		require.Empty(t, ch.Data)
		require.True(t, ch.UpToDate)
		require.Equal(t, cr.NextOffset, ch.NextOffset)
		require.NotEmpty(t, ch.Cursor)
	}
}
