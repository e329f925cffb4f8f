package pgstore

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
)

// A worker restarted elsewhere with the same producer ID takes the next
// epoch from Postgres and fences its zombie.
func TestWriterEpochStoreFencesZombie(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	client, stream := newStream(t, 0, false)
	ctx := context.Background()

	zombie, err := durable.NewWriter(client, stream, durable.JSONCodec[item]{}, durable.WithProducerID("worker"), durable.WithEpochStore(s))
	require.NoError(t, err)
	require.NoError(t, zombie.Write(ctx, item{N: 1}))
	require.NoError(t, zombie.Flush(ctx))
	assert.Equal(t, int64(0), zombie.Producer().Epoch)

	// The replacement opens its own Store, as on another machine.
	other, err := Connect(ctx, databaseURL(), WithSchema(s.t.schemaName))
	require.NoError(t, err)
	defer other.Close()
	restarted, err := durable.NewWriter(client, stream, durable.JSONCodec[item]{}, durable.WithProducerID("worker"), durable.WithEpochStore(other))
	require.NoError(t, err)
	require.NoError(t, restarted.Write(ctx, item{N: 2}))
	require.NoError(t, restarted.Close(ctx))
	assert.Equal(t, int64(1), restarted.Producer().Epoch)

	_ = zombie.Write(ctx, item{N: 3})
	err = zombie.Flush(ctx)
	assert.ErrorIs(t, err, durable.ErrStaleEpoch)
	_ = zombie.Close(ctx)

	e, ok, err := s.LoadEpoch(ctx, "worker")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int64(1), e)
}
