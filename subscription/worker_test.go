package subscription

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

// item is the message type of the worker tests.
type item struct {
	Stream string `json:"stream"`
	Seq    int    `json:"seq"`
}

// recorder collects what handlers saw.
type recorder struct {
	mu   sync.Mutex
	seen map[string][]int // stream → seqs in handling order
	n    int
	cond *sync.Cond
}

func newRecorder() *recorder {
	r := &recorder{seen: map[string][]int{}}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) add(m Message[item]) {
	r.mu.Lock()
	r.seen[m.Stream] = append(r.seen[m.Stream], m.Value.Seq)
	r.n++
	r.cond.Broadcast()
	r.mu.Unlock()
}

// waitDistinct waits until every stream has seqs 1..n handled.
func (r *recorder) waitDistinct(t *testing.T, streams []string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		ok := true
		for _, s := range streams {
			got := map[int]bool{}
			for _, q := range r.seen[s] {
				got[q] = true
			}
			if len(got) < n {
				ok = false
			}
		}
		snapshot := fmt.Sprint(r.seen)
		r.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every message was handled: %s", snapshot)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inOrder checks that each stream's seqs only go forward, except for
// going back to redeliver (never past what was handled).
func (r *recorder) checkOrder(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for s, seqs := range r.seen {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] != seqs[i-1]+1 && seqs[i] > seqs[i-1] {
				t.Errorf("stream %s: seq %d after %d skips messages: %v", s, seqs[i], seqs[i-1], seqs)
			}
		}
	}
}

// runWorker runs w until the test ends and returns a function that stops
// it and returns Run's result.
func runWorker[T any](t *testing.T, w *Worker[T]) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				err = errors.New("Run did not return")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// fill appends seqs 1..n to each stream.
func (e *env) fill(t *testing.T, streams []string, n int) map[string]durable.Offset {
	t.Helper()
	tails := map[string]durable.Offset{}
	for i := 1; i <= n; i++ {
		for _, s := range streams {
			tails[s] = e.appendJSON(t, s, item{Stream: s, Seq: i})
		}
	}
	return tails
}

