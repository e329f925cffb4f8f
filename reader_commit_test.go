package durable

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// blockingStore is a store whose Save blocks until release is closed
// (entered is closed when the first Save starts).
type blockingStore struct {
	Store
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	freed   sync.Once
}

// free lets every Save through.
func (s *blockingStore) free() { s.freed.Do(func() { close(s.release) }) }

func newBlockingStore() *blockingStore {
	return &blockingStore{Store: newMemStore(), entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *blockingStore) Save(ctx context.Context, key string, pos Position) error {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Save(ctx, key, pos)
}

// TestReaderNextDuringSlowSave: a Commit whose store Save is slow does
// not hold up Next on a message already buffered (the Reader's lock is not
// held across the store's I/O), in manual and interval commit modes.
func TestReaderNextDuringSlowSave(t *testing.T) {
	t.Parallel()
	for name, mode := range map[string]Option{"manual": WithManualCommit(), "interval": WithCommitInterval(time.Nanosecond)} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, c, _ := newEventStream(t, 3)
			st := newBlockingStore()
			defer st.free()
			r := openReader[event](t, c, "s", WithStore(st), mode)
			ctx := ctxT(t, 10*time.Second)
			m, err := r.Next(ctx)
			require.NoError(t, err)
			committed := make(chan error, 1)
			go func() { committed <- r.Commit(ctx, m.Position) }()
			<-st.entered
			got := make(chan error, 1)
			go func() { _, err := r.Next(ctx); got <- err }()
			select {
			case err := <-got:
				require.NoError(t, err)
			case <-committed:
				t.Fatal("the Save returned before it was released")
			case <-time.After(5 * time.Second):
				t.Fatal("Next on a buffered message waited for the store's Save")
			}
			st.free()
			require.NoError(t, <-committed)
		})
	}
}

// TestReaderCloseBounded: Close saves the handled position within ctx: a
// store that never answers makes Close return ctx's error, not hang.
func TestReaderCloseBounded(t *testing.T) {
	t.Parallel()
	_, c, _ := newEventStream(t, 3)
	st := newBlockingStore()
	r, err := NewReader(c, "s", JSONCodec[event]{}, WithStore(st), WithCommitInterval(time.Hour))
	require.NoError(t, err)
	ctx := ctxT(t, 10*time.Second)
	_, err = r.Next(ctx)
	require.NoError(t, err)
	_, err = r.Next(ctx) // the first message is handled now
	require.NoError(t, err)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = r.Close(cctx)
	require.ErrorIs(t, err, ErrCommit)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, r.Close(ctx), "a second Close does nothing")
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, ErrClosed)
}

func TestReaderCommit(t *testing.T) {
	t.Parallel()
	_, c, _ := newEventStream(t, 3)
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
	_, c, end := newEventStream(t, 3)
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
	nextEvent(t, ctx, r, 3)
	nextEvent(t, ctx, r, 4)
	require.NoError(t, r.Close(context.Background()))
	saved, _, _ = store.Load(ctx, "k")
	require.Equal(t, Position{Offset: string(end), Skip: 1}, saved)
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
