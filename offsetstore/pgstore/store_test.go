package pgstore

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable/offsetstore"
)

func TestStoreRoundTrip(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()

	_, ok, err := s.Load(ctx, "k")
	require.NoError(t, err)
	assert.False(t, ok)

	p := offsetstore.Position{Offset: "0001_0010", Skip: 3, Meta: "len=42 ünïcode"}
	require.NoError(t, s.Save(ctx, "k", p))
	got, ok, err := s.Load(ctx, "k")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, p, got)

	_, ok, err = s.LoadEpoch(ctx, "w")
	require.NoError(t, err)
	assert.False(t, ok)
	require.NoError(t, s.SaveEpoch(ctx, "w", 4))
	e, ok, err := s.LoadEpoch(ctx, "w")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, int64(4), e)

	require.NoError(t, s.Delete(ctx, "k"))
	_, ok, err = s.Load(ctx, "k")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestSaveNeverMovesBackwards(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	steps := []struct {
		save offsetstore.Position
		want offsetstore.Position
	}{
		{offsetstore.Position{Offset: "-1", Skip: 2}, offsetstore.Position{Offset: "-1", Skip: 2}},
		{offsetstore.Position{Offset: "-1", Skip: 1}, offsetstore.Position{Offset: "-1", Skip: 2}},
		{offsetstore.Position{Offset: "0000_0005", Skip: 0}, offsetstore.Position{Offset: "0000_0005", Skip: 0}},
		{offsetstore.Position{Offset: "-1", Skip: 9}, offsetstore.Position{Offset: "0000_0005", Skip: 0}},
		{offsetstore.Position{Offset: "0000_0005", Skip: 4}, offsetstore.Position{Offset: "0000_0005", Skip: 4}},
		{offsetstore.Position{Offset: "0000_0004", Skip: 99}, offsetstore.Position{Offset: "0000_0005", Skip: 4}},
		// The same position again updates Meta.
		{offsetstore.Position{Offset: "0000_0005", Skip: 4, Meta: "m"}, offsetstore.Position{Offset: "0000_0005", Skip: 4, Meta: "m"}},
		// Byte order, not the database's collation: "B" < "a".
		{offsetstore.Position{Offset: "B"}, offsetstore.Position{Offset: "B"}},
		{offsetstore.Position{Offset: "a"}, offsetstore.Position{Offset: "a"}},
		{offsetstore.Position{Offset: "B", Skip: 5}, offsetstore.Position{Offset: "a"}},
	}
	for i, st := range steps {
		require.NoError(t, s.Save(ctx, "k", st.save), "step %d", i)
		got, _, err := s.Load(ctx, "k")
		require.NoError(t, err)
		assert.Equal(t, st.want, got, "step %d: after saving %+v", i, st.save)
	}
}

func TestSaveEpochOnlyForward(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	require.NoError(t, s.SaveEpoch(ctx, "w", 3))
	for _, e := range []int64{3, 2, 0} {
		err := s.SaveEpoch(ctx, "w", e)
		assert.ErrorIs(t, err, ErrEpochNotNewer, "epoch %d", e)
		var pe *Error
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "save epoch", pe.Op)
		assert.Equal(t, "w", pe.Key)
	}
	got, _, err := s.LoadEpoch(ctx, "w")
	require.NoError(t, err)
	assert.Equal(t, int64(3), got)

	// Two writers that loaded the same epoch race for the next: one wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = s.SaveEpoch(ctx, "w", 4) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else {
			assert.ErrorIs(t, err, ErrEpochNotNewer)
		}
	}
	assert.Equal(t, 1, won)
}

