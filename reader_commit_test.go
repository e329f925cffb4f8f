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
			_, c := newReaderServer(t)
			createJSON(t, c, "s")
			appendEvents(t, c, "s", 0, 3)
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
	_, c := newReaderServer(t)
	createJSON(t, c, "s")
	appendEvents(t, c, "s", 0, 3)
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
