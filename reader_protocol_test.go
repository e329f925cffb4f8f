package durable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// recorded is one request seen by recordingServer.
type recorded struct {
	Query       url.Values
	IfNoneMatch string
	Status      int
	RespCursor  string // Stream-Cursor header of the answer
}

// recordingServer puts an httptest server in front of a testserver and
// records every request's query, If-None-Match and answer status.
type recordingServer struct {
	*testserver.Server
	front *httptest.Server
	mu    sync.Mutex
	reqs  []recorded
	// wrap, when set, may answer a request itself (return true).
	wrap func(w http.ResponseWriter, r *http.Request) bool
}

type statusWriter struct {
	http.ResponseWriter
	status int
	body   []byte // kept for SSE answers
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if strings.HasPrefix(s.Header().Get("Content-Type"), "text/event-stream") {
		s.body = append(s.body, b...)
	}
	return s.ResponseWriter.Write(b)
}

var sseCursorRE = regexp.MustCompile(`"streamCursor":"([^"]*)"`)

func (s *statusWriter) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func newRecordingServer(t *testing.T, sopts ...testserver.Option) (*recordingServer, *Client) {
	t.Helper()
	rs := &recordingServer{Server: testserver.New(append([]testserver.Option{testserver.WithLongPollTimeout(200 * time.Millisecond), testserver.WithSSECloseInterval(300 * time.Millisecond)}, sopts...)...)}
	h := rs.Handler()
	rs.front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rs.wrap != nil && rs.wrap(w, r) {
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: 200}
		h.ServeHTTP(sw, r)
		if r.Method == http.MethodGet {
			rs.mu.Lock()
			rec := recorded{Query: r.URL.Query(), IfNoneMatch: r.Header.Get("If-None-Match"), Status: sw.status, RespCursor: w.Header().Get("Stream-Cursor")}
			if m := sseCursorRE.FindAllSubmatch(sw.body, -1); len(m) > 0 {
				rec.RespCursor = string(m[len(m)-1][1])
			}
			rs.reqs = append(rs.reqs, rec)
			rs.mu.Unlock()
		}
	}))
	t.Cleanup(rs.Server.Close)
	t.Cleanup(rs.front.Close)
	c, err := NewClient(rs.front.URL+testserver.DefaultPrefix, WithRetry(fastRetry()))
	require.NoError(t, err)
	t.Cleanup(c.hc.CloseIdleConnections)
	return rs, c
}

func (rs *recordingServer) gets() []recorded {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]recorded(nil), rs.reqs...)
}

func TestReaderEchoesCursor(t *testing.T) {
	t.Parallel()
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			rs, c := newRecordingServer(t)
			createJSON(t, c, "s")
			r := openReader[event](t, c, "s", WithLive(mode))
			ctx := ctxT(t, 10*time.Second)
			go func() {
				for i := 0; i < 3; i++ {
					time.Sleep(250 * time.Millisecond) // long-polls time out, SSE reconnects in between
					appendEvents(t, c, "s", i, 1)
				}
			}()
			for i := 0; i < 3; i++ {
				m, err := r.Next(ctx)
				require.NoError(t, err)
				require.Equal(t, i, m.Value.N)
			}
			live, withCursor := 0, 0
			prevCursor := ""
			for _, q := range rs.gets() {
				switch q.Query.Get("live") {
				case "":
					require.Empty(t, q.Query.Get("cursor"), "catch-up reads carry no cursor (cacheable by offset)")
				default:
					require.Equal(t, string(mode), q.Query.Get("live"))
					live++
					if q.Query.Get("cursor") != "" {
						withCursor++
					}
					if prevCursor != "" {
						require.Equal(t, prevCursor, q.Query.Get("cursor"), "the last Stream-Cursor is echoed")
					}
				}
				if q.RespCursor != "" {
					prevCursor = q.RespCursor
				}
			}
			require.GreaterOrEqual(t, live, 2, "several live requests")
			require.Equal(t, live, withCursor, "every live request echoes the cursor")
		})
	}
}

