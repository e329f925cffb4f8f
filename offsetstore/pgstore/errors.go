package pgstore

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/durablego/durable/offsetstore"
)

// Sentinel errors. Every error of this package is an [*Error] that wraps
// one of these (or one of offsetstore's: ErrInvalid, ErrCorrupt) together
// with the database's own error; test with [errors.Is].
var (
	// ErrFenced reports a write made under a lease that is no longer held:
	// another replica took the key over (its fencing token is higher), or
	// the lease expired. The transaction that carried the write must be
	// rolled back; nothing it did is applied.
	ErrFenced = errors.New("pgstore: lease lost: write fenced off")
	// ErrLeaseLost is returned by a Consumer (and is the cause of a Lease's
	// context) when its lease expired or was taken over.
	ErrLeaseLost = errors.New("pgstore: lease lost")
	// ErrAlreadyCommitted reports a transactional commit of a position at or
	// before the one the table already holds for the key: the message was
	// committed before (by this or another consumer), and the transaction
	// must be rolled back so that its side effects are not applied twice.
	ErrAlreadyCommitted = errors.New("pgstore: position already committed")
	// ErrEpochNotNewer reports a SaveEpoch of an epoch that is not greater
	// than the one stored: another writer claimed that epoch first.
	ErrEpochNotNewer = errors.New("pgstore: producer epoch is not newer than the stored one")
	// ErrSchema reports that the store's tables are missing or do not have
	// the expected columns (dropped, renamed, or never migrated).
	ErrSchema = errors.New("pgstore: tables missing or not as migrated")
	// ErrPermission reports that the database role may not do what was asked
	// (SQLSTATE 42501): grant it the privileges listed in the package doc.
	ErrPermission = errors.New("pgstore: permission denied")
	// ErrConnect reports that no connection to the database could be made
	// or kept: a wrong host, port, database, user or password, or a server
	// that is down or restarting. It is transient only when the database
	// comes back; see IsTransient.
	ErrConnect = errors.New("pgstore: cannot reach the database")
)

// Error is an error of a store operation. It names the operation and the
// key (or producer ID) and wraps a sentinel of this package or of
// offsetstore, and the underlying database error.
type Error struct {
	Op  string // "open", "migrate", "load", "save", "commit", "load epoch", "save epoch", "acquire lease", "renew lease", "release lease", "delete"
	Key string // the position key, lease key or producer ID ("" for open and migrate)
	Err error  // the cause (a sentinel joined with the database error)
}

// Error implements error.
func (e *Error) Error() string {
	s := "pgstore: " + e.Op
	if e.Key != "" {
		s += " " + quoteKey(e.Key)
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func quoteKey(k string) string {
	const max = 200
	if len(k) > max {
		k = k[:max] + "..."
	}
	return `"` + k + `"`
}

// wrap returns err as an *Error of op on key, adding the sentinel that
// classifies a database error. Context errors and errors of this package
// pass through unchanged (a context error is wrapped so that op and key
// are named, and errors.Is still finds it).
func wrap(op, key string, err error) error {
	if err == nil {
		return nil
	}
	var pe *Error
	if errors.As(err, &pe) {
		return err
	}
	if s := classify(err); s != nil && !errors.Is(err, s) {
		err = &causeError{sentinel: s, err: err}
	}
	return &Error{Op: op, Key: key, Err: err}
}

// causeError joins a sentinel to a database error: its text is the
// database error's, and errors.Is finds both.
type causeError struct {
	sentinel error
	err      error
}

func (e *causeError) Error() string   { return e.sentinel.Error() + ": " + e.err.Error() }
func (e *causeError) Unwrap() []error { return []error{e.sentinel, e.err} }

// SQLSTATE codes this package tells apart.
const (
	codeUndefinedTable  = "42P01"
	codeUndefinedColumn = "42703"
	codeUndefinedSchema = "3F000"
	codePermission      = "42501"
	codeUniqueViolation = "23505"
	codeAdminShutdown   = "57P01"
	codeCrashShutdown   = "57P02"
	codeCannotConnect   = "57P03"
	codeInvalidCatalog  = "3D000"
)

// classify returns the sentinel for a database error, or nil.
func classify(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch c := pgErr.Code; {
		case c == codeUndefinedTable || c == codeUndefinedColumn || c == codeUndefinedSchema:
			return ErrSchema
		case c == codePermission:
			return ErrPermission
		case c == codeAdminShutdown || c == codeCrashShutdown || c == codeCannotConnect || c == codeInvalidCatalog,
			strings.HasPrefix(c, "08"), strings.HasPrefix(c, "28"):
			return ErrConnect
		}
		return nil
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || pgconn.SafeToRetry(err) || isClosedConn(err) {
		return ErrConnect
	}
	return nil
}

func isClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF)
}

// IsTransient reports whether err may pass if the same call is made again
// later: the database was unreachable or restarting (ErrConnect, except a
// wrong database name or failed authentication), or a serialisation
// failure or deadlock. ErrFenced, ErrAlreadyCommitted, ErrSchema,
// ErrPermission, offsetstore.ErrInvalid and offsetstore.ErrCorrupt are
// permanent, as are context errors.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	for _, s := range []error{ErrFenced, ErrAlreadyCommitted, ErrSchema, ErrPermission, ErrEpochNotNewer, offsetstore.ErrInvalid, offsetstore.ErrCorrupt} {
		if errors.Is(err, s) {
			return false
		}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch c := pgErr.Code; {
		case c == "40001" || c == "40P01": // serialization_failure, deadlock_detected
			return true
		case c == codeInvalidCatalog || strings.HasPrefix(c, "28"): // no such database; authentication
			return false
		}
	}
	return errors.Is(err, ErrConnect) || classify(err) == ErrConnect
}