// waitAcked waits until the subscription's acked offsets reach tails.
func waitAcked(t *testing.T, s *Subscription, tails map[string]durable.Offset) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := s.Get(testCtx(t))
		require.NoError(t, err)
		ok := true
		for p, tail := range tails {
			l, _ := info.Link(p)
			if l.Acked != tail {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("acked offsets %+v never reached %v", info.Links, tails)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWorkerHandlesEveryStreamInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	streams := []string{"w1/a", "w1/b", "w1/c"}
	e.createJSON(t, streams...)
	s := e.pullWake(t, "w1/*", 0)
	rec := newRecorder()
	w, err := NewWorker(e.c, s.ID(), func(ctx context.Context, m Message[item]) error {
		rec.add(m)
		return nil
	}, WithAckInterval(0))
	require.NoError(t, err)
	stop := runWorker(t, w)

	tails := e.fill(t, streams, 20)
	rec.waitDistinct(t, streams, 20)
	waitAcked(t, s, tails)
	for i := 21; i <= 25; i++ { // more after the first wakes
		tails["w1/a"] = e.appendJSON(t, "w1/a", item{Stream: "w1/a", Seq: i})
	}
	waitAcked(t, s, tails)
	require.NoError(t, stop())
	rec.checkOrder(t)
	want := map[string]int{"w1/a": 25, "w1/b": 20, "w1/c": 20}
	for _, st := range streams {
		assert.Len(t, rec.seen[st], want[st], "stream %s: each message handled once: %v", st, rec.seen[st])
	}
	stats := w.Stats()
	assert.EqualValues(t, 65, stats.Handled)
	assert.Positive(t, stats.Wakes)
	assert.Zero(t, stats.Fenced)
}

// TestWorkerHandlerErrorReleases: a failing handler acks the progress
// before the failed message, releases, and gets the message again. (Only
// the end of a read is an offset the server accepts in an ack, so the
// messages are appended in two reads: 1-2 acked, then 3-5.)
func TestWorkerHandlerErrorReleases(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createJSON(t, "he/a")
	s := e.pullWake(t, "he/*", 0)
	rec := newRecorder()
	var failed sync.Once
	boom := errors.New("boom")
	w, err := NewWorker(e.c, s.ID(), func(ctx context.Context, m Message[item]) error {
		if m.Value.Seq == 3 {
			fail := false
			failed.Do(func() { fail = true })
			if fail {
				return boom
			}
		}
		rec.add(m)
		return nil
	}, WithAckInterval(0), WithPollInterval(50*time.Millisecond))
	require.NoError(t, err)
	stop := runWorker(t, w)
	tails := e.fill(t, []string{"he/a"}, 2)
	waitAcked(t, s, tails)
	for i := 3; i <= 5; i++ {
		tails["he/a"] = e.appendJSON(t, "he/a", item{Stream: "he/a", Seq: i})
	}
	waitAcked(t, s, tails)
	// Read before stopping: a lease the Worker holds at shutdown (a wake
	// claimed after the last ack) is released and counted too.
	st := w.Stats()
	require.NoError(t, stop())
	rec.mu.Lock()
	assert.Equal(t, []int{1, 2, 3, 4, 5}, rec.seen["he/a"], "1 and 2 acked before the failure: not again")
	rec.mu.Unlock()
	assert.EqualValues(t, 1, st.HandlerErrors)
	assert.EqualValues(t, 1, st.Releases, "one release, after the handler error")
}

// TestWorkerBatches: a BatchHandler gets batches of at most the batch
// size, of one stream, in order, with Data that stays valid.
func TestWorkerBatches(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createJSON(t, "bt/a", "bt/b")
	s := e.pullWake(t, "bt/*", 0)
	tails := e.fill(t, []string{"bt/a", "bt/b"}, 25)
	var mu sync.Mutex
	var batches [][]Message[item]
	w, err := NewBatchWorker(e.c, s.ID(), func(ctx context.Context, b []Message[item]) error {
		mu.Lock()
		batches = append(batches, b)
		mu.Unlock()
		return nil
	}, WithBatchSize(10))
	require.NoError(t, err)
	stop := runWorker(t, w)
	waitAcked(t, s, tails)
	require.NoError(t, stop())
	next := map[string]int{"bt/a": 1, "bt/b": 1}
	for _, b := range batches {
		require.NotEmpty(t, b)
		require.LessOrEqual(t, len(b), 10)
		for _, m := range b {
			require.Equal(t, b[0].Stream, m.Stream)
			require.Equal(t, next[m.Stream], m.Value.Seq)
			require.JSONEq(t, fmt.Sprintf(`{"stream":%q,"seq":%d}`, m.Stream, m.Value.Seq), string(m.Data))
			next[m.Stream]++
		}
	}
	assert.Equal(t, map[string]int{"bt/a": 26, "bt/b": 26}, next)
}

// TestWorkerLongHandlerKeepsLease: a handler that takes longer than the
// lease keeps it (heartbeats), so no other worker can claim meanwhile.
func TestWorkerLongHandlerKeepsLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createJSON(t, "lh/a")
	const lease = 3 * time.Second
	s := e.pullWake(t, "lh/*", lease)
	inHandler := make(chan struct{})
	var once sync.Once
	release := make(chan struct{})
	w, err := NewWorker(e.c, s.ID(), func(ctx context.Context, m Message[item]) error {
		if m.Value.Seq == 1 {
			once.Do(func() { close(inHandler) })
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	require.NoError(t, err)
	stop := runWorker(t, w)
	tails := e.fill(t, []string{"lh/a"}, 2)
	within(t, inHandler, "the handler was never called")
	began := time.Now()
	for time.Since(began) < lease*5/3 {
		time.Sleep(lease / 3)
		_, err := s.Claim(testCtx(t), "intruder")
		require.ErrorIs(t, err, ErrAlreadyClaimed, "the lease is kept while the handler runs")
	}
	close(release)
	waitAcked(t, s, tails)
	require.NoError(t, stop())
	assert.Zero(t, w.Stats().Fenced)
	assert.Zero(t, w.Stats().Expired)
	assert.EqualValues(t, 1, w.Stats().Wakes, "one wake, never lost")
}

// TestWorkersShareSubscription: several Workers (as in several processes)
// share one subscription: every message handled, each stream in order,
// and no acked message handled again.
func TestWorkersShareSubscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var streams []string
	for i := range 10 {
		streams = append(streams, fmt.Sprintf("sh/%d", i))
	}
	e.createJSON(t, streams...)
	s := e.pullWake(t, "sh/*", 0)
	rec := newRecorder()
	var stops []func() error
	for i := range 3 {
		w, err := NewWorker(e.c, s.ID(), func(ctx context.Context, m Message[item]) error {
			rec.add(m)
			return nil
		}, WithName(fmt.Sprintf("w%d", i)), WithConcurrency(3), WithAckInterval(0))
		require.NoError(t, err)
		stops = append(stops, runWorker(t, w))
	}
	tails := e.fill(t, streams, 30)
	rec.waitDistinct(t, streams, 30)
	waitAcked(t, s, tails)
	for _, stop := range stops {
		require.NoError(t, stop())
	}
	rec.checkOrder(t)
	for _, st := range streams {
		assert.Len(t, rec.seen[st], 30, "no redelivery without a failure: %v", rec.seen[st])
	}
}

func TestWorkerOptionsRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := func(context.Context, Message[item]) error { return nil }
	for _, o := range []Option{WithName(""), WithConcurrency(0), WithShards(0), WithAckInterval(-1),
		WithPollInterval(0), WithBatchSize(0), nil} {
		_, err := NewWorker(e.c, "x", h, o)
		require.ErrorIs(t, err, durable.ErrInvalidArgument)
	}
	_, err := NewWorker[item](e.c, "x", nil)
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
	_, err = NewBatchWorker[item](e.c, "x", nil)
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
	_, err = NewWorker(nil, "x", h)
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
	_, err = NewWorker(e.c, "a/b", h)
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
}

func TestWorkerRunErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := func(context.Context, Message[item]) error { return nil }
	w, err := NewWorker(e.c, "missing", h)
	require.NoError(t, err)
	require.ErrorIs(t, w.Run(testCtx(t)), ErrNotFound)

	hook := e.webhookSub(t, "x/*", "http://127.0.0.1:1/h")
	w, err = NewWorker(e.c, hook.ID(), h)
	require.NoError(t, err)
	require.ErrorIs(t, w.Run(testCtx(t)), ErrInvalidRequest)

	s := e.pullWake(t, "y/*", 0)
	w, err = NewWorker(e.c, s.ID(), h)
	require.NoError(t, err)
	stop := runWorker(t, w)
	time.Sleep(50 * time.Millisecond)
	require.ErrorIs(t, w.Run(testCtx(t)), ErrWorkerRunning)
	require.NoError(t, stop())
}

