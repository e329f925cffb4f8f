package subscription

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
)

func TestShardingNames(t *testing.T) {
	t.Parallel()
	sh := Sharding{ID: "orders", Prefix: "orders/", N: 4}
	assert.Equal(t, []string{"orders-0", "orders-1", "orders-2", "orders-3"}, sh.IDs())
	assert.Equal(t, "orders/2/**", sh.Pattern(2))
	counts := make([]int, sh.N)
	for i := range 1000 {
		key := fmt.Sprintf("order-%d", i)
		s := sh.Shard(key)
		require.Equal(t, s, sh.Shard(key), "stable")
		require.Equal(t, fmt.Sprintf("orders/%d/%s", s, key), sh.Stream(key))
		counts[s]++
	}
	for i, n := range counts {
		assert.InDelta(t, 250, n, 60, "shard %d gets about a quarter: %v", i, counts)
	}
	ctx := testCtx(t)
	e := newEnv(t)
	for _, bad := range []Sharding{{Prefix: "p", N: 1}, {ID: "x", N: 1}, {ID: "x", Prefix: "p"}} {
		require.ErrorIs(t, bad.Create(ctx, e.c, Config{Type: PullWake, WakeStream: "w"}), durable.ErrInvalidArgument)
		require.ErrorIs(t, bad.Delete(ctx, e.c), durable.ErrInvalidArgument)
	}
	require.ErrorIs(t, sh.Create(ctx, e.c, Config{Type: PullWake, Pattern: "orders/*", WakeStream: "w"}), durable.ErrInvalidArgument)
}

// TestShardedWorkers: streams spread over 4 shards are worked by workers
// that each serve every shard; each shard links only its own streams, and
// several leases are held at once.
func TestShardedWorkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	sh := Sharding{ID: name("shard"), Prefix: name("sp"), N: 4}
	e.createJSON(t, "wake/"+sh.ID)
	require.NoError(t, sh.Create(ctx, e.c, Config{Type: PullWake, WakeStream: "wake/" + sh.ID}))
	require.NoError(t, sh.Create(ctx, e.c, Config{Type: PullWake, WakeStream: "wake/" + sh.ID}), "re-confirmed")
	var streams []string
	for i := range 12 {
		streams = append(streams, sh.Stream(fmt.Sprintf("k%d", i)))
	}
	e.createJSON(t, streams...)

	rec := newRecorder()
	h := func(ctx context.Context, m Message[item]) error { rec.add(m); return nil }
	var workers []*Worker[item]
	for i := range 2 {
		w, err := NewWorker(e.c, sh.ID, h, WithShards(sh.N), WithName(fmt.Sprintf("sw%d", i)), WithConcurrency(4))
		require.NoError(t, err)
		workers = append(workers, w)
		runWorker(t, w)
	}
	e.fill(t, streams, 10)
	rec.waitDistinct(t, streams, 10)
	rec.checkOrder(t)

	for i, id := range sh.IDs() {
		s, err := Open(e.c, id)
		require.NoError(t, err)
		info, err := s.Get(ctx)
		require.NoError(t, err)
		for _, l := range info.Links {
			assert.True(t, strings.HasPrefix(l.Path, fmt.Sprintf("%s/%d/", sh.Prefix, i)), "shard %d links %s", i, l.Path)
		}
	}
	wakes := int64(0)
	for _, w := range workers {
		wakes += w.Stats().Wakes
	}
	assert.GreaterOrEqual(t, wakes, int64(sh.N), "every shard was claimed")
	require.NoError(t, sh.Delete(ctx, e.c))
	for _, id := range sh.IDs() {
		s, err := Open(e.c, id)
		require.NoError(t, err)
		_, err = s.Get(ctx)
		require.ErrorIs(t, err, ErrNotFound)
	}
}
