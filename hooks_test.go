package durable

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// recorder is a hook implementing every Hook interface.
// onRetry is a HookRetry of one function, called for retries (not for
// the end of an outage).
type onRetry func(RetryEvent)

func (f onRetry) OnRetry(ev RetryEvent) {
	if !ev.Recovered {
		f(ev)
	}
}

type recorder struct {
	mu       sync.Mutex
	requests []RequestEvent
	retries  []RetryEvent
	reads    []ReadEvent
	batches  []BatchEvent
	commits  []CommitEvent
	upToDate []UpToDateEvent
}

// recordEvent appends ev to the recorder's list l.
func recordEvent[E any](h *recorder, l *[]E, ev E) {
	h.mu.Lock()
	*l = append(*l, ev)
	h.mu.Unlock()
}

func (h *recorder) OnRequest(ev RequestEvent)   { recordEvent(h, &h.requests, ev) }
func (h *recorder) OnRetry(ev RetryEvent)       { recordEvent(h, &h.retries, ev) }
func (h *recorder) OnRead(ev ReadEvent)         { recordEvent(h, &h.reads, ev) }
func (h *recorder) OnBatch(ev BatchEvent)       { recordEvent(h, &h.batches, ev) }
func (h *recorder) OnCommit(ev CommitEvent)     { recordEvent(h, &h.commits, ev) }
func (h *recorder) OnUpToDate(ev UpToDateEvent) { recordEvent(h, &h.upToDate, ev) }

// TestHooks: one list of hooks on the Client sees the requests (with
// their attempt numbers), the retries with their cause, a Writer's batches,
// and a Reader's chunks, commits and arrival at the tail.
func TestHooks(t *testing.T) {
	t.Parallel()
	h := &recorder{}
	srv := testserver.New()
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL(), WithRetry(fastRetry()), WithHooks(h))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	ctx := ctxT(t, 10*time.Second)
	createJSON(t, c, "s")
	stream := srv.StreamURL("s")

	srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodPost, Status: 503, Count: 1})
	w, err := NewWriter(c, "s", JSONCodec[event]{}, WithRetry(writerRetry()))
	require.NoError(t, err)
	for i := range 10 {
		require.NoError(t, w.Write(ctx, event{N: i}))
	}
	require.NoError(t, w.Close(ctx))

	store := newMemStore()
	r, err := NewReader(c, "s", JSONCodec[event]{}, WithLive(LiveNone), WithStore(store))
	require.NoError(t, err)
	n := 0
	for _, err := range r.Messages(ctx) {
		require.NoError(t, err)
		n++
	}
	require.Equal(t, 10, n)
	require.NoError(t, r.Close(ctx))

	h.mu.Lock()
	defer h.mu.Unlock()
	var failed, retried bool
	for _, ev := range h.requests {
		require.Equal(t, stream, ev.Stream)
		require.Positive(t, ev.Latency)
		if ev.Op == "write" || ev.Op == "append" {
			if ev.Status == 503 {
				failed = true
				require.Equal(t, 1, ev.Attempt)
				require.ErrorIs(t, ev.Err, ErrServer)
			} else if failed && ev.Attempt == 2 {
				retried = true
				require.NoError(t, ev.Err)
			}
		}
	}
	require.True(t, failed && retried, "%+v", h.requests)
	require.Len(t, h.retries, 2, "the retry and the end of the outage")
	require.Equal(t, RetryEvent{Context: h.retries[0].Context, Op: "write", Stream: stream, Attempt: 1, Wait: h.retries[0].Wait, Err: h.retries[0].Err}, h.retries[0])
	require.ErrorIs(t, h.retries[0].Err, ErrServer)
	require.Equal(t, RetryEvent{Context: h.retries[1].Context, Op: "write", Stream: stream, Attempt: 1, Recovered: true, Elapsed: h.retries[1].Elapsed}, h.retries[1])
	require.Positive(t, h.retries[1].Elapsed)

	batched := 0
	for _, ev := range h.batches {
		require.NoError(t, ev.Err)
		require.Equal(t, w.Producer().ID, ev.Producer.ID)
		batched += ev.Messages
	}
	require.Equal(t, 10, batched)

	read := 0
	for _, ev := range h.reads {
		read += ev.Messages
		require.Positive(t, ev.Bytes)
	}
	require.Equal(t, 10, read)
	require.NotEmpty(t, h.commits)
	require.Equal(t, "/v1/stream/s", h.commits[0].Key)
	require.Equal(t, []UpToDateEvent{
		{Stream: stream, Key: "/v1/stream/s", UpToDate: true, Offset: h.upToDate[0].Offset},
		{Stream: stream, Key: "/v1/stream/s", Offset: h.upToDate[0].Offset, Closed: true},
	}, h.upToDate)

	_, err = NewClient(srv.URL(), WithHooks(struct{}{}))
	require.ErrorIs(t, err, ErrInvalidArgument)
}

