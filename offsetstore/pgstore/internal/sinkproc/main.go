// Command sinkproc is the consumer process of pgstore's crash tests: it
// tails a JSON stream of {"n": N} items into a table, inserting each item
// and committing its position in one transaction (pgstore.Consumer), and
// prints one line per event on stdout for the test to read:
//
//	lease acquired|lost|released token=T at=UNIXNANO holder=H
//	pause N        (the item's row is inserted, the transaction not committed)
//	done           (the stream ended and everything was committed)
//
// The tests SIGKILL it at random moments and start it again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore/pgstore"
)

type item struct {
	N int `json:"n"`
}

func main() {
	var (
		base, stream, key, schema, table, holder string
		exclusive                                bool
		ttl, pause                               time.Duration
		pauseEvery                               int
	)
	flag.StringVar(&base, "url", "", "stream base URL")
	flag.StringVar(&stream, "stream", "items", "stream name")
	flag.StringVar(&key, "key", "sink", "consumer key")
	flag.StringVar(&schema, "schema", pgstore.DefaultSchema, "store schema")
	flag.StringVar(&table, "table", "sink", "table (in -schema) the items go to: (n int, token bigint)")
	flag.StringVar(&holder, "holder", "", "lease holder name (default host:pid)")
	flag.BoolVar(&exclusive, "exclusive", false, "hold the lease on -key while reading")
	flag.DurationVar(&ttl, "ttl", time.Second, "lease TTL")
	flag.IntVar(&pauseEvery, "pause-every", 0, "pause between the insert and the commit of every Nth item")
	flag.DurationVar(&pause, "pause", 100*time.Millisecond, "how long to pause")
	flag.Parse()
	if err := run(base, stream, key, schema, table, holder, exclusive, ttl, pauseEvery, pause); err != nil {
		fmt.Fprintln(os.Stderr, "sinkproc:", err)
		os.Exit(1)
	}
	fmt.Println("done")
}

func run(base, stream, key, schema, table, holder string, exclusive bool, ttl time.Duration, pauseEvery int, pause time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	store, err := pgstore.Connect(ctx, os.Getenv("DATABASE_URL"), pgstore.WithSchema(schema))
	if err != nil {
		return err
	}
	defer store.Close()
	client, err := durable.NewClient(base)
	if err != nil {
		return err
	}
	var opts []pgstore.ConsumerOption
	if exclusive {
		lopts := []pgstore.LeaseOption{pgstore.WithLeaseTTL(ttl), pgstore.WithLeasePoll(ttl / 20),
			pgstore.WithLeaseEvents(func(e pgstore.LeaseEvent) {
				fmt.Printf("lease %s token=%d at=%d holder=%s\n", e.Kind, e.Token, e.Time.UnixNano(), e.Holder)
			})}
		if holder != "" {
			lopts = append(lopts, pgstore.WithHolder(holder))
		}
		opts = append(opts, pgstore.WithExclusive(lopts...))
	}
	c, err := pgstore.NewConsumer[item](store, client, stream, key, opts...)
	if err != nil {
		return err
	}
	insert := `INSERT INTO ` + pgx.Identifier{schema, table}.Sanitize() + ` (n, token) VALUES ($1, $2)`
	err = c.Run(ctx, func(ctx context.Context, tx pgx.Tx, msg durable.Message[item]) error {
		var token int64
		if l := c.Lease(); l != nil {
			token = l.Token()
		}
		if _, err := tx.Exec(ctx, insert, msg.Value.N, token); err != nil {
			return err
		}
		if pauseEvery > 0 && msg.Value.N%pauseEvery == 0 {
			fmt.Println("pause", msg.Value.N)
			t := time.NewTimer(pause)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	return errors.Join(err, c.Close(context.Background()))
}