func TestReaderIfNoneMatchOnRepeatedCatchUp(t *testing.T) {
	t.Parallel()
	rs, c := newRecordingServer(t)
	createJSON(t, c, "s")
	appendEvents(t, c, "s", 0, 2)
	r := openReader[event](t, c, "s", WithLive(LiveNone))
	ctx := ctxT(t, 5*time.Second)
	var got []int
	for m, err := range r.Messages(ctx) {
		require.NoError(t, err)
		got = append(got, m.Value.N)
	}
	require.Equal(t, []int{0, 1}, got)
	// Polling again: the same offset is read with If-None-Match → 304.
	for i := 0; i < 3; i++ {
		_, err := r.Next(ctx)
		require.ErrorIs(t, err, ErrCaughtUp)
	}
	reqs := rs.gets()
	require.Len(t, reqs, 2+3, "one request per poll")
	tail := reqs[1].Query.Get("offset")
	for _, q := range reqs[2:] {
		require.Equal(t, tail, q.Query.Get("offset"))
		require.NotEmpty(t, q.IfNoneMatch, "repeated catch-up read sends If-None-Match")
		require.Equal(t, http.StatusNotModified, q.Status)
	}
	// New data after 304s is still seen.
	appendEvents(t, c, "s", 2, 1)
	m, err := r.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, m.Value.N)
}

func TestReaderDecodeErrorIsTypedWithPosition(t *testing.T) {
	t.Parallel()
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			_, c := newReaderServer(t)
			createJSON(t, c, "s")
			_, err := c.Append(context.Background(), "s", []byte(`[{"n":0},{"n":"not a number"},{"n":2}]`), AppendOptions{ContentType: "application/json"})
			require.NoError(t, err)
			store := newMemStore()
			r := openReader[event](t, c, "s", WithLive(mode), WithStore(store), WithCommitInterval(time.Hour))
			ctx := ctxT(t, 5*time.Second)
			m, err := r.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, 0, m.Value.N)
			_, err = r.Next(ctx)
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, Position{Offset: "-1", Skip: 2}, de.Position)
			require.Equal(t, 1, de.Index)
			require.Equal(t, Offset("-1"), de.BatchOffset)
			require.Contains(t, string(de.Data), "not a number")
			require.Contains(t, err.Error(), "the 2nd message of the batch read from the start of the stream does not decode")
			// Close does not count the undecodable message as handled.
			require.NoError(t, r.Close(context.Background()))
			saved, ok, err := store.Load(ctx, r.key)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, Position{Offset: "-1", Skip: 1}, saved, "the saved position stays before the bad message")
			// A new reader meets it again, and calling Next again passes over it.
			r2 := openReader[event](t, c, "s", WithLive(mode), WithStore(store))
			_, err = r2.Next(ctx)
			require.ErrorAs(t, err, &de)
			m, err = r2.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, 2, m.Value.N)
		})
	}
}

func TestReaderResumesInsideABatch(t *testing.T) {
	t.Parallel()
	_, c := newReaderServer(t)
	createJSON(t, c, "s")
	end := appendEvents(t, c, "s", 0, 10)
	ctx := ctxT(t, 5*time.Second)
	tests := []struct {
		name  string
		saved Position
		first int
	}{
		{"mid batch", Position{Offset: "-1", Skip: 4}, 4},
		{"start", Position{Offset: "-1"}, 0},
		{"after last", Position{Offset: string(end)}, -1},
		{"skip past the batch carries on", Position{Offset: "-1", Skip: 12}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newMemStore()
			require.NoError(t, store.Save(ctx, "k", tt.saved))
			r := openReader[event](t, c, "s", WithLive(LiveNone), WithStore(store), WithKey("k"))
			m, err := r.Next(ctx)
			if tt.first < 0 {
				require.ErrorIs(t, err, ErrCaughtUp)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.first, m.Value.N)
		})
	}
	// A skip past a short batch carries into the next one.
	end2 := appendEvents(t, c, "s", 10, 5)
	store := newMemStore()
	require.NoError(t, store.Save(ctx, "k", Position{Offset: "-1", Skip: 12}))
	r := openReader[event](t, c, "s", WithLive(LiveNone), WithStore(store), WithKey("k"))
	m, err := r.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 12, m.Value.N)
	require.Equal(t, Position{Offset: "-1", Skip: 13}, m.Position)
	_ = end2
}