func TestInvalidArguments(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	for name, err := range map[string]error{
		"empty key":        s.Save(ctx, "", offsetstore.Position{Offset: "1"}),
		"bad utf8 key":     s.Save(ctx, "\xff", offsetstore.Position{Offset: "1"}),
		"nul key":          s.Save(ctx, "a\x00b", offsetstore.Position{Offset: "1"}),
		"empty offset":     s.Save(ctx, "k", offsetstore.Position{}),
		"negative skip":    s.Save(ctx, "k", offsetstore.Position{Offset: "1", Skip: -1}),
		"bad utf8 meta":    s.Save(ctx, "k", offsetstore.Position{Offset: "1", Meta: "\xfe"}),
		"nul meta":         s.Save(ctx, "k", offsetstore.Position{Offset: "1", Meta: "\x00"}),
		"negative epoch":   s.SaveEpoch(ctx, "w", -1),
		"empty producer":   s.SaveEpoch(ctx, "", 1),
		"delete empty key": s.Delete(ctx, ""),
	} {
		assert.ErrorIs(t, err, offsetstore.ErrInvalid, name)
	}
	_, _, err := s.Load(ctx, "")
	assert.ErrorIs(t, err, offsetstore.ErrInvalid)
	_, _, err = s.LoadEpoch(ctx, "")
	assert.ErrorIs(t, err, offsetstore.ErrInvalid)
}

func TestCorruptRowsAreErrors(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	for name, upd := range map[string]string{
		"empty offset":  `UPDATE ` + s.t.positions + ` SET "offset" = '' WHERE key = $1`,
		"negative skip": `UPDATE ` + s.t.positions + ` SET skip = -3 WHERE key = $1`,
		"NULL meta":     `ALTER TABLE ` + s.t.positions + ` ALTER meta DROP NOT NULL; UPDATE ` + s.t.positions + ` SET meta = NULL WHERE key = 'NULL meta'`,
	} {
		require.NoError(t, s.Save(ctx, name, offsetstore.Position{Offset: "0000_0001", Skip: 1}))
		if name == "NULL meta" {
			_, err := s.Pool().Exec(ctx, upd, pgx.QueryExecModeSimpleProtocol)
			require.NoError(t, err)
		} else {
			_, err := s.Pool().Exec(ctx, upd, name)
			require.NoError(t, err)
		}
		_, ok, err := s.Load(ctx, name)
		assert.False(t, ok, name)
		assert.ErrorIs(t, err, offsetstore.ErrCorrupt, name)
		var pe *Error
		if assert.ErrorAs(t, err, &pe, name) {
			assert.Equal(t, "load", pe.Op)
			assert.Equal(t, name, pe.Key)
		}
	}
	_, err := s.Pool().Exec(ctx, `UPDATE `+s.t.epochs+` SET epoch = -1`)
	require.NoError(t, err)
	require.NoError(t, s.SaveEpoch(ctx, "w", 1))
	_, err = s.Pool().Exec(ctx, `UPDATE `+s.t.epochs+` SET epoch = -1`)
	require.NoError(t, err)
	_, _, err = s.LoadEpoch(ctx, "w")
	assert.ErrorIs(t, err, offsetstore.ErrCorrupt)
}

func TestMigrationIsIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	schema := testSchema(t, pool)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := Open(ctx, pool, WithSchema(schema), WithTablePrefix("Odd \"Name\"; "))
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	s, err := Open(ctx, pool, WithSchema(schema), WithTablePrefix("Odd \"Name\"; "), WithoutMigration())
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, "k", offsetstore.Position{Offset: "1"}))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "Odd \"Name\"; positions"}.Sanitize()).Scan(&n))
	assert.Equal(t, 1, n)

	sql, err := MigrationSQL(WithSchema(schema))
	require.NoError(t, err)
	_, err = pool.Exec(ctx, sql)
	require.NoError(t, err, "MigrationSQL runs as one script, again")

	_, err = MigrationSQL(WithSchema(""))
	assert.ErrorIs(t, err, offsetstore.ErrInvalid)
}

func TestWithoutMigrationNeedsTables(t *testing.T) {
	t.Parallel()
	pool := testPool(t)
	_, err := Open(context.Background(), pool, WithSchema(testSchema(t, pool)), WithoutMigration())
	assert.ErrorIs(t, err, ErrSchema)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "open", pe.Op)
	assert.False(t, IsTransient(err))
}

func TestErrorIsTyped(t *testing.T) {
	t.Parallel()
	err := wrap("load", "k", errors.New("boom"))
	assert.EqualError(t, err, `pgstore: load "k": boom`)
}
