package subscription

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

// hookLog records the Client's hook events.
type hookLog struct {
	mu       sync.Mutex
	requests []durable.RequestEvent
	commits  []durable.CommitEvent
	reads    int
}

func (h *hookLog) OnRequest(ev durable.RequestEvent) {
	h.mu.Lock()
	h.requests = append(h.requests, ev)
	h.mu.Unlock()
}
func (h *hookLog) OnCommit(ev durable.CommitEvent) {
	h.mu.Lock()
	h.commits = append(h.commits, ev)
	h.mu.Unlock()
}
func (h *hookLog) OnRead(durable.ReadEvent) { h.mu.Lock(); h.reads++; h.mu.Unlock() }

// TestWorkerHooks: a Worker's requests, its Readers' reads and its acks
// (as commits, refused ones with their error) reach the Client's hooks; the
// token appears in none of them.
func TestWorkerHooks(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: time.Now()}
	srv := testserver.New(testserver.WithSubscriptions(true), testserver.WithClock(clk.Now))
	t.Cleanup(srv.Close)
	hooks := &hookLog{}
	c, err := durable.NewClient(srv.URL()+"/v1/stream/", durable.WithHooks(hooks))
	require.NoError(t, err)
	e := &env{srv: srv, c: c}
	e.createJSON(t, "hk/a")
	s := e.pullWake(t, "hk/*", 2*time.Second)
	tails := e.fill(t, []string{"hk/a"}, 3)
	w, err := NewWorker(c, s.ID(), func(ctx context.Context, m Message[item]) error { return nil }, WithAckInterval(0))
	require.NoError(t, err)
	stop := runWorker(t, w)
	waitAcked(t, s, tails)
	require.NoError(t, stop())

	// A fenced ack is a refused commit.
	e.appendJSON(t, "hk/a", item{Seq: 4})
	wake, err := s.Claim(testCtx(t), "low-level")
	require.NoError(t, err)
	clk.Add(3 * time.Second)
	srv.RunTimers()
	_, err = s.Claim(testCtx(t), "other")
	require.NoError(t, err)
	k := newKeeper(testCtx(t), s, wake, 2*time.Second, 0, nopObserver{}, time.Now())
	_, err = k.send(testCtx(t), false, []Ack{{Stream: "hk/a", Offset: tails["hk/a"]}})
	require.ErrorIs(t, err, ErrFenced)

	hooks.mu.Lock()
	defer hooks.mu.Unlock()
	ops := map[string]int{}
	for _, r := range hooks.requests {
		ops[r.Op]++
		assert.NotContains(t, r.Stream, wake.Token.Reveal())
	}
	assert.Positive(t, ops["subscription claim"], "%v", ops)
	assert.Positive(t, ops["subscription ack"], "%v", ops)
	assert.Positive(t, ops["subscription get"], "%v", ops)
	assert.Positive(t, hooks.reads, "the Worker's Readers report their reads")
	require.NotEmpty(t, hooks.commits)
	var good *durable.CommitEvent
	for i := range hooks.commits { // a loaded machine may time an early ack out: the first that landed
		if hooks.commits[i].Err == nil {
			good = &hooks.commits[i]
			break
		}
	}
	require.NotNil(t, good, "no ack landed: %+v", hooks.commits)
	assert.True(t, strings.HasSuffix(good.Stream, "/v1/stream/hk/a"), good.Stream)
	assert.Equal(t, s.ID(), good.Key)
	assert.Positive(t, good.Latency)
	last := hooks.commits[len(hooks.commits)-1]
	assert.ErrorIs(t, last.Err, ErrFenced)
	assert.Equal(t, string(tails["hk/a"]), last.Position.Offset)
}