func TestReaderStartOptions(t *testing.T) {
	t.Parallel()
	for _, mode := range append([]LiveMode{LiveNone}, liveModes...) {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			_, c := newReaderServer(t)
			createJSON(t, c, "s")
			mid := appendEvents(t, c, "s", 0, 2)
			appendEvents(t, c, "s", 2, 2)
			ctx := ctxT(t, 5*time.Second)

			r := openReader[event](t, c, "s", WithLive(mode), WithStart(mid))
			m, err := r.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, 2, m.Value.N, "from a given offset")

			rn := openReader[event](t, c, "s", WithLive(mode), WithStart(OffsetNow))
			if mode == LiveNone {
				_, err := rn.Next(ctx)
				require.ErrorIs(t, err, ErrCaughtUp, "now skips existing data")
				appendEvents(t, c, "s", 4, 1)
				m, err = rn.Next(ctx)
				require.NoError(t, err)
				require.Equal(t, 4, m.Value.N)
				return
			}
			appended := make(chan error, 1)
			go func() {
				time.Sleep(50 * time.Millisecond)
				_, err := c.Append(ctx, "s", []byte(`[{"n":4}]`), AppendOptions{ContentType: "application/json"})
				appended <- err
			}()
			m, err = rn.Next(ctx)
			require.NoError(t, <-appended)
			require.NoError(t, err)
			require.Equal(t, 4, m.Value.N, "now skips existing data")
		})
	}
}

func TestReaderBytesStreams(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/octet-stream", "text/plain"} {
		for _, mode := range liveModes {
			t.Run(ct+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				_, c := newReaderServer(t)
				ctx := ctxT(t, 5*time.Second)
				_, err := c.Create(ctx, "b", CreateOptions{ContentType: ct, Data: []byte("hello ")})
				require.NoError(t, err)
				r := openReader[[]byte](t, c, "b", WithLive(mode))
				m, err := r.Next(ctx)
				require.NoError(t, err)
				require.Equal(t, "hello ", string(m.Value))
				payload := []byte("world\x00\x01\xff")
				if ct == "text/plain" {
					payload = []byte("world")
				}
				go func() {
					time.Sleep(50 * time.Millisecond)
					_, _ = c.Append(context.Background(), "b", payload, AppendOptions{ContentType: ct})
				}()
				m, err = r.Next(ctx)
				require.NoError(t, err)
				require.Equal(t, payload, m.Value, "SSE base64 decoded for binary streams")
				require.Equal(t, int64(0), m.Position.Skip)

				// Resume with a byte skip.
				store := newMemStore()
				require.NoError(t, store.Save(ctx, "k", Position{Offset: "-1", Skip: 3}))
				r2 := openReader[[]byte](t, c, "b", WithLive(LiveNone), WithStore(store), WithKey("k"))
				m, err = r2.Next(ctx)
				require.NoError(t, err)
				require.Equal(t, append([]byte("lo "), payload...), m.Value)
			})
		}
	}
}

func TestReaderSameOffsetForeverDoesNotSpin(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		live LiveMode
		h    http.HandlerFunc
	}{
		{"catch-up 200 same offset, never up to date", LiveLongPoll, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Stream-Next-Offset", "0_5")
			w.Write([]byte(`[]`))
		}},
		{"long-poll 204 at once", LiveLongPoll, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Stream-Next-Offset", "0_5")
			w.Header().Set("Stream-Up-To-Date", "true")
			w.Header().Set("Stream-Cursor", "1")
			if r.URL.Query().Get("live") != "" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			w.Write([]byte(`[]`))
		}},
		{"sse closes after a control with no progress", LiveSSE, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Stream-Next-Offset", "0_5")
			w.Header().Set("Stream-Up-To-Date", "true")
			if r.URL.Query().Get("live") == "sse" {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "event: control\ndata: {\"streamNextOffset\":\"0_5\",\"streamCursor\":\"1\",\"upToDate\":true}\n\n")
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`[]`))
		}},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				tt.h(w, r)
			}))
			t.Cleanup(hs.Close)
			c, err := NewClient(hs.URL + "/")
			require.NoError(t, err)
			t.Cleanup(c.hc.CloseIdleConnections)
			r, err := NewReader(c, "s", JSONCodec[event]{}, WithLive(tt.live),
				WithRetry(RetryPolicy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 2, Jitter: 0}))
			require.NoError(t, err)
			defer r.Close(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			_, err = r.Next(ctx)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			// Without throttling this would be thousands of requests.
			require.Less(t, n.Load(), int64(25), "requests in 500 ms")
			require.Positive(t, r.Stats().Retries)
		})
	}
}

