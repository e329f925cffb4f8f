// Package pgstore keeps durable Reader positions and Writer producer epochs
// in Postgres (github.com/jackc/pgx/v5), commits a position in the same
// transaction as the work it stands for, and lets one replica of many read
// a stream at a time.
//
// It is a module of its own (github.com/durablego/durable/offsetstore/pgstore)
// so that the core module does not depend on pgx.
//
// # Store
//
// A [Store] is an offsetstore.Store and offsetstore.EpochStore with the
// File store's semantics: a saved position never moves backwards (Save of
// an earlier position changes nothing; [Store.Delete] is the one way
// back), and a row that is not a valid position is an error wrapping
// offsetstore.ErrCorrupt, never a silent restart from the beginning. Meta
// is kept with the position. Epochs only move forward: of two writers that
// claim the same epoch, exactly one succeeds ([ErrEpochNotNewer]), so a
// worker restarted on another machine fences its zombie.
//
// # Tables
//
// [Open] creates, if they are missing, a schema ("durable" unless
// [WithSchema]) and three tables ([WithTablePrefix] prefixes their names):
//
//	positions       (key text PRIMARY KEY, "offset" text, skip bigint, meta text, updated_at timestamptz)
//	producer_epochs (producer_id text PRIMARY KEY, epoch bigint, updated_at timestamptz)
//	leases          (key text PRIMARY KEY, holder text, token bigint, expires_at timestamptz)
//
// The migration is idempotent (CREATE ... IF NOT EXISTS, serialised by an
// advisory lock held for its transaction) and [MigrationSQL] prints it, for
// an owner to run when the application's role may not create tables; that
// role then opens the store [WithoutMigration] and needs USAGE on the
// schema and SELECT, INSERT, UPDATE (and DELETE for [Store.Delete]) on the
// tables. Names are quoted, so any schema or prefix is safe.
//
// # Exactly once
//
// [Store.CommitTx] writes a position in the caller's pgx.Tx, so the
// handler's writes and the position commit together or not at all. It
// refuses ([ErrAlreadyCommitted]) a position that is not after the saved
// one, so a message that was committed before (a commit whose
// acknowledgement was lost, a crash before the Reader heard of it) is never
// applied twice: its second transaction rolls back.
//
// A [Consumer] does all of it on top of a durable.Reader's public API: it
// reads a message, runs the [Handler] in a new transaction, writes the
// position in it, commits, and only then tells the Reader
// (Reader.Commit, which its store takes as already done, costing no
// query). A handler error rolls the transaction back, and the next Handle
// delivers the same message again.
//
// # One active consumer per key: why a lease row
//
// [WithExclusive] (or [Store.AcquireLease]) takes a lease on the key: a
// row holding the holder, a fencing token and an expiry. Taking it over
// needs the row to have expired and bumps the token; the holder renews it
// every TTL/3. Every fenced write ([Lease.CommitTx], a Consumer's commit)
// checks, in its own transaction, that the row still holds its token and
// has not expired, and locks the row (FOR SHARE) until the transaction
// ends: a takeover waits for that transaction, and a deposed holder's
// commit is rejected with [ErrFenced], never applied. On its side the
// holder stops the moment its TTL runs out without a good renewal, counted
// from before it sent that renewal, which is before the database's expiry:
// the holder has stopped before anyone can take over. A Consumer cancels
// the handler's context at that moment and delivers nothing more.
//
// An advisory lock on a dedicated connection would free the key at once
// when its process dies, but its fencing is weak: a write made on another
// connection (the handler's transaction) cannot check the lock cheaply,
// the lock dies with a connection and is taken again with no token to
// tell the two tenures apart, a half-open TCP connection can hold it for
// minutes, and it does not pass through transaction-pooling proxies. The
// lease row costs a takeover delay after a crash (at most the TTL plus one
// poll; Close releases at once) and buys a token the commit checks in the
// same transaction, tokens that keep growing across database restarts, and
// a row operators can read.
//
// # Errors
//
// Every error is an [*Error] naming the operation and the key, wrapping a
// sentinel: [ErrConnect] (the database unreachable or restarting, a wrong
// host, database or role), [ErrPermission], [ErrSchema] (a table or column
// missing), [ErrFenced], [ErrLeaseLost], [ErrAlreadyCommitted],
// [ErrEpochNotNewer], offsetstore.ErrInvalid or offsetstore.ErrCorrupt.
// [IsTransient] tells what is worth retrying; Consumer.Run retries it.
// Errors never include a password.
package pgstore
