package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"
)

// binDir holds the binaries the process tests build.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pgstore-test-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// defaultDatabaseURL is the project machines' test database (trust auth).
const defaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// databaseURL is DATABASE_URL, or the local test database.
func databaseURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return defaultDatabaseURL
}

// The test that restarts Postgres (restart_test.go, build tag pgrestart)
// runs alone: every test that uses the database is counted in dbGate
// while it runs (shareDatabase, called by testPool), and the restart test
// waits until none is and keeps new ones waiting until it ends
// (holdDatabaseAlone). go test already runs a test that does not call
// t.Parallel before any parallel one starts: the gate keeps the rule
// whatever the order. Other packages using the database are kept apart
// by .ci/steps/50-postgres.sh, which runs the restart test in a go test
// of its own, after the others.
var dbGate struct {
	mu    sync.Mutex
	cond  sync.Cond // on mu: users or alone changed
	users int       // tests using the database now
	alone string    // the name of the test using it alone, if any
}

func init() { dbGate.cond.L = &dbGate.mu }

// ownsDatabase reports whether t is (or runs inside) the test holding the
// database alone. Call with dbGate.mu held.
func ownsDatabase(t testing.TB) bool {
	return dbGate.alone != "" && (t.Name() == dbGate.alone || strings.HasPrefix(t.Name(), dbGate.alone+"/"))
}

// shareDatabase counts t's test as using the database until it ends,
// waiting while another test holds it alone. It may be called more than
// once in a test.
func shareDatabase(t testing.TB) {
	dbGate.mu.Lock()
	defer dbGate.mu.Unlock()
	if ownsDatabase(t) {
		return
	}
	for dbGate.alone != "" {
		dbGate.cond.Wait()
	}
	dbGate.users++
	t.Cleanup(func() {
		dbGate.mu.Lock()
		dbGate.users--
		dbGate.cond.Broadcast()
		dbGate.mu.Unlock()
	})
}

// testPool connects to the test database; a database that cannot be reached
// fails the test (never a skip).
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	shareDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, databaseURL())
	if err != nil {
		t.Fatalf("Postgres at DATABASE_URL (default %s): %v", defaultDatabaseURL, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		t.Fatalf("Postgres at DATABASE_URL (default %s) is not reachable: %v", defaultDatabaseURL, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

var nonIdent = regexp.MustCompile(`[^a-z0-9_]+`)

// testSchema returns a schema name of the test's own, dropped when the test
// ends, so that parallel runs never share tables.
func testSchema(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := nonIdent.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	schema := "pgt_" + name + "_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// openTest opens a Store in a schema of the test's own.
func openTest(t testing.TB, opts ...Option) *Store {
	t.Helper()
	pool := testPool(t)
	s, err := Open(context.Background(), pool, append([]Option{WithSchema(testSchema(t, pool))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