func TestReaderMalformedSSE(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		body    string
		want    error
		maxLine int64
	}{
		{"control is not JSON", "event: control\ndata: {nope\n\n", ErrProtocol, 0},
		{"control without offset", "event: control\ndata: {\"streamCursor\":\"1\"}\n\n", ErrProtocol, 0},
		{"data not a JSON array", "event: data\ndata: {\"n\":1}\n\nevent: control\ndata: {\"streamNextOffset\":\"0_9\",\"streamCursor\":\"1\"}\n\n", ErrProtocol, 0},
		{"offset goes back (retried, then bounded)", "event: control\ndata: {\"streamNextOffset\":\"0_1\",\"streamCursor\":\"1\"}\n\n", errStale, 0},
		{"line over the limit", "event: data\ndata: [" + strings.Repeat("1,", 600) + "1]\n\n", ErrResponseTooLarge, 1000},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				if r.URL.Query().Get("live") == "sse" {
					w.Header().Set("Content-Type", "text/event-stream")
					io.WriteString(w, tt.body)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Stream-Next-Offset", "0_5")
				w.Header().Set("Stream-Up-To-Date", "true")
				w.Write([]byte(`[]`))
			}))
			t.Cleanup(hs.Close)
			c, err := NewClient(hs.URL + "/")
			require.NoError(t, err)
			t.Cleanup(c.hc.CloseIdleConnections)
			opts := []Option{WithLive(LiveSSE), WithRetry(RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, MaxAttempts: 3})}
			if tt.maxLine > 0 {
				opts = append(opts, WithMaxResponseBytes(tt.maxLine))
			}
			r, err := NewReader(c, "s", JSONCodec[event]{}, opts...)
			require.NoError(t, err)
			defer r.Close(context.Background())
			ctx := ctxT(t, 5*time.Second)
			_, err = r.Next(ctx)
			require.ErrorIs(t, err, tt.want)
			var e *Error
			require.ErrorAs(t, err, &e, "typed")
			require.LessOrEqual(t, n.Load(), int64(4))
		})
	}
}

func TestReaderAutoFallsBackToLongPoll(t *testing.T) {
	t.Parallel()
	rs, c := newRecordingServer(t)
	// A "proxy" that kills every SSE response at once.
	var sseTries atomic.Int64
	rs.wrap = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Query().Get("live") == "sse" {
			sseTries.Add(1)
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			return true
		}
		return false
	}
	createJSON(t, c, "s")
	appendEvents(t, c, "s", 0, 1)
	r := openReader[event](t, c, "s", WithLive(LiveAuto), WithSSEFallback(3, time.Second))
	require.Equal(t, LiveSSE, r.Stats().Live)
	ctx := ctxT(t, 5*time.Second)
	m, err := r.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, m.Value.N)
	go func() {
		time.Sleep(100 * time.Millisecond)
		appendEvents(t, c, "s", 1, 1)
	}()
	m, err = r.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, m.Value.N)
	require.Equal(t, LiveLongPoll, r.Stats().Live)
	require.Equal(t, int64(3), sseTries.Load())
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

func TestReaderCloseUnblocksNext(t *testing.T) {
	t.Parallel()
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			_, c := newReaderServer(t, testserver.WithLongPollTimeout(10*time.Second))
			createJSON(t, c, "s")
			r := openReader[event](t, c, "s", WithLive(mode))
			errc := make(chan error, 1)
			go func() {
				_, err := r.Next(context.Background())
				errc <- err
			}()
			time.Sleep(100 * time.Millisecond)
			require.NoError(t, r.Close(context.Background()))
			select {
			case err := <-errc:
				require.ErrorIs(t, err, ErrClosed)
			case <-time.After(2 * time.Second):
				t.Fatal("Next still blocked after Close")
			}
			_, err := r.Next(context.Background())
			require.ErrorIs(t, err, ErrClosed)
			require.ErrorIs(t, r.Commit(context.Background(), Position{Offset: "x"}), ErrClosed)
		})
	}
}

