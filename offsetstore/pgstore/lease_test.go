package pgstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable/offsetstore"
)

// eventLog collects lease events.
type eventLog struct {
	mu sync.Mutex
	ev []LeaseEvent
}

func (l *eventLog) add(e LeaseEvent) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }
func (l *eventLog) kinds() []LeaseEventKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var k []LeaseEventKind
	for _, e := range l.ev {
		k = append(k, e.Kind)
	}
	return k
}

func TestLeaseExclusiveAndTokensGrow(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	var log eventLog
	a, err := s.AcquireLease(ctx, "k", WithLeaseTTL(2*time.Second), WithHolder("a"), WithLeaseEvents(log.add))
	require.NoError(t, err)
	assert.True(t, a.Held())
	assert.NoError(t, a.Err())
	assert.Equal(t, int64(1), a.Token())

	b, err := s.TryAcquireLease(ctx, "k", WithHolder("b"))
	require.NoError(t, err)
	assert.True(t, b == nil, "a second holder while the first holds the lease")

	// A waiter takes over as soon as a releases.
	got := make(chan *Lease, 1)
	go func() {
		l, err := s.AcquireLease(ctx, "k", WithHolder("b"), WithLeaseTTL(time.Second), WithLeasePoll(10*time.Millisecond))
		assert.NoError(t, err)
		got <- l
	}()
	require.NoError(t, a.Release(ctx))
	assert.False(t, a.Held())
	assert.ErrorIs(t, a.Err(), ErrLeaseLost)
	<-a.Context().Done()
	b = <-got
	require.NotNil(t, b)
	assert.Equal(t, int64(2), b.Token())
	require.NoError(t, b.Release(ctx))
	require.NoError(t, b.Release(ctx), "Release twice")
	assert.Equal(t, []LeaseEventKind{LeaseAcquired, LeaseReleased}, log.kinds())

	// Other keys are independent.
	c, err := s.TryAcquireLease(ctx, "other")
	require.NoError(t, err)
	require.NotNil(t, c)
	assert.Equal(t, int64(1), c.Token())
	require.NoError(t, c.Release(ctx))
}

func TestLeaseRenewedPastTTL(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	l, err := s.AcquireLease(ctx, "k", WithLeaseTTL(time.Second))
	require.NoError(t, err)
	defer l.Release(ctx)
	// Wait 2.5 TTLs on the database's clock: renewals keep it.
	_, err = s.Pool().Exec(ctx, `SELECT pg_sleep(2.5)`)
	require.NoError(t, err)
	assert.True(t, l.Held())
	other, err := s.TryAcquireLease(ctx, "k")
	require.NoError(t, err)
	assert.True(t, other == nil, "another replica took a renewed lease")
}

// stealLease makes the lease row look taken over by someone else.
func stealLease(t *testing.T, s *Store, key string) {
	t.Helper()
	_, err := s.Pool().Exec(context.Background(), `UPDATE `+s.t.leases+` SET token = token + 1, holder = 'thief', expires_at = clock_timestamp() + interval '1 hour' WHERE key = $1`, key)
	require.NoError(t, err)
}

func TestLeaseLostWhenTakenOver(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	var log eventLog
	l, err := s.AcquireLease(ctx, "k", WithLeaseTTL(300*time.Millisecond), WithLeaseEvents(log.add))
	require.NoError(t, err)
	defer l.Release(ctx)
	stealLease(t, s, "k")
	select {
	case <-l.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("lease not found lost")
	}
	assert.ErrorIs(t, context.Cause(l.Context()), ErrLeaseLost)
	assert.False(t, l.Held())
	// The context is cancelled first (to stop the work at once), the event
	// follows from the renewing goroutine, which Release waits for; a
	// Release after the loss adds no event.
	require.NoError(t, l.Release(ctx))
	assert.Equal(t, []LeaseEventKind{LeaseAcquired, LeaseLost}, log.kinds())

	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	err = l.CommitTx(ctx, tx, offsetstore.Position{Offset: "1"})
	assert.ErrorIs(t, err, ErrFenced)
	assert.ErrorIs(t, l.Store().Save(ctx, "k", offsetstore.Position{Offset: "1"}), ErrFenced)
}

// A deposed holder that does not know yet (its local TTL has not run out)
// is still fenced off by the database.
func TestFencedCommitRejectedByDatabase(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	l, err := s.AcquireLease(ctx, "k", WithLeaseTTL(time.Hour))
	require.NoError(t, err)
	defer l.Release(ctx)

	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, l.CommitTx(ctx, tx, offsetstore.Position{Offset: "0001"}))
	require.NoError(t, tx.Commit(ctx))

	stealLease(t, s, "k")
	assert.True(t, l.Held(), "the holder has not noticed yet")
	tx, err = s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `CREATE TABLE `+pgx.Identifier{s.t.schemaName, "side"}.Sanitize()+` (v int)`)
	require.NoError(t, err)
	err = l.CommitTx(ctx, tx, offsetstore.Position{Offset: "0002"})
	require.ErrorIs(t, err, ErrFenced)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "commit", pe.Op)
	assert.Contains(t, err.Error(), "taken over")
	assert.ErrorIs(t, l.Store().Save(ctx, "k", offsetstore.Position{Offset: "0002"}), ErrFenced)

	pos, _, err := s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "0001", pos.Offset)
}

