package subscription

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

// fakeClock is a settable clock for testserver.WithClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestClaimAckRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	e.createJSON(t, "jobs/a", "jobs/b")
	s := e.pullWake(t, "jobs/*", 0)

	_, err := s.Claim(ctx, "w1")
	require.ErrorIs(t, err, ErrNoPendingWork)

	tailA := e.appendJSON(t, "jobs/a", 1)
	w, err := s.Claim(ctx, "w1")
	require.NoError(t, err)
	assert.Equal(t, s.ID(), w.Subscription)
	assert.NotEmpty(t, w.ID)
	assert.Positive(t, w.Generation)
	assert.False(t, w.Token.IsZero())
	assert.Equal(t, 30*time.Second, w.LeaseTTL)
	require.Len(t, w.Pending(), 1)
	assert.Equal(t, "jobs/a", w.Pending()[0].Path)
	assert.Equal(t, tailA, w.Pending()[0].Tail)

	_, err = s.Claim(ctx, "w2")
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, ErrAlreadyClaimed)
	assert.Equal(t, "w1", se.Holder)
	assert.Equal(t, w.Generation, se.Generation)

	require.NoError(t, s.Heartbeat(ctx, w))
	next, err := s.Ack(ctx, w, false, Ack{Stream: "jobs/a", Offset: tailA})
	require.NoError(t, err)
	assert.False(t, next)
	info, err := s.Get(ctx)
	require.NoError(t, err)
	a, _ := info.Link("jobs/a")
	assert.Equal(t, tailA, a.Acked)

	// An offset beyond the tail is refused, and nothing of the request is applied.
	_, err = s.Ack(ctx, w, false, Ack{Stream: "jobs/b", Offset: tailA + "x"})
	require.ErrorIs(t, err, ErrInvalidOffset)
	_, err = s.Ack(ctx, w, false, Ack{Stream: "not/linked", Offset: tailA})
	require.ErrorIs(t, err, ErrInvalidOffset)

	e.appendJSON(t, "jobs/b", 2)
	next, err = s.Ack(ctx, w, true)
	require.NoError(t, err)
	assert.True(t, next, "jobs/b is pending: the next wake is issued at once")

	// The old wake is fenced now.
	_, err = s.Ack(ctx, w, false)
	require.ErrorIs(t, err, ErrFenced)
	assert.True(t, IsLost(err))
	require.ErrorIs(t, s.Release(ctx, w), ErrFenced)

	w2, err := s.Claim(ctx, "w2")
	require.NoError(t, err)
	assert.Greater(t, w2.Generation, w.Generation)
	require.NoError(t, s.Release(ctx, w2))
	w3, err := s.Claim(ctx, "w3")
	require.NoError(t, err, "released with pending work: claimable again")
	assert.Greater(t, w3.Generation, w2.Generation)

	// A token of another wake is refused.
	forged := *w3
	forged.Token = w.Token
	_, err = s.Ack(ctx, &forged, false)
	require.Error(t, err)
	assert.True(t, IsLost(err), "%v", err)

	// Wakes of another subscription, without a token, or nil: refused before sending.
	other := *w3
	other.Subscription = "other"
	_, err = s.Ack(ctx, &other, true)
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
	_, err = s.Ack(ctx, &Wake{Subscription: s.ID()}, true)
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
	require.ErrorIs(t, s.Release(ctx, nil), durable.ErrInvalidArgument)
	_, err = s.Claim(ctx, "")
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
}

// TestLeaseExpiryFences: a lease that runs out without a heartbeat is
// taken over, and the old holder's late ack is ErrFenced and applies
// nothing.
func TestLeaseExpiryFences(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newEnv(t, testserver.WithClock(clk.Now))
	ctx := testCtx(t)
	e.createJSON(t, "q/a")
	s := e.pullWake(t, "q/*", 2*time.Second)
	tail := e.appendJSON(t, "q/a", "x")

	w1, err := s.Claim(ctx, "w1")
	require.NoError(t, err)
	clk.Add(time.Second)
	require.NoError(t, s.Heartbeat(ctx, w1), "renews for another 2 s")
	clk.Add(1500 * time.Millisecond)
	e.srv.RunTimers()
	_, err = s.Claim(ctx, "w2")
	require.ErrorIs(t, err, ErrAlreadyClaimed, "the heartbeat kept the lease")

	clk.Add(time.Second)
	e.srv.RunTimers()
	w2, err := s.Claim(ctx, "w2")
	require.NoError(t, err, "lease expired: taken over")
	assert.Greater(t, w2.Generation, w1.Generation)

	_, err = s.Ack(ctx, w1, true, Ack{Stream: "q/a", Offset: tail})
	var se *Error
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, ErrFenced)
	assert.Equal(t, "ack", se.Op)
	info, err := s.Get(ctx)
	require.NoError(t, err)
	l, _ := info.Link("q/a")
	assert.NotEqual(t, tail, l.Acked, "a fenced ack applies nothing")
}
