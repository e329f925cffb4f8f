package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

type item struct {
	N int `json:"n"`
}

// newStream starts a testserver with a JSON stream holding items 1..n,
// closed when closed is true.
func newStream(t testing.TB, n int, closed bool) (*durable.Client, string) {
	t.Helper()
	srv := testserver.New()
	t.Cleanup(srv.Close)
	c, err := durable.NewClient(srv.StreamURL(""))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.Create(ctx, "items", durable.CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	w, err := durable.NewWriter(c, "items", durable.JSONCodec[item]{})
	require.NoError(t, err)
	for i := 1; i <= n; i++ {
		require.NoError(t, w.Write(ctx, item{N: i}))
	}
	require.NoError(t, w.Close(ctx))
	if closed {
		_, err = c.CloseStream(ctx, "items", nil, durable.AppendOptions{})
		require.NoError(t, err)
	}
	return c, "items"
}

// sinkTable creates the table handlers insert into (no unique constraint:
// a duplicate would show).
func sinkTable(t testing.TB, s *Store) string {
	t.Helper()
	name := pgx.Identifier{s.t.schemaName, "sink"}.Sanitize()
	_, err := s.Pool().Exec(context.Background(), `CREATE TABLE `+name+` (n int NOT NULL, token bigint NOT NULL DEFAULT 0)`)
	require.NoError(t, err)
	return name
}

// sinkCounts returns how many rows each n has.
func sinkCounts(t *testing.T, s *Store, table string) map[int]int {
	t.Helper()
	rows, err := s.Pool().Query(context.Background(), `SELECT n, count(*) FROM `+table+` GROUP BY n`)
	require.NoError(t, err)
	m, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]int, error) {
		var a [2]int
		return a, r.Scan(&a[0], &a[1])
	})
	require.NoError(t, err)
	out := map[int]int{}
	for _, a := range m {
		out[a[0]] = a[1]
	}
	return out
}

func assertExactlyOnce(t *testing.T, counts map[int]int, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		assert.Equal(t, 1, counts[i], "item %d", i)
	}
	assert.Len(t, counts, n)
}

func insertItem(table string) Handler[item] {
	return func(ctx context.Context, tx pgx.Tx, msg durable.Message[item]) error {
		_, err := tx.Exec(ctx, `INSERT INTO `+table+` (n) VALUES ($1)`, msg.Value.N)
		return err
	}
}

func TestConsumerRollbackDeliversAgain(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	client, stream := newStream(t, 30, true)
	table := sinkTable(t, s)
	ctx := context.Background()

	c, err := NewConsumer[item](s, client, stream, "sink")
	require.NoError(t, err)
	fail := map[int]int{3: 1, 10: 2, 30: 1} // item -> failures before it succeeds
	var seen []int
	h := func(ctx context.Context, tx pgx.Tx, msg durable.Message[item]) error {
		seen = append(seen, msg.Value.N)
		if err := insertItem(table)(ctx, tx, msg); err != nil {
			return err
		}
		if fail[msg.Value.N] > 0 {
			fail[msg.Value.N]--
			return fmt.Errorf("handler failed on %d", msg.Value.N)
		}
		return nil
	}
	handled := 0
	for {
		err := c.Handle(ctx, h)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			assert.ErrorContains(t, err, "handler failed")
			continue
		}
		handled++
		// Stop half way, as a crash would, and go on with a new Consumer.
		if handled == 15 {
			require.NoError(t, c.Close(ctx))
			c, err = NewConsumer[item](s, client, stream, "sink")
			require.NoError(t, err)
		}
	}
	require.NoError(t, c.Close(ctx))
	assert.Equal(t, 30, handled)
	assert.Len(t, seen, 34, "each failure delivers its message again: %v", seen)
	assertExactlyOnce(t, sinkCounts(t, s, table), 30)
	pos, ok := c.Committed()
	require.True(t, ok)
	saved, _, err := s.Load(ctx, "sink")
	require.NoError(t, err)
	assert.Equal(t, saved, pos)
}

// A crash after the transaction committed but before the Reader heard of it
// (or a commit whose acknowledgement was lost) does not apply the message
// twice: the next delivery finds it committed and rolls back.
func TestConsumerCommittedButNotAcknowledged(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	client, stream := newStream(t, 5, true)
	table := sinkTable(t, s)
	ctx := context.Background()

	// Commit items 1..3 in the table as a consumer would, by hand, without
	// any Reader knowing.
	r, err := durable.NewReader(client, stream, durable.JSONCodec[item]{}, durable.WithManualCommit())
	require.NoError(t, err)
	for range 3 {
		msg, err := r.Next(ctx)
		require.NoError(t, err)
		require.NoError(t, pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
			if err := insertItem(table)(ctx, tx, msg); err != nil {
				return err
			}
			return s.CommitTx(ctx, tx, "sink", msg.Position)
		}))
	}
	require.NoError(t, r.Close(context.Background()))

	c, err := NewConsumer[item](s, client, stream, "sink")
	require.NoError(t, err)
	defer c.Close(ctx)
	require.NoError(t, c.Run(ctx, insertItem(table)))
	assertExactlyOnce(t, sinkCounts(t, s, table), 5)
}

