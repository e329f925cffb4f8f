package durable

import (
	"context"
	"io"
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
				nextEvent(t, ctx, r, i)
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
	nextEvent(t, ctx, r, 2)
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
	nextEvent(t, ctx, r, 0)
	go func() {
		time.Sleep(100 * time.Millisecond)
		appendEvents(t, c, "s", 1, 1)
	}()
	nextEvent(t, ctx, r, 1)
	require.Equal(t, LiveLongPoll, r.Stats().Live)
	require.Equal(t, int64(3), sseTries.Load())
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
			srv, c, _ := newEventStream(t, 1)
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