func TestReaderCtxCancelDuringWait(t *testing.T) {
	t.Parallel()
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			_, c := newReaderServer(t, testserver.WithLongPollTimeout(10*time.Second))
			createJSON(t, c, "s")
			r := openReader[event](t, c, "s", WithLive(mode))
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			_, err := r.Next(ctx)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			// Still usable afterwards.
			go func() {
				time.Sleep(50 * time.Millisecond)
				appendEvents(t, c, "s", 0, 1)
			}()
			m, err := r.Next(ctxT(t, 5*time.Second))
			require.NoError(t, err)
			require.Equal(t, 0, m.Value.N)
		})
	}
}

func TestReaderCommit(t *testing.T) {
	t.Parallel()
	_, c := newReaderServer(t)
	createJSON(t, c, "s")
	appendEvents(t, c, "s", 0, 3)
	store := newMemStore()
	ctx := ctxT(t, 5*time.Second)
	r := openReader[event](t, c, "s", WithLive(LiveNone), WithStore(store), WithKey("k"), WithManualCommit())
	var msgs []Message[event]
	for m, err := range r.Messages(ctx) {
		require.NoError(t, err)
		msgs = append(msgs, m)
	}
	require.Len(t, msgs, 3)
	_, ok, _ := store.Load(ctx, "k")
	require.False(t, ok, "manual: nothing saved without Commit")
	m := msgs[1]
	m.Position.Meta = "app-data"
	require.NoError(t, r.Commit(ctx, m.Position))
	require.NoError(t, r.Commit(ctx, msgs[0].Position), "an older commit is a no-op")
	saved, ok, _ := store.Load(ctx, "k")
	require.True(t, ok)
	require.Equal(t, Position{Offset: "-1", Skip: 2, Meta: "app-data"}, saved, "never backwards")
	require.Equal(t, saved, r.Stats().Committed)
	require.NoError(t, r.Close(context.Background()))
	saved2, _, _ := store.Load(ctx, "k")
	require.Equal(t, saved, saved2, "manual: Close saves nothing")
}

func TestReaderIntervalCommitOnWaitAndClose(t *testing.T) {
	t.Parallel()
	_, c := newReaderServer(t)
	createJSON(t, c, "s")
	end := appendEvents(t, c, "s", 0, 3)
	store := newMemStore()
	ctx := ctxT(t, 5*time.Second)
	r := openReader[event](t, c, "s", WithStore(store), WithKey("k"), WithCommitInterval(time.Hour))
	for i := 0; i < 3; i++ {
		_, err := r.Next(ctx)
		require.NoError(t, err)
	}
	_, ok, _ := store.Load(ctx, "k")
	require.False(t, ok, "the last message is not handled yet")
	// The next Next marks it handled and saves before waiting for data.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err := r.Next(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	saved, ok, _ := store.Load(ctx, "k")
	require.True(t, ok)
	require.Equal(t, Position{Offset: string(end)}, saved)

	// Close saves what was handled, not the message in hand.
	appendEvents(t, c, "s", 3, 2)
	m, err := r.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, m.Value.N)
	m, err = r.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, m.Value.N)
	require.NoError(t, r.Close(context.Background()))
	saved, _, _ = store.Load(ctx, "k")
	require.Equal(t, Position{Offset: string(end), Skip: 1}, saved)
}