// A takeover waits for a fenced commit that checked the lease: the lease
// row stays locked until the transaction ends, so the new holder sees
// the position written under the old token.
func TestTakeoverWaitsForFencedCommit(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	l, err := s.AcquireLease(ctx, "k", WithLeaseTTL(time.Hour))
	require.NoError(t, err)
	defer l.Release(ctx)

	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx)
	require.NoError(t, l.CommitTx(ctx, tx, offsetstore.Position{Offset: "0007"}))

	// Another session expires the lease (as the database's clock would).
	conn, err := s.Pool().Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	var pid int
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	expired := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, `UPDATE `+s.t.leases+` SET expires_at = clock_timestamp() WHERE key = 'k'`)
		expired <- err
	}()
	// It waits on the lock held by the commit's transaction.
	require.Eventually(t, func() bool {
		var waiting bool
		err := s.Pool().QueryRow(ctx, `SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&waiting)
		return err == nil && waiting
	}, 10*time.Second, 5*time.Millisecond)
	select {
	case err := <-expired:
		t.Fatalf("the expiry did not wait for the commit: %v", err)
	default:
	}
	require.NoError(t, tx.Commit(ctx))
	require.NoError(t, <-expired)

	b, err := s.TryAcquireLease(ctx, "k")
	require.NoError(t, err)
	require.NotNil(t, b)
	defer b.Release(ctx)
	assert.Equal(t, int64(2), b.Token())
	pos, _, err := s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "0007", pos.Offset)
}

func TestCommitTxStrict(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	commit := func(p offsetstore.Position) error {
		return pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error { return s.CommitTx(ctx, tx, "k", p) })
	}
	require.NoError(t, commit(offsetstore.Position{Offset: "0001", Skip: 1}))
	for _, p := range []offsetstore.Position{{Offset: "0001", Skip: 1}, {Offset: "0001"}, {Offset: "-1", Skip: 5}} {
		err := commit(p)
		assert.ErrorIs(t, err, ErrAlreadyCommitted, "%+v", p)
		assert.False(t, IsTransient(err))
	}
	require.NoError(t, commit(offsetstore.Position{Offset: "0001", Skip: 2}))

	// A rolled-back transaction leaves the position where it was.
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, s.CommitTx(ctx, tx, "k", offsetstore.Position{Offset: "0002"}))
	pos, _, err := s.LoadTx(ctx, tx, "k")
	require.NoError(t, err)
	assert.Equal(t, "0002", pos.Offset, "visible inside the transaction")
	require.NoError(t, tx.Rollback(ctx))
	pos, _, err = s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, offsetstore.Position{Offset: "0001", Skip: 2}, pos)
}

func TestLeaseOptionsValidated(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	for name, opts := range map[string][]LeaseOption{
		"short TTL":     {WithLeaseTTL(time.Millisecond)},
		"negative poll": {WithLeasePoll(-1)},
		"empty holder":  {WithHolder("")},
		"nil option":    {nil},
	} {
		_, err := s.AcquireLease(ctx, "k", opts...)
		assert.ErrorIs(t, err, offsetstore.ErrInvalid, name)
	}
	_, err := s.TryAcquireLease(ctx, "")
	assert.ErrorIs(t, err, offsetstore.ErrInvalid)

	cctx, cancel := context.WithCancel(ctx)
	l, err := s.AcquireLease(ctx, "k")
	require.NoError(t, err)
	defer l.Release(ctx)
	go cancel()
	_, err = s.AcquireLease(cctx, "k")
	assert.True(t, errors.Is(err, context.Canceled), "%v", err)
}

func TestLeaseReleaseConcurrent(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	var log eventLog
	l, err := s.AcquireLease(ctx, "k", WithLeaseEvents(log.add))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { assert.NoError(t, l.Release(ctx)) })
	}
	wg.Wait()
	assert.Equal(t, []LeaseEventKind{LeaseAcquired, LeaseReleased}, log.kinds())
	assert.Equal(t, "released", LeaseReleased.String())
}

// A loss noticed late (a commit that found the TTL run out before the
// renewing goroutine did) is reported at the end of the TTL, never
// later: the holder stopped acting on the lease then, and a log of
// tenures must not show it overlapping its successor's.
func TestLeaseLostReportedNoLaterThanTTL(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	var log eventLog
	l, err := s.AcquireLease(ctx, "k", WithLeaseTTL(time.Hour), WithLeaseEvents(log.add))
	require.NoError(t, err)
	acquired := time.Now()
	l.lose(acquired.Add(2*time.Hour), errors.New("noticed late"))
	require.NoError(t, l.Release(ctx))
	require.Equal(t, []LeaseEventKind{LeaseAcquired, LeaseLost}, log.kinds())
	at := log.ev[1].Time
	assert.False(t, at.After(acquired.Add(time.Hour)), "lost at %v, after the TTL", at)
	assert.True(t, at.After(acquired.Add(59*time.Minute)), "lost at %v, before the TTL ran out", at)
}
