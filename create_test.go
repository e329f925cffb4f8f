package durable

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestCreateVariants(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, nil)
	ctx := context.Background()

	_, err := c.Create(ctx, "ttl", CreateOptions{ContentType: "text/plain", TTL: time.Hour})
	require.NoError(t, err)
	info, err := c.Head(ctx, "ttl")
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.TTL)

	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	_, err = c.Create(ctx, "exp", CreateOptions{ContentType: "text/plain", ExpiresAt: exp})
	require.NoError(t, err)
	info, err = c.Head(ctx, "exp")
	require.NoError(t, err)
	require.True(t, exp.Equal(info.ExpiresAt), "%v != %v", exp, info.ExpiresAt)

	closed, err := c.Create(ctx, "done", CreateOptions{ContentType: "text/plain", Closed: true, Data: []byte("all")})
	require.NoError(t, err)
	require.True(t, closed.Closed)
	_, err = c.Append(ctx, "done", []byte("more"), AppendOptions{ContentType: "text/plain"})
	require.ErrorIs(t, err, ErrStreamClosed)

	// Forks: inherit data up to the fork offset, then diverge.
	src, err := c.Create(ctx, "src", CreateOptions{ContentType: "text/plain", Data: []byte("xy")})
	require.NoError(t, err)
	_, err = c.Append(ctx, "src", []byte("z"), AppendOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	_, err = c.Create(ctx, "fork", CreateOptions{ForkFrom: "src", ForkOffset: src.NextOffset})
	require.NoError(t, err)
	_, err = c.Append(ctx, "fork", []byte("!"), AppendOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	ch, err := c.Read(ctx, "fork", ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, "xy!", string(ch.Data))
	sub, err := c.Create(ctx, "fork-sub", CreateOptions{ForkFrom: "src", ForkOffset: src.NextOffset, ForkSubOffset: 1})
	require.NoError(t, err)
	require.True(t, sub.Created)
	ch, err = c.Read(ctx, "fork-sub", ReadOptions{})
	require.NoError(t, err)
	require.Equal(t, "xyz", string(ch.Data))

	// A source with forks is soft-deleted: 410 afterwards.
	require.NoError(t, c.Delete(ctx, "src"))
	_, err = c.Head(ctx, "src")
	require.ErrorIs(t, err, ErrGone)
	_, err = c.Create(ctx, "src", CreateOptions{ContentType: "text/plain"})
	require.ErrorIs(t, err, ErrStreamExists)
	_, err = c.Create(ctx, "fork2", CreateOptions{ForkFrom: "missing"})
	require.ErrorIs(t, err, ErrNotFound)
}
