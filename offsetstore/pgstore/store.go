package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/durablego/durable/offsetstore"
)

// errInvalid is offsetstore's: an argument error is the same error whatever
// the store.
var errInvalid = offsetstore.ErrInvalid

// querier is what a pool, a connection and a transaction have in common.
type querier interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store is an offsetstore.Store and offsetstore.EpochStore on Postgres,
// with transactional commits (CommitTx) and leases (AcquireLease). It is
// safe for concurrent use. Open it with Open (on a pool you own) or Connect
// (on a connection string).
type Store struct {
	pool    *pgxpool.Pool
	ownPool bool
	t       tables
	sql     statements
}

// Open opens a Store on pool: it creates the schema and tables if they do
// not exist (see MigrationSQL; WithoutMigration only checks them) and
// checks that every table has the expected columns. It fails with an
// *Error wrapping ErrConnect when the database cannot be reached,
// ErrPermission when the role may not create or read the tables, and
// ErrSchema when a table lacks a column. Close does not close pool.
func Open(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, &Error{Op: "open", Err: fmt.Errorf("%w: nil pool", errInvalid)}
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, &Error{Op: "open", Err: err}
	}
	s := &Store{pool: pool, t: newTables(c)}
	s.sql = newStatements(s.t)
	err = s.t.check(ctx, pool)
	if err != nil && c.migrate && errors.Is(classify(err), ErrSchema) {
		if merr := s.t.migrate(ctx, pool); merr != nil {
			return nil, wrap("migrate", "", merr)
		}
		err = s.t.check(ctx, pool)
	}
	if err != nil {
		return nil, wrap("open", "", err)
	}
	return s, nil
}

// Connect opens a pool on connString (a postgres:// URL or key=value
// string, as pgxpool.ParseConfig takes) and a Store on it; Close closes the
// pool. Errors never include the password.
func Connect(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgconn's parse errors already mask the password.
		return nil, &Error{Op: "open", Err: fmt.Errorf("%w: connection string: %w", errInvalid, err)}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, wrap("open", "", err)
	}
	s, err := Open(ctx, pool, opts...)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.ownPool = true
	return s, nil
}

// Pool returns the pool the Store uses, for the application's own
// transactions (see CommitTx).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close closes the pool if Connect opened it; a Store from Open leaves its
// pool open. Leases are not released: release them first.
func (s *Store) Close() {
	if s.ownPool {
		s.pool.Close()
	}
}

// Load returns the position saved under key; ok is false when none was. A
// row that is not a valid position (an empty offset, a negative skip) is an
// *Error wrapping offsetstore.ErrCorrupt, never a silent restart.
func (s *Store) Load(ctx context.Context, key string) (offsetstore.Position, bool, error) {
	return s.load(ctx, s.pool, key)
}

// LoadTx is Load inside tx.
func (s *Store) LoadTx(ctx context.Context, tx pgx.Tx, key string) (offsetstore.Position, bool, error) {
	return s.load(ctx, tx, key)
}

func (s *Store) load(ctx context.Context, db querier, key string) (offsetstore.Position, bool, error) {
	if err := validateKey("key", key); err != nil {
		return offsetstore.Position{}, false, &Error{Op: "load", Key: key, Err: err}
	}
	var off, meta *string
	var skip *int64
	err := db.QueryRow(ctx, s.sql.load, key).Scan(&off, &skip, &meta)
	if errors.Is(err, pgx.ErrNoRows) {
		return offsetstore.Position{}, false, nil
	}
	if err != nil {
		return offsetstore.Position{}, false, wrap("load", key, err)
	}
	if off == nil || skip == nil || meta == nil {
		return offsetstore.Position{}, false, &Error{Op: "load", Key: key, Err: fmt.Errorf("%w: NULL in the position row", offsetstore.ErrCorrupt)}
	}
	pos := offsetstore.Position{Offset: *off, Skip: *skip, Meta: *meta}
	if err := validatePosition(pos); err != nil {
		return offsetstore.Position{}, false, &Error{Op: "load", Key: key, Err: fmt.Errorf("%w: %w", offsetstore.ErrCorrupt, err)}
	}
	return pos, true, nil
}

// Save records pos under key unless the table holds a later position for
// it: a saved position never moves backwards (a Save of an earlier
// position changes nothing and returns nil; one of the same position
// updates Meta). When Save returns nil the row is committed. Use CommitTx
// to save in the transaction of the application's own writes, and a
// Lease's Store for saves fenced by a lease.
func (s *Store) Save(ctx context.Context, key string, pos offsetstore.Position) error {
	_, err := s.save(ctx, s.pool, "save", key, pos, nil, false)
	return err
}

