// Command pgsink tails a stream into a Postgres table exactly once: each
// event's row and the consumer's position commit in one transaction, and
// of two replicas with the same key only the one holding the lease reads.
//
//	go run ./examples/pgsink                      # embedded test server, events appended by the program
//	go run ./examples/pgsink -url http://127.0.0.1:4437/v1/stream/ -stream orders   # tail a real stream until Ctrl-C
//
// (run from offsetstore/pgstore, the module it belongs to). It needs only a
// database: DATABASE_URL, or when unset the local test database
// postgres://postgres@127.0.0.1:5432/test. It writes to the schema
// "pgsink" (-schema): the store's tables and a table "events".
//
// With no -url it starts an in-process testserver, appends -events
// numbered events, and runs two replicas that share one key; the holder
// that commits the event a third of the way through stops there (as in a
// deploy), and the other takes over from the committed position. The last
// line is the verdict:
//
//	pgsink: 1000 events, 1000 rows, 0 missing, 0 duplicated, 0 from a deposed holder (handed over after 333 events: token 1 -> 2)
//
// "From a deposed holder" counts rows written under a lease token older
// than the token of an earlier event's row: a replica that went on after
// another took over. The tokens are those of every lease acquisition, in
// order (one more for each time a replica lost its lease, which a machine
// stalled for a whole lease TTL can cause). The exit status is 1 when a
// row is missing, duplicated or from a deposed holder.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore/pgstore"
	"github.com/durablego/durable/testserver"
)

// defaultDatabase is used when DATABASE_URL is unset: the local test
// database of the project's machines (trust auth).
const defaultDatabase = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

type config struct {
	URL, Stream, Schema string
	Events              int
	Keep                bool // keep the schema (embedded mode drops it at the end)
}

// errVerdict is returned when a row is missing, duplicated or from a
// deposed holder.
var errVerdict = errors.New("rows missing, duplicated or from a deposed holder")