// bufferReports is a hook that records the buffer a Writer reports in its
// StartEvents and BatchEvents, in the order the calls come, and counts
// calls that overlap another one.
type bufferReports struct {
	active   atomic.Int32
	overlaps atomic.Int32
	third    chan struct{} // closed when a third batch has started

	mu      sync.Mutex
	starts  int
	settled int
	open    int // the most batches started and not settled at once
	last    [2]int
}

func (h *bufferReports) report(buffered, bytes int, start bool) {
	if h.active.Add(1) > 1 {
		h.overlaps.Add(1)
	}
	runtime.Gosched() // a call overlapping this one gets every chance to show
	h.mu.Lock()
	if start {
		h.starts++
		if h.starts == 3 {
			close(h.third)
		}
	} else {
		h.settled++
	}
	h.open = max(h.open, h.starts-h.settled)
	h.last = [2]int{buffered, bytes}
	h.mu.Unlock()
	h.active.Add(-1)
}

func (h *bufferReports) OnStart(ctx context.Context, ev StartEvent) context.Context {
	h.report(ev.Buffered, ev.BufferedBytes, true)
	return ctx
}

func (h *bufferReports) OnBatch(ev BatchEvent) { h.report(ev.Buffered, ev.BufferedBytes, false) }

// TestHookWriterReportsSerialized: the hook calls that report a Writer's
// buffer (OnStart, OnBatch) come one at a time even when its batches are
// sent from several goroutines at once, so that the last report is the
// latest: an empty buffer once Close has landed every batch.
func TestHookWriterReportsSerialized(t *testing.T) {
	t.Parallel()
	h := &bufferReports{third: make(chan struct{})}
	ctx := ctxT(t, 20*time.Second)
	// The second append is held until a third batch has started (the
	// first batch of an epoch goes alone): two batches are in flight at
	// once, whatever the machine's speed.
	var posts atomic.Int32
	hold := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && posts.Add(1) == 2 {
				select {
				case <-h.third:
				case <-ctx.Done():
				}
			}
			next.ServeHTTP(w, r)
		})
	}
	srv := testserver.New(testserver.WithMiddleware(hold))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL(), WithHooks(h))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	createJSON(t, c, "s")

	w, err := NewWriter(c, "s", JSONCodec[event]{}, WithMaxBatch(5, 1<<20), WithMaxInFlight(4), WithLinger(0))
	require.NoError(t, err)
	for i := range 400 {
		require.NoError(t, w.Write(ctx, event{N: i}))
	}
	require.NoError(t, w.Close(ctx))

	h.mu.Lock()
	defer h.mu.Unlock()
	require.GreaterOrEqual(t, h.open, 2, "batches were in flight together")
	require.Equal(t, h.starts, h.settled)
	require.Zero(t, h.overlaps.Load(), "two reports of the buffer at once")
	require.Equal(t, [2]int{0, 0}, h.last, "the last report is the latest: nothing is buffered after Close")
}