func TestConsumerExclusiveHandsOver(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	const n = 200
	client, stream := newStream(t, n, true)
	table := sinkTable(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var mu sync.Mutex
	var events []LeaseEvent
	logEvent := func(e LeaseEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }
	var wg sync.WaitGroup
	var total sync.Map
	for i := range 3 {
		wg.Go(func() {
			c, err := NewConsumer[item](s, client, stream, "sink",
				WithExclusive(WithLeaseTTL(2*time.Second), WithLeasePoll(10*time.Millisecond),
					WithHolder(fmt.Sprint("replica-", i)), WithLeaseEvents(logEvent)))
			if !assert.NoError(t, err) {
				return
			}
			// Each replica hands over after a few messages, until the end.
			for {
				handled := 0
				for handled < 7 {
					err := c.Handle(ctx, func(ctx context.Context, tx pgx.Tx, msg durable.Message[item]) error {
						_, err := tx.Exec(ctx, `INSERT INTO `+table+` (n, token) VALUES ($1, $2)`, msg.Value.N, c.Lease().Token())
						return err
					})
					if errors.Is(err, io.EOF) {
						total.Store(i, true)
						assert.NoError(t, c.Close(ctx))
						return
					}
					if errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrFenced) {
						continue // a renewal late under load: wait for the lease again
					}
					if !assert.NoError(t, err) {
						return
					}
					handled++
				}
				if !assert.NoError(t, c.Close(ctx)) {
					return
				}
				c, err = NewConsumer[item](s, client, stream, "sink",
					WithExclusive(WithLeaseTTL(2*time.Second), WithLeasePoll(10*time.Millisecond),
						WithHolder(fmt.Sprint("replica-", i)), WithLeaseEvents(logEvent)))
				if !assert.NoError(t, err) {
					return
				}
			}
		})
	}
	wg.Wait()
	assertExactlyOnce(t, sinkCounts(t, s, table), n)

	// Tokens in the table never go down in stream order, and each lease's
	// tenure is over before the next one starts.
	rows, err := s.Pool().Query(ctx, `SELECT token FROM `+table+` ORDER BY n`)
	require.NoError(t, err)
	tokens, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	for i := 1; i < len(tokens); i++ {
		assert.LessOrEqual(t, tokens[i-1], tokens[i], "row %d", i)
	}
	assertNoOverlap(t, events)
	assert.Greater(t, tokens[len(tokens)-1], int64(n/7/2), "the lease changed hands")
}

// assertNoOverlap checks a lease log: each token's tenure (from its
// acquisition to its release or loss, by the events' times) ends before the
// next token's begins.
func assertNoOverlap(t *testing.T, events []LeaseEvent) {
	t.Helper()
	start, end := map[int64]time.Time{}, map[int64]time.Time{}
	var maxToken int64
	for _, e := range events {
		switch e.Kind {
		case LeaseAcquired:
			assert.NotContains(t, start, e.Token, "token %d acquired twice", e.Token)
			start[e.Token] = e.Time
			maxToken = max(maxToken, e.Token)
		case LeaseLost, LeaseReleased:
			end[e.Token] = e.Time
		}
	}
	for tok := int64(1); tok < maxToken; tok++ {
		next, ok := start[tok+1]
		if !assert.True(t, ok, "token %d never acquired", tok+1) {
			continue
		}
		stop, ok := end[tok]
		if assert.True(t, ok, "token %d never ended", tok) {
			assert.False(t, next.Before(stop), "token %d acquired at %v, before token %d ended at %v", tok+1, next, tok, stop)
		}
	}
}

// The moment the lease is lost, the handler's context is cancelled, its
// transaction rolls back, and the message goes to the next holder.
func TestConsumerStopsWhenLeaseLost(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	client, stream := newStream(t, 3, true)
	table := sinkTable(t, s)
	ctx := context.Background()

	c, err := NewConsumer[item](s, client, stream, "sink", WithExclusive(WithLeaseTTL(2*time.Second)))
	require.NoError(t, err)
	defer c.Close(ctx)
	require.NoError(t, c.Handle(ctx, insertItem(table)))

	err = c.Handle(ctx, func(ctx context.Context, tx pgx.Tx, msg durable.Message[item]) error {
		if err := insertItem(table)(ctx, tx, msg); err != nil {
			return err
		}
		stealLease(t, s, "sink")
		<-ctx.Done() // the renewal finds the lease taken
		return ctx.Err()
	})
	require.ErrorIs(t, err, ErrLeaseLost)
	assert.True(t, c.Lease() == nil, "the lost lease is dropped")
	assertExactlyOnce(t, sinkCounts(t, s, table), 1)

	// The thief's lease expires; this Consumer takes over again and goes on
	// from the table's position.
	_, err = s.Pool().Exec(ctx, `UPDATE `+s.t.leases+` SET expires_at = clock_timestamp()`)
	require.NoError(t, err)
	require.NoError(t, c.Run(ctx, insertItem(table)))
	assert.Equal(t, int64(3), c.Lease().Token())
	assertExactlyOnce(t, sinkCounts(t, s, table), 3)
}