func main() {
	var cfg config
	flag.StringVar(&cfg.URL, "url", "", "streams base URL of a real server (default: an embedded test server)")
	flag.StringVar(&cfg.Stream, "stream", "events", "stream to tail")
	flag.StringVar(&cfg.Schema, "schema", "pgsink", "Postgres schema for the store's tables and the events table")
	flag.IntVar(&cfg.Events, "events", 1000, "embedded server: events to append")
	flag.BoolVar(&cfg.Keep, "keep", false, "embedded server: keep the schema at the end")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, os.Getenv("DATABASE_URL"), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pgsink:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, dbURL string, out io.Writer) error {
	if dbURL == "" {
		dbURL = defaultDatabase
	}
	store, err := pgstore.Connect(ctx, dbURL, pgstore.WithSchema(cfg.Schema))
	if err != nil {
		return err
	}
	defer store.Close()
	table := pgx.Identifier{cfg.Schema, "events"}.Sanitize()
	if _, err := store.Pool().Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		"offset" text NOT NULL, skip bigint NOT NULL, data jsonb NOT NULL, token bigint NOT NULL)`); err != nil {
		return fmt.Errorf("create events table: %w", err)
	}
	// The handler: one row per event, in the transaction that also commits
	// the position (msg.Position: the place just after this event).
	sink := func(c *pgstore.Consumer[json.RawMessage]) pgstore.Handler[json.RawMessage] {
		return func(ctx context.Context, tx pgx.Tx, msg durable.Message[json.RawMessage]) error {
			_, err := tx.Exec(ctx, `INSERT INTO `+table+` VALUES ($1, $2, $3, $4)`,
				msg.Position.Offset, msg.Position.Skip, string(msg.Value), c.Lease().Token())
			return err
		}
	}
	if cfg.URL != "" {
		return tail(ctx, store, cfg, sink, out)
	}
	if !cfg.Keep {
		defer store.Pool().Exec(context.WithoutCancel(ctx), `DROP SCHEMA `+pgx.Identifier{cfg.Schema}.Sanitize()+` CASCADE`)
	}
	if _, err := store.Pool().Exec(ctx, `TRUNCATE `+table); err != nil {
		return err
	}
	if err := store.Delete(ctx, "pgsink"); err != nil {
		return err
	}
	return demo(ctx, store, cfg, table, sink, out)
}

// tail copies a real server's stream into the table until ctx ends or the
// stream is closed.
func tail(ctx context.Context, store *pgstore.Store, cfg config, sink func(*pgstore.Consumer[json.RawMessage]) pgstore.Handler[json.RawMessage], out io.Writer) error {
	client, err := durable.NewClient(cfg.URL)
	if err != nil {
		return err
	}
	c, err := pgstore.NewConsumer[json.RawMessage](store, client, cfg.Stream, "pgsink", pgstore.WithExclusive())
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	fmt.Fprintf(out, "pgsink: tailing %s into %s.events (Ctrl-C to stop)\n", cfg.Stream, cfg.Schema)
	err = c.Run(ctx, sink(c))
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	pos, _ := c.Committed()
	fmt.Fprintf(out, "pgsink: stopped at position %s+%d\n", pos.Offset, pos.Skip)
	return err
}

// demo appends numbered events on an embedded server and runs two
// replicas; the holder that commits event Events/3 stops.
func demo(ctx context.Context, store *pgstore.Store, cfg config, table string, sink func(*pgstore.Consumer[json.RawMessage]) pgstore.Handler[json.RawMessage], out io.Writer) error {
	srv := testserver.New()
	defer srv.Close()
	client, err := durable.NewClient(srv.StreamURL(""))
	if err != nil {
		return err
	}
	if _, err := client.Create(ctx, cfg.Stream, durable.CreateOptions{ContentType: "application/json"}); err != nil {
		return err
	}
	fmt.Fprintf(out, "pgsink: embedded server %s; %d events into %s (DATABASE_URL or the local test database)\n", srv.URL(), cfg.Events, table)
	wrote := make(chan error, 1)
	go func() { wrote <- appendEvents(ctx, client, cfg.Stream, cfg.Events) }()

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The handover is driven by the events committed, never by timing:
	// whoever holds the lease when handed the event after the first
	// handover ones stops.
	handover := max(1, cfg.Events/3)
	var (
		mu       sync.Mutex
		tokens   []int64
		stopped  int
		wg       sync.WaitGroup
		firstErr error
	)
	for i := range 2 {
		wg.Go(func() {
			c, err := pgstore.NewConsumer[json.RawMessage](store, client, cfg.Stream, "pgsink",
				pgstore.WithExclusive(pgstore.WithHolder(fmt.Sprint("replica-", i)), pgstore.WithLeasePoll(50*time.Millisecond),
					pgstore.WithLeaseEvents(func(e pgstore.LeaseEvent) {
						if e.Kind == pgstore.LeaseAcquired {
							mu.Lock()
							tokens = append(tokens, e.Token)
							mu.Unlock()
						}
					})))
			if err == nil {
				err = runReplica(rctx, c, sink(c), func(n int) bool {
					mu.Lock()
					defer mu.Unlock()
					if n == handover+1 && stopped == 0 {
						// Events 1..handover are committed (in order, each
						// once): this holder stops here, as in a deploy.
						stopped = handover
						return true
					}
					return false
				})
			}
			if err != nil {
				mu.Lock()
				firstErr = errors.Join(firstErr, err)
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if err := <-wrote; err != nil {
		return err
	}
	if firstErr != nil {
		return firstErr
	}

	var rows, distinct, deposed int
	if err := store.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT (data->>'n')::int) FROM `+table).Scan(&rows, &distinct); err != nil {
		return err
	}
	// A row whose token is older than the greatest token of the rows of
	// the events before it was written by a holder after its successor
	// took over.
	if err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM (
		SELECT token < max(token) OVER (ORDER BY (data->>'n')::int ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS behind
		FROM `+table+`) r WHERE behind`).Scan(&deposed); err != nil {
		return err
	}
	missing, duplicated := cfg.Events-distinct, rows-distinct
	chain := make([]string, len(tokens))
	for i, t := range tokens {
		chain[i] = strconv.FormatInt(t, 10)
	}
	fmt.Fprintf(out, "pgsink: %d events, %d rows, %d missing, %d duplicated, %d from a deposed holder (handed over after %d events: token %s)\n",
		cfg.Events, rows, missing, duplicated, deposed, stopped, strings.Join(chain, " -> "))
	if missing != 0 || duplicated != 0 || deposed != 0 {
		return errVerdict
	}
	return nil
}

// errHandover ends the Run of the replica that stops at the handover.
var errHandover = errors.New("handover: this replica stops here")

// runReplica handles messages with Consumer.Run, which waits for the lease
// and retries transient failures with backoff, until the stream ends or
// until stop says this replica is to stop before handling event n: its
// transaction then rolls back, and it closes, releasing the lease (the
// next holder handles n).
func runReplica(ctx context.Context, c *pgstore.Consumer[json.RawMessage], h pgstore.Handler[json.RawMessage], stop func(n int) bool) error {
	defer c.Close(context.WithoutCancel(ctx))
	err := c.Run(ctx, func(ctx context.Context, tx pgx.Tx, msg durable.Message[json.RawMessage]) error {
		var ev struct {
			N int `json:"n"`
		}
		if json.Unmarshal(msg.Value, &ev) == nil && stop(ev.N) {
			return errHandover
		}
		return h(ctx, tx, msg)
	})
	if errors.Is(err, errHandover) {
		return nil
	}
	return err
}

// appendEvents appends {"n":1}..{"n":n} over about a second, then closes
// the stream.
func appendEvents(ctx context.Context, client *durable.Client, stream string, n int) error {
	w, err := durable.NewWriter(client, stream, durable.JSONCodec[map[string]int]{})
	if err != nil {
		return err
	}
	tick := time.NewTicker(time.Second / time.Duration(max(1, n/50)))
	defer tick.Stop()
	for i := 1; i <= n; i++ {
		if err := w.Write(ctx, map[string]int{"n": i}); err != nil {
			return errors.Join(err, w.Close(ctx))
		}
		if i%50 == 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return errors.Join(ctx.Err(), w.Close(ctx))
			}
		}
	}
	if err := w.Close(ctx); err != nil {
		return err
	}
	_, err = client.CloseStream(ctx, stream, nil, durable.AppendOptions{})
	return err
}
