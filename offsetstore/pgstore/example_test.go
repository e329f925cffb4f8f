package pgstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore/pgstore"
	"github.com/durablego/durable/testserver"
)

type Order struct {
	ID   int    `json:"id"`
	Item string `json:"item"`
}

// exampleDB returns DATABASE_URL or the local test database.
func exampleDB() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// exampleSchema returns a schema name of this process's own, so that
// parallel runs do not meet.
func exampleSchema(name string) string { return fmt.Sprintf("example_%s_%d", name, os.Getpid()) }

// A Consumer copies a stream into a table exactly once: each order's row
// and the consumer's position commit in one transaction.
func ExampleConsumer() {
	srv := testserver.New() // any Durable Streams server will do
	defer srv.Close()
	ctx := context.Background()
	client, err := durable.NewClient(srv.StreamURL(""))
	if err != nil {
		log.Fatal(err)
	}
	_, err = client.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json",
		Data: []byte(`[{"id":1,"item":"tea"},{"id":2,"item":"jam"},{"id":3,"item":"oats"}]`), Closed: true})
	if err != nil {
		log.Fatal(err)
	}

	schema := exampleSchema("consumer") // the store's tables and ours
	store, err := pgstore.Connect(ctx, exampleDB(), pgstore.WithSchema(schema))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	defer store.Pool().Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`)
	if _, err := store.Pool().Exec(ctx, `CREATE TABLE `+schema+`.orders (id int PRIMARY KEY, item text)`); err != nil {
		log.Fatal(err)
	}

	// One replica at a time reads with the key "orders-to-table".
	c, err := pgstore.NewConsumer[Order](store, client, "orders", "orders-to-table", pgstore.WithExclusive())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	err = c.Run(ctx, func(ctx context.Context, tx pgx.Tx, msg durable.Message[Order]) error {
		_, err := tx.Exec(ctx, `INSERT INTO `+schema+`.orders VALUES ($1, $2)`, msg.Value.ID, msg.Value.Item)
		return err // the row and the position commit together, or neither does
	})
	var rows int
	if err := store.Pool().QueryRow(ctx, `SELECT count(*) FROM `+schema+`.orders`).Scan(&rows); err != nil {
		log.Fatal(err)
	}
	fmt.Println("rows:", rows, "error:", err)
	// Output:
	// rows: 3 error: <nil>
}

// With a Reader of your own, write the position with Store.CommitTx in the
// transaction of your writes. Several messages may share one transaction:
// commit the last one's position.
func ExampleStore_CommitTx() {
	srv := testserver.New()
	defer srv.Close()
	client, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	client.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json",
		Data: []byte(`[{"id":1,"item":"tea"},{"id":2,"item":"jam"},{"id":3,"item":"oats"}]`)})

	schema := exampleSchema("committx")
	store, err := pgstore.Connect(ctx, exampleDB(), pgstore.WithSchema(schema))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	defer store.Pool().Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`)
	store.Pool().Exec(ctx, `CREATE TABLE `+schema+`.orders (id int PRIMARY KEY, item text)`)

	r, _ := durable.NewReader(client, "orders", durable.JSONCodec[Order]{}, durable.WithStore(store), durable.WithKey("batch"),
		durable.WithManualCommit(), durable.WithLive(durable.LiveNone))
	defer r.Close(context.Background())
	tx, err := store.Pool().Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var last durable.Message[Order]
	for msg, err := range r.Messages(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		tx.Exec(ctx, `INSERT INTO `+schema+`.orders VALUES ($1, $2)`, msg.Value.ID, msg.Value.Item)
		last = msg
	}
	if err := store.CommitTx(ctx, tx, "batch", last.Position); err != nil {
		log.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	r.Commit(ctx, last.Position) // tell the Reader; the row is already there
	saved := r.Stats().Committed
	fmt.Println("committed 3 orders in one transaction; saved position equals the last message's:", saved == last.Position)
	// Output:
	// committed 3 orders in one transaction; saved position equals the last message's: true
}