// TestWorkerRidesOutServerErrors: the subscription's GET at start and the
// claims fail with 503 more often than the Client's own retries cover; the
// Worker waits on its schedule and works the messages once the server
// answers again. A bounded WithRetry makes Run give up with the error.
func TestWorkerRidesOutServerErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createJSON(t, "ro/a")
	s := e.pullWake(t, "ro/*", 0)
	tails := e.fill(t, []string{"ro/a"}, 3)
	fast := durable.RetryPolicy{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond, Multiplier: 2}
	e.srv.InjectFault(testserver.Fault{Path: "__ds/subscriptions/" + s.ID(), Method: http.MethodGet, Status: http.StatusServiceUnavailable, Count: 8})
	e.srv.InjectFault(testserver.Fault{Path: "__ds/subscriptions/" + s.ID() + "/claim", Method: http.MethodPost, Status: http.StatusServiceUnavailable, Count: 8})
	rec := newRecorder()
	twice := fast
	twice.MaxAttempts = 2 // the Client gives up after two attempts: the Worker's schedule goes on
	c, err := durable.NewClient(e.srv.URL()+"/v1/stream/", durable.WithRetry(twice))
	require.NoError(t, err)
	w, err := NewWorker(c, s.ID(), func(ctx context.Context, m Message[item]) error { rec.add(m); return nil }, WithRetry(fast))
	require.NoError(t, err)
	stop := runWorker(t, w)
	waitAcked(t, s, tails)
	require.NoError(t, stop())
	assert.Len(t, rec.seen["ro/a"], 3)

	e.srv.InjectFault(testserver.Fault{Path: "__ds/subscriptions/" + s.ID(), Method: http.MethodGet, Status: http.StatusServiceUnavailable, Count: 100})
	bounded := fast
	bounded.MaxAttempts = 2
	w, err = NewWorker(c, s.ID(), func(ctx context.Context, m Message[item]) error { return nil }, WithRetry(bounded))
	require.NoError(t, err)
	err = w.Run(testCtx(t))
	require.ErrorIs(t, err, durable.ErrServer)
	e.srv.ClearFaults()
}

// TestWorkerPollsWithoutWakeEvents: a subscription whose wake stream does
// not exist gets no wake events (as from a server that drops them); the
// Worker claims on its poll interval all the same.
func TestWorkerPollsWithoutWakeEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createJSON(t, "pw/a")
	s, err := Open(e.c, name("poll"))
	require.NoError(t, err)
	_, _, err = s.Create(testCtx(t), Config{Type: PullWake, Pattern: "pw/*", WakeStream: "wake/never-created"})
	require.NoError(t, err)
	rec := newRecorder()
	w, err := NewWorker(e.c, s.ID(), func(ctx context.Context, m Message[item]) error { rec.add(m); return nil },
		WithPollInterval(100*time.Millisecond))
	require.NoError(t, err)
	stop := runWorker(t, w)
	time.Sleep(300 * time.Millisecond) // the first claims find nothing
	tails := e.fill(t, []string{"pw/a"}, 5)
	waitAcked(t, s, tails)
	require.NoError(t, stop())
	assert.Len(t, rec.seen["pw/a"], 5)
}

// TestWorkerWithoutWakeStream: WithoutWakeStream never reads the wake
// stream and works by polling.
func TestWorkerWithoutWakeStream(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createJSON(t, "nw/a")
	s := e.pullWake(t, "nw/*", 0)
	info, err := s.Get(testCtx(t))
	require.NoError(t, err)
	rec := newRecorder()
	w, err := NewWorker(e.c, s.ID(), func(ctx context.Context, m Message[item]) error { rec.add(m); return nil },
		WithoutWakeStream(), WithPollInterval(50*time.Millisecond))
	require.NoError(t, err)
	stop := runWorker(t, w)
	tails := e.fill(t, []string{"nw/a"}, 4)
	waitAcked(t, s, tails)
	require.NoError(t, stop())
	assert.Len(t, rec.seen["nw/a"], 4)
	assert.Zero(t, e.srv.Requests(info.WakeStream, http.MethodGet), "the wake stream was never read")
}
