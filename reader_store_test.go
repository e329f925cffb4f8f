package durable

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// TestReaderKeyIsStreamPath: the default store key is the stream's path
// on its server, so a service that reaches the same server by another name
// (localhost for 127.0.0.1 here, or another port through a proxy) resumes
// where it was instead of reading the stream again.
func TestReaderKeyIsStreamPath(t *testing.T) {
	t.Parallel()
	srv := testserver.New()
	t.Cleanup(srv.Close)
	ctx := ctxT(t, 10*time.Second)
	c1, err := NewClient(srv.StreamURL(""))
	require.NoError(t, err)
	_, err = c1.Create(ctx, "s", CreateOptions{ContentType: "application/json", Data: []byte(`[{"n":1},{"n":2}]`), Closed: true})
	require.NoError(t, err)
	store := newMemStore()
	r1 := openReader[event](t, c1, "s", WithStore(store), WithManualCommit())
	m, err := r1.Next(ctx)
	require.NoError(t, err)
	require.NoError(t, r1.Commit(ctx, m.Position))
	require.NoError(t, r1.Close(ctx))
	_, ok, err := store.Load(ctx, "/v1/stream/s")
	require.NoError(t, err)
	require.True(t, ok, "saved under the stream's path")

	c2, err := NewClient(strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1))
	require.NoError(t, err)
	r2 := openReader[event](t, c2, "s", WithStore(store))
	m, err = r2.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, m.Value.N, "read the stream again under another host name")
}

// TestReaderResumesFromLegacyKey: a position saved under the stream's
// full URL (the default key of earlier releases) is found, so an upgrade
// does not read the stream again.
func TestReaderResumesFromLegacyKey(t *testing.T) {
	t.Parallel()
	_, c := newReaderServer(t)
	ctx := ctxT(t, 10*time.Second)
	_, err := c.Create(ctx, "s", CreateOptions{ContentType: "application/json", Data: []byte(`[{"n":1},{"n":2}]`), Closed: true})
	require.NoError(t, err)
	u, err := c.URL("s")
	require.NoError(t, err)
	store := newMemStore()
	require.NoError(t, store.Save(ctx, u, Position{Offset: "-1", Skip: 1}))
	r := openReader[event](t, c, "s", WithStore(store))
	nextEvent(t, ctx, r, 2)
}

// TestReaderSavedPositionRejected: a saved position the server refuses
// (malformed: 400; before retention or deleted: 410) is a clear error
// wrapping ErrPositionRejected, and the Reader never starts over from the
// beginning on its own.
func TestReaderSavedPositionRejected(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		want   error
	}{
		{"malformed", http.StatusBadRequest, ErrBadRequest},
		{"gone", http.StatusGone, ErrGone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, c, _ := newEventStream(t, 3)
			ctx := ctxT(t, 10*time.Second)
			store := newMemStore()
			require.NoError(t, store.Save(ctx, "/v1/stream/s", Position{Offset: "elsewhere-0042"}))
			srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: tc.status})
			r := openReader[event](t, c, "s", WithStore(store))
			_, err := r.Next(ctx)
			require.ErrorIs(t, err, ErrPositionRejected)
			require.ErrorIs(t, err, tc.want)
			require.Contains(t, err.Error(), `offset elsewhere-0042 under key "/v1/stream/s"`)
			srv.ClearFaults()
			_, err = r.Next(ctx)
			require.ErrorIs(t, err, ErrPositionRejected, "sticky: no read from the start")
			saved, _, err := store.Load(ctx, "/v1/stream/s")
			require.NoError(t, err)
			require.Equal(t, "elsewhere-0042", saved.Offset)
		})
	}
	// A 400 once the Reader has read from its saved position is not about
	// the position.
	t.Run("later", func(t *testing.T) {
		t.Parallel()
		srv, c, _ := newEventStream(t, 1)
		ctx := ctxT(t, 10*time.Second)
		store := newMemStore()
		require.NoError(t, store.Save(ctx, "/v1/stream/s", Position{Offset: "-1"}))
		r := openReader[event](t, c, "s", WithStore(store))
		_, err := r.Next(ctx)
		require.NoError(t, err)
		srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: http.StatusBadRequest})
		_, err = r.Next(ctx)
		require.ErrorIs(t, err, ErrBadRequest)
		require.NotErrorIs(t, err, ErrPositionRejected)
	})
}

func TestReaderResumesInsideABatch(t *testing.T) {
	t.Parallel()
	_, c, end := newEventStream(t, 10)
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
	m := nextEvent(t, ctx, r, 12)
	require.Equal(t, Position{Offset: "-1", Skip: 13}, m.Position)
	_ = end2
}

func TestReaderStartOptions(t *testing.T) {
	t.Parallel()
	for _, mode := range append([]LiveMode{LiveNone}, liveModes...) {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			_, c, mid := newEventStream(t, 2)
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
