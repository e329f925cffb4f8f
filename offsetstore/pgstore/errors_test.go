package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable/offsetstore"
)

// withURL returns the test database's URL with its user, password,
// port or database replaced.
func withURL(t *testing.T, edit func(u *url.URL)) string {
	t.Helper()
	u, err := url.Parse(databaseURL())
	require.NoError(t, err, "DATABASE_URL must be a postgres:// URL for this test")
	edit(u)
	return u.String()
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		conn      string
		want      error
		transient bool
	}{
		{"malformed", "postgres://postgres:s3cret-pw@127.0.0.1:5432/test?sslmode=bogus", offsetstore.ErrInvalid, false},
		{"nothing listens on the port", withURL(t, func(u *url.URL) { u.Host = "127.0.0.1:1"; u.User = url.UserPassword("postgres", "s3cret-pw") }), ErrConnect, true},
		{"no such database", withURL(t, func(u *url.URL) { u.Path = "/no_such_database_pgstore" }), ErrConnect, false},
		{"no such role", withURL(t, func(u *url.URL) { u.User = url.UserPassword("no_such_role_pgstore", "s3cret-pw") }), ErrConnect, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			shareDatabase(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := Connect(ctx, tt.conn)
			if s != nil {
				s.Close()
			}
			require.ErrorIs(t, err, tt.want)
			var pe *Error
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "open", pe.Op)
			assert.Equal(t, tt.transient, IsTransient(err), "IsTransient(%v)", err)
			assert.NotContains(t, err.Error(), "s3cret-pw", "the password leaks into the error")
		})
	}
}

// newRole creates a login role with no privileges; trust auth lets it in.
func newRole(t *testing.T, admin *pgxpool.Pool) (name, conn string) {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name = "pgt_role_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	_, err := admin.Exec(ctx, `CREATE ROLE `+pgx.Identifier{name}.Sanitize()+` LOGIN`)
	require.NoError(t, err)
	t.Cleanup(func() {
		ident := pgx.Identifier{name}.Sanitize()
		_, err := admin.Exec(ctx, `DROP OWNED BY `+ident+`; DROP ROLE `+ident)
		assert.NoError(t, err)
	})
	return name, withURL(t, func(u *url.URL) { u.User = url.User(name) })
}

func TestPermissionErrors(t *testing.T) {
	t.Parallel()
	admin := testPool(t)
	schema := testSchema(t, admin)
	ctx := context.Background()
	owned, err := Open(ctx, admin, WithSchema(schema))
	require.NoError(t, err)
	role, conn := newRole(t, admin)

	// A role that may not even see the schema: Open says permission, not
	// "missing tables", and does not try to create them.
	_, err = Connect(ctx, conn, WithSchema(schema))
	require.ErrorIs(t, err, ErrPermission)
	assert.False(t, IsTransient(err))
	assert.Contains(t, err.Error(), "permission denied")

	// A schema that does not exist, and a role that may not create it.
	_, err = Connect(ctx, conn, WithSchema(schema+"_new"))
	require.ErrorIs(t, err, ErrPermission)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "migrate", pe.Op)

	// May read but not write.
	r := pgx.Identifier{role}.Sanitize()
	_, err = admin.Exec(ctx, `GRANT USAGE ON SCHEMA `+owned.t.schema+` TO `+r+`;
		GRANT SELECT ON `+owned.t.positions+`, `+owned.t.epochs+`, `+owned.t.leases+` TO `+r)
	require.NoError(t, err)
	s, err := Connect(ctx, conn, WithSchema(schema), WithoutMigration())
	require.NoError(t, err)
	defer s.Close()
	_, _, err = s.Load(ctx, "k")
	require.NoError(t, err)
	err = s.Save(ctx, "k", offsetstore.Position{Offset: "1"})
	require.ErrorIs(t, err, ErrPermission)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "save", pe.Op)
	assert.Equal(t, "k", pe.Key)
	assert.ErrorIs(t, s.SaveEpoch(ctx, "w", 1), ErrPermission)
	_, err = s.TryAcquireLease(ctx, "k")
	assert.ErrorIs(t, err, ErrPermission)
	_, err = s.AcquireLease(ctx, "k")
	assert.ErrorIs(t, err, ErrPermission, "AcquireLease does not wait on a permanent error")
}

func TestDroppedTable(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := context.Background()
	require.NoError(t, s.Save(ctx, "k", offsetstore.Position{Offset: "1"}))
	_, err := s.Pool().Exec(ctx, `DROP TABLE `+s.t.positions+`; DROP TABLE `+s.t.epochs+`; DROP TABLE `+s.t.leases)
	require.NoError(t, err)

	_, _, err = s.Load(ctx, "k")
	require.ErrorIs(t, err, ErrSchema)
	var pe *Error
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "load", pe.Op)
	assert.Contains(t, err.Error(), "does not exist")
	assert.False(t, IsTransient(err))
	assert.ErrorIs(t, s.Save(ctx, "k", offsetstore.Position{Offset: "2"}), ErrSchema)
	_, _, err = s.LoadEpoch(ctx, "w")
	assert.ErrorIs(t, err, ErrSchema)
	assert.ErrorIs(t, s.SaveEpoch(ctx, "w", 1), ErrSchema)
	_, err = s.AcquireLease(ctx, "k")
	assert.ErrorIs(t, err, ErrSchema)
	err = pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error { return s.CommitTx(ctx, tx, "k", offsetstore.Position{Offset: "2"}) })
	assert.ErrorIs(t, err, ErrSchema)

	// A table with a column missing is found at Open.
	pool := testPool(t)
	schema := testSchema(t, pool)
	s2, err := Open(ctx, pool, WithSchema(schema))
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `ALTER TABLE `+s2.t.positions+` DROP COLUMN meta`)
	require.NoError(t, err)
	_, err = Open(ctx, pool, WithSchema(schema))
	assert.ErrorIs(t, err, ErrSchema)
}