func TestNewReaderValidation(t *testing.T) {
	t.Parallel()
	_, c := newReaderServer(t)
	tests := []struct {
		name string
		opts []Option
	}{
		{"zero option", []Option{{}}},
		{"client option", []Option{WithLogger(slog.Default())}},
		{"writer option", []Option{WithLinger(0)}},
		{"given twice", []Option{WithLive(LiveSSE), WithLive(LiveNone)}},
		{"manual commit and interval", []Option{WithManualCommit(), WithCommitInterval(time.Second)}},
		{"key without store", []Option{WithKey("k")}},
		{"nil store", []Option{WithStore(nil)}},
		{"empty key", []Option{WithKey("")}},
		{"empty start", []Option{WithStart("")}},
		{"bad live", []Option{WithLive("websocket")}},
		{"zero interval", []Option{WithCommitInterval(0)}},
		{"bad retry", []Option{WithRetry(RetryPolicy{})}},
		{"chunk bytes", []Option{WithMaxResponseBytes(0)}},
		{"sse fallback", []Option{WithSSEFallback(0, time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewReader(c, "s", JSONCodec[event]{}, tt.opts...)
			require.ErrorIs(t, err, ErrInvalidArgument)
		})
	}
	_, err := NewReader(nil, "s", JSONCodec[event]{})
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = NewReader[event](c, "s", nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = NewReader(c, "", JSONCodec[event]{})
	require.ErrorIs(t, err, ErrInvalidArgument)
}

func TestPositionCompare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b Position
		want int
	}{
		{Position{Offset: "a"}, Position{Offset: "a"}, 0},
		{Position{Offset: "a", Meta: "x"}, Position{Offset: "a"}, 0},
		{Position{Offset: "a", Skip: 1}, Position{Offset: "a"}, 1},
		{Position{Offset: "a", Skip: 5}, Position{Offset: "b"}, -1},
		{Position{Offset: "-1", Skip: 9}, Position{Offset: "!"}, -1},
		{Position{Offset: "0_1"}, Position{Offset: "-1"}, 1},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			require.Equal(t, tt.want, tt.a.Compare(tt.b))
			require.Equal(t, -tt.want, tt.b.Compare(tt.a))
		})
	}
}

func TestReaderStoreLoadErrorIsReported(t *testing.T) {
	t.Parallel()
	_, c := newReaderServer(t)
	store := failingStore{err: errors.New("disk on fire")}
	r := openReader[event](t, c, "s", WithStore(store))
	_, err := r.Next(ctxT(t, time.Second))
	require.ErrorIs(t, err, ErrCommit)
	require.ErrorContains(t, err, "disk on fire")
}

type failingStore struct{ err error }

func (f failingStore) Load(context.Context, string) (Position, bool, error) {
	return Position{}, false, f.err
}
func (f failingStore) Save(context.Context, string, Position) error { return f.err }

func TestReaderMalformedJSONBatch(t *testing.T) {
	t.Parallel()
	bodies := map[string]string{
		"not an array":    `{"n":1}`,
		"unterminated":    `[{"n":1},{"n":2}`,
		"data after":      `[{"n":1}] x`,
		"missing comma":   `[{"n":1} {"n":2}]`,
		"trailing comma":  `[{"n":1},]`,
		"broken value":    `[{"n":1},{"n":}]`,
		"unbalanced":      `[{"n":[1}]`,
		"garbage element": `[{"n":1},tru]`,
	}
	for name, body := range bodies {
		for _, raw := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/raw=%v", name, raw), func(t *testing.T) {
				t.Parallel()
				hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("Stream-Next-Offset", "0_9")
					w.Header().Set("Stream-Up-To-Date", "true")
					io.WriteString(w, body)
				}))
				t.Cleanup(hs.Close)
				c, err := NewClient(hs.URL + "/")
				require.NoError(t, err)
				t.Cleanup(c.hc.CloseIdleConnections)
				ctx := ctxT(t, 5*time.Second)
				var errs []error
				var next func() error
				if raw {
					r, err := NewReader(c, "s", BytesCodec{}, WithLive(LiveNone))
					require.NoError(t, err)
					defer r.Close(context.Background())
					next = func() error { _, err := r.Next(ctx); return err }
				} else {
					r, err := NewReader(c, "s", JSONCodec[event]{}, WithLive(LiveNone))
					require.NoError(t, err)
					defer r.Close(context.Background())
					next = func() error { _, err := r.Next(ctx); return err }
				}
				for i := 0; i < 4; i++ {
					if err := next(); err != nil {
						errs = append(errs, err)
					}
				}
				require.NotEmpty(t, errs)
				first := errs[0]
				if errors.As(first, new(*DecodeError)) {
					// A value that is not JSON is the codec's to report (typed reader).
					require.False(t, raw)
					return
				}
				if name == "garbage element" && raw {
					return // the splitter checks structure only; raw bytes pass
				}
				require.ErrorIs(t, first, ErrProtocol, "%v", first)
				require.ErrorIs(t, errs[len(errs)-1], ErrProtocol, "sticky")
			})
		}
	}
}