// A deposed holder whose commit reaches the database first learns of it
// there: ErrFenced, nothing applied.
func TestConsumerFencedByDatabase(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	client, stream := newStream(t, 2, true)
	table := sinkTable(t, s)
	ctx := context.Background()
	c, err := NewConsumer[item](s, client, stream, "sink", WithExclusive(WithLeaseTTL(time.Hour)))
	require.NoError(t, err)
	defer c.Close(ctx)
	err = c.Handle(ctx, func(ctx context.Context, tx pgx.Tx, msg durable.Message[item]) error {
		stealLease(t, s, "sink")
		return insertItem(table)(ctx, tx, msg)
	})
	require.ErrorIs(t, err, ErrFenced)
	assert.Empty(t, sinkCounts(t, s, table))
	_, ok, err := s.Load(ctx, "sink")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestNewConsumerValidates(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	client, stream := newStream(t, 0, false)
	for name, f := range map[string]func() error{
		"nil store":  func() error { _, err := NewConsumer[item](nil, client, stream, "k"); return err },
		"nil client": func() error { _, err := NewConsumer[item](s, nil, stream, "k"); return err },
		"empty key":  func() error { _, err := NewConsumer[item](s, client, stream, ""); return err },
		"nil option": func() error { _, err := NewConsumer[item](s, client, stream, "k", nil); return err },
		"bad lease": func() error {
			_, err := NewConsumer[item](s, client, stream, "k", WithExclusive(WithLeaseTTL(time.Nanosecond)))
			return err
		},
	} {
		assert.Error(t, f(), name)
	}
	_, err := NewConsumer[item](s, client, stream, "k", WithReaderOptions(durable.WithMaxResponseBytes(-1)))
	assert.ErrorIs(t, err, durable.ErrInvalidArgument)
}

// A message that does not decode ends Run with its DecodeError; the next
// Run passes over it.
func TestConsumerDecodeError(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	srv := testserver.New()
	t.Cleanup(srv.Close)
	client, err := durable.NewClient(srv.StreamURL(""))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = client.Create(ctx, "items", durable.CreateOptions{ContentType: "application/json",
		Data: []byte(`[{"n":1},"not an item",{"n":3}]`), Closed: true})
	require.NoError(t, err)
	table := sinkTable(t, s)
	c, err := NewConsumer[item](s, client, "items", "sink")
	require.NoError(t, err)
	defer c.Close(ctx)
	err = c.Run(ctx, insertItem(table))
	var de *durable.DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, map[int]int{1: 1}, sinkCounts(t, s, table))
	require.NoError(t, c.Run(ctx, insertItem(table)))
	assert.Equal(t, map[int]int{1: 1, 3: 1}, sinkCounts(t, s, table))
}

// A lease lost while the commit waits (here on a lock another session
// holds on the lease row, which also keeps the renewals from getting
// through until the TTL runs out) ends Handle with the lease's error, not
// with the cancelled query's: Run waits for the lease again rather than
// giving up. Nothing of the message is applied, and the next holder
// delivers it again.
func TestConsumerLeaseLostDuringCommit(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	client, stream := newStream(t, 3, true)
	table := sinkTable(t, s)
	ctx := context.Background()
	var log eventLog
	c, err := NewConsumer[item](s, client, stream, "sink", WithExclusive(WithLeaseTTL(time.Second), WithLeaseEvents(log.add)))
	require.NoError(t, err)
	defer c.Close(ctx)

	var lock pgx.Tx
	err = c.Handle(ctx, func(ctx context.Context, tx pgx.Tx, msg durable.Message[item]) error {
		var err error
		lock, err = s.Pool().Begin(ctx)
		if err != nil {
			return err
		}
		if _, err := lock.Exec(ctx, `SELECT 1 FROM `+s.t.leases+` WHERE key = 'sink' FOR UPDATE`); err != nil {
			return err
		}
		return insertItem(table)(ctx, tx, msg)
	})
	require.NotNil(t, lock)
	require.NoError(t, lock.Rollback(ctx))
	require.ErrorIs(t, err, ErrLeaseLost)
	assert.True(t, c.Lease() == nil, "the lost lease is dropped")
	assert.Empty(t, sinkCounts(t, s, table))
	_, ok, err := s.Load(ctx, "sink")
	require.NoError(t, err)
	assert.False(t, ok, "no position committed")

	require.NoError(t, c.Run(ctx, insertItem(table)))
	assertExactlyOnce(t, sinkCounts(t, s, table), 3)
	assert.GreaterOrEqual(t, c.Lease().Token(), int64(2))
	require.GreaterOrEqual(t, len(log.kinds()), 3)
	assert.Equal(t, []LeaseEventKind{LeaseAcquired, LeaseLost, LeaseAcquired}, log.kinds()[:3])
}