// Delete removes the position saved under key, so that a Reader on key
// starts over from its WithStart. It is the one way to move a position
// backwards.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := validateKey("key", key); err != nil {
		return &Error{Op: "delete", Key: key, Err: err}
	}
	_, err := s.pool.Exec(ctx, s.sql.delete, key)
	return wrap("delete", key, err)
}

// CommitTx writes pos for key in tx, the transaction of the handler's own
// writes, so that both commit or neither does. It fails with
// ErrAlreadyCommitted when the table already holds pos or a later position
// for key (the message was handled before: roll tx back, or its writes
// would be applied twice). It takes no lock beyond the position row, which
// it holds until tx ends. See Lease.CommitTx for the fenced variant.
func (s *Store) CommitTx(ctx context.Context, tx pgx.Tx, key string, pos offsetstore.Position) error {
	_, err := s.save(ctx, tx, "commit", key, pos, nil, true)
	return err
}

// save upserts pos unless the row holds a later (strict: a later or the
// same) position, or fence is not the current unexpired lease. It returns
// whether the row was written.
func (s *Store) save(ctx context.Context, db querier, op, key string, pos offsetstore.Position, f *Fence, strict bool) (bool, error) {
	if err := validateKey("key", key); err != nil {
		return false, &Error{Op: op, Key: key, Err: err}
	}
	if err := validatePosition(pos); err != nil {
		return false, &Error{Op: op, Key: key, Err: err}
	}
	q, args := s.sql.upsert(strict, f != nil), []any{key, pos.Offset, pos.Skip, pos.Meta}
	if f != nil {
		args = append(args, f.Key, f.Token)
	}
	var one int
	err := db.QueryRow(ctx, q, args...).Scan(&one)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, wrap(op, key, err)
	}
	// Nothing written: a lost lease, or the row is already at or past pos.
	if f != nil {
		if err := s.checkFence(ctx, db, *f); err != nil {
			return false, wrap(op, key, err)
		}
	}
	if strict {
		return false, &Error{Op: op, Key: key, Err: fmt.Errorf("%w: %q+%d is not after the saved position", ErrAlreadyCommitted, pos.Offset, pos.Skip)}
	}
	return false, nil
}

// LoadEpoch returns the epoch saved for producerID.
func (s *Store) LoadEpoch(ctx context.Context, producerID string) (int64, bool, error) {
	if err := validateKey("producer ID", producerID); err != nil {
		return 0, false, &Error{Op: "load epoch", Key: producerID, Err: err}
	}
	var epoch *int64
	err := s.pool.QueryRow(ctx, s.sql.loadEpoch, producerID).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, wrap("load epoch", producerID, err)
	}
	if epoch == nil || *epoch < 0 {
		return 0, false, &Error{Op: "load epoch", Key: producerID, Err: fmt.Errorf("%w: NULL or negative epoch", offsetstore.ErrCorrupt)}
	}
	return *epoch, true, nil
}

// SaveEpoch records epoch for producerID. Several machines share the
// table, so it is the arbiter: an epoch not greater than the stored one
// fails with ErrEpochNotNewer (another writer claimed it first), and of two
// writers that load the same epoch and claim the next, exactly one
// succeeds.
func (s *Store) SaveEpoch(ctx context.Context, producerID string, epoch int64) error {
	if err := validateKey("producer ID", producerID); err != nil {
		return &Error{Op: "save epoch", Key: producerID, Err: err}
	}
	if epoch < 0 {
		return &Error{Op: "save epoch", Key: producerID, Err: fmt.Errorf("%w: negative epoch %d", errInvalid, epoch)}
	}
	var one int
	err := s.pool.QueryRow(ctx, s.sql.saveEpoch, producerID, epoch).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return &Error{Op: "save epoch", Key: producerID, Err: fmt.Errorf("%w: %d", ErrEpochNotNewer, epoch)}
	}
	return wrap("save epoch", producerID, err)
}

// validateKey is offsetstore.ValidateKey (the same argument error
// whatever the store) plus what Postgres text adds: no NUL byte.
func validateKey(what, key string) error {
	if err := offsetstore.ValidateKey(what, key); err != nil {
		return err
	}
	return noNUL(what, key)
}

// validatePosition is offsetstore.ValidatePosition plus no NUL byte in the
// offset or meta.
func validatePosition(pos offsetstore.Position) error {
	if err := offsetstore.ValidatePosition(pos); err != nil {
		return err
	}
	if err := noNUL("offset", pos.Offset); err != nil {
		return err
	}
	return noNUL("meta", pos.Meta)
}

// noNUL rejects a string with a NUL byte, which Postgres text cannot hold.
func noNUL(what, s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("%w: %s contains a NUL byte (Postgres text cannot)", errInvalid, what)
	}
	return nil
}

// Compile-time interface checks.
var (
	_ offsetstore.Store      = (*Store)(nil)
	_ offsetstore.EpochStore = (*Store)(nil)
)
