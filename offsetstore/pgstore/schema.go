package pgstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultSchema is the schema the store's tables live in unless WithSchema
// names another.
const DefaultSchema = "durable"

// Table names, after WithTablePrefix's prefix.
const (
	positionsTable = "positions"
	epochsTable    = "producer_epochs"
	leasesTable    = "leases"
)

// config is what the Options set.
type config struct {
	schema  string
	prefix  string
	migrate bool
}

// Option configures Open and Connect.
type Option func(*config)

// WithSchema puts the tables in schema (default DefaultSchema, "durable").
// The name is quoted, so any name is safe, and it is case-sensitive.
func WithSchema(schema string) Option { return func(c *config) { c.schema = schema } }

// WithTablePrefix prefixes the three table names ("positions",
// "producer_epochs", "leases"); for example "orders_" gives
// "orders_positions". Default: no prefix.
func WithTablePrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithoutMigration makes Open only check that the tables exist, never
// create them: for a role that may read and write the tables but not
// create anything. Run MigrationSQL's statements once as an owner instead.
func WithoutMigration() Option { return func(c *config) { c.migrate = false } }

func newConfig(opts []Option) (config, error) {
	c := config{schema: DefaultSchema, migrate: true}
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("%w: nil Option", errInvalid)
		}
		o(&c)
	}
	if c.schema == "" {
		return c, fmt.Errorf("%w: empty schema name", errInvalid)
	}
	for _, name := range []string{c.schema, c.prefix} {
		if err := noNUL("schema or table name", name); err != nil {
			return c, err
		}
	}
	if len(c.prefix)+len(epochsTable) > 63 || len(c.schema) > 63 {
		return c, fmt.Errorf("%w: schema or table name longer than 63 bytes (Postgres would truncate it)", errInvalid)
	}
	return c, nil
}

// tables holds the quoted, schema-qualified table names and the SQL built
// from them once.
type tables struct {
	schemaName                        string // as configured
	schema, positions, epochs, leases string // quoted identifiers
}

func newTables(c config) tables {
	q := func(name string) string { return pgx.Identifier{c.schema, c.prefix + name}.Sanitize() }
	return tables{
		schemaName: c.schema,
		schema:     pgx.Identifier{c.schema}.Sanitize(),
		positions:  q(positionsTable),
		epochs:     q(epochsTable),
		leases:     q(leasesTable),
	}
}

// migrationLockID serialises concurrent migrations (CREATE ... IF NOT
// EXISTS from two sessions at once can fail on the catalog's unique index).
// It is an advisory lock key held only for the migration's transaction.
const migrationLockID = 0x64757261626c65 // "durable"

// migrationStatements returns the DDL of schema version 1. Every statement
// is idempotent.
func (t tables) migrationStatements() []string {
	return []string{
		`CREATE SCHEMA IF NOT EXISTS ` + t.schema,
		`CREATE TABLE IF NOT EXISTS ` + t.positions + ` (
	key        text PRIMARY KEY,
	"offset"   text NOT NULL,
	skip       bigint NOT NULL,
	meta       text NOT NULL DEFAULT '',
	updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
)`,
		`CREATE TABLE IF NOT EXISTS ` + t.epochs + ` (
	producer_id text PRIMARY KEY,
	epoch       bigint NOT NULL,
	updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
)`,
		`CREATE TABLE IF NOT EXISTS ` + t.leases + ` (
	key        text PRIMARY KEY,
	holder     text NOT NULL,
	token      bigint NOT NULL,
	expires_at timestamptz NOT NULL
)`,
	}
}

// MigrationSQL returns the statements Open runs to create the store's
// schema and tables (schema version 1), separated by ";\n", for a database
// owner to run by hand when the application's role may not create tables
// (then open the store WithoutMigration). The statements are idempotent.
func MigrationSQL(opts ...Option) (string, error) {
	c, err := newConfig(opts)
	if err != nil {
		return "", err
	}
	return strings.Join(newTables(c).migrationStatements(), ";\n") + ";\n", nil
}

// migrate runs the migration in one transaction under an advisory lock.
func (t tables) migrate(ctx context.Context, db querier) error {
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLockID)); err != nil {
			return err
		}
		for _, stmt := range t.migrationStatements() {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		return nil
	})
}

// check reads no row but names every column of every table, so a missing
// table or column fails with ErrSchema, and a missing SELECT privilege with
// ErrPermission.
func (t tables) check(ctx context.Context, db querier) error {
	for _, q := range []string{
		`SELECT key, "offset", skip, meta, updated_at FROM ` + t.positions + ` LIMIT 0`,
		`SELECT producer_id, epoch, updated_at FROM ` + t.epochs + ` LIMIT 0`,
		`SELECT key, holder, token, expires_at FROM ` + t.leases + ` LIMIT 0`,
	} {
		rows, err := db.Query(ctx, q)
		if err != nil {
			return err
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}