func TestReaderDropsStaleResponses(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		switch off := r.URL.Query().Get("offset"); {
		case off == "-1":
			w.Header().Set("Stream-Next-Offset", "0_5")
			io.WriteString(w, `[{"n":0},{"n":1}]`)
		case off == "0_5" && i <= 3:
			// A stale cache answering with an older chunk.
			w.Header().Set("Stream-Next-Offset", "0_3")
			io.WriteString(w, `[{"n":1}]`)
		case off == "0_5":
			w.Header().Set("Stream-Next-Offset", "0_7")
			w.Header().Set("Stream-Up-To-Date", "true")
			w.Header().Set("Stream-Closed", "true")
			io.WriteString(w, `[{"n":2}]`)
		default:
			http.Error(w, "unexpected offset "+off, http.StatusBadRequest)
		}
	}))
	t.Cleanup(hs.Close)
	c, err := NewClient(hs.URL + "/")
	require.NoError(t, err)
	t.Cleanup(c.hc.CloseIdleConnections)
	r := openReader[event](t, c, "s")
	var got []int
	for m, err := range r.Messages(ctxT(t, 5*time.Second)) {
		require.NoError(t, err)
		got = append(got, m.Value.N)
	}
	require.Equal(t, []int{0, 1, 2}, got, "the stale answers were dropped and retried")
	require.Equal(t, int64(2), r.Stats().Retries)
}

func TestReaderCtxEndsAHangingRequest(t *testing.T) {
	t.Parallel()
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			srv, c := newReaderServer(t)
			createJSON(t, c, "s")
			appendEvents(t, c, "s", 0, 1)
			r := openReader[event](t, c, "s", WithLive(mode))
			_, err := r.Next(ctxT(t, 5*time.Second))
			require.NoError(t, err)
			// The server now takes 10 s to answer anything.
			srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Delay: 10 * time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err = r.Next(ctx)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Less(t, time.Since(start), 2*time.Second)
		})
	}
}

func TestReaderChunkOverLimitIsPermanent(t *testing.T) {
	t.Parallel()
	srv, c := newReaderServer(t)
	createJSON(t, c, "s")
	_, err := c.Append(context.Background(), "s", []byte(`[{"n":1,"s":"`+strings.Repeat("x", 5000)+`"}]`), AppendOptions{ContentType: "application/json"})
	require.NoError(t, err)
	r := openReader[event](t, c, "s", WithMaxResponseBytes(1000))
	ctx := ctxT(t, 5*time.Second)
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, ErrResponseTooLarge)
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, ErrResponseTooLarge, "sticky")
	require.Equal(t, 1, srv.Requests("s", http.MethodGet))
}

// TestReaderCommitFromAnotherGoroutine: messages handed to a worker that
// commits them while the reading goroutine goes on (run with -race).
func TestReaderCommitFromAnotherGoroutine(t *testing.T) {
	t.Parallel()
	_, c := newReaderServer(t)
	createJSON(t, c, "s")
	for i := 0; i < 20; i++ {
		appendEvents(t, c, "s", i*10, 10)
	}
	store := newMemStore()
	r := openReader[event](t, c, "s", WithLive(LiveNone), WithStore(store), WithKey("k"), WithCommitInterval(time.Millisecond))
	ctx := ctxT(t, 5*time.Second)
	work := make(chan Message[event], 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m := range work {
			require.NoError(t, r.Commit(ctx, m.Position))
			_ = r.Stats().Position
			_ = r.Stats()
		}
	}()
	n := 0
	for m, err := range r.Messages(ctx) {
		require.NoError(t, err)
		require.Equal(t, n, m.Value.N)
		m.Data = nil // Data is only valid until the next Next
		work <- m
		n++
	}
	close(work)
	wg.Wait()
	require.Equal(t, 200, n)
	saved, ok, err := store.Load(ctx, "k")
	require.NoError(t, err)
	require.True(t, ok)
	last := r.Stats().Committed
	require.Equal(t, last, saved)
	require.Zero(t, saved.Compare(r.Stats().Position), "everything committed")
}
