package durable_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
)

// Order is the message type of the Reader examples.
type Order struct {
	ID   int    `json:"id"`
	Item string `json:"item"`
}

// A service tails a stream, saving its position in an offset file after
// each message; restarted, it carries on right after the last committed
// message.
func ExampleNewReader_resume() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json",
		Data: []byte(`[{"id":1,"item":"tea"},{"id":2,"item":"jam"},{"id":3,"item":"oats"}]`)}); err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "durable-example")
	defer os.RemoveAll(dir)
	store, err := offsetstore.OpenFile(filepath.Join(dir, "offsets.json"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// First run: handle two orders, committing each once handled.
	r, _ := durable.NewReader(c, "orders", durable.JSONCodec[Order]{}, durable.WithStore(store), durable.WithManualCommit())
	for i := 0; i < 2; i++ {
		m, err := r.Next(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("run 1:", m.Value.ID, m.Value.Item)
		if err := r.Commit(ctx, m.Position); err != nil {
			log.Fatal(err)
		}
	}
	r.Close(context.Background())

	// Meanwhile the stream grows, then is closed.
	c.AppendJSON(ctx, "orders", Order{ID: 4, Item: "figs"}, durable.AppendOptions{})
	c.CloseStream(ctx, "orders", nil, durable.AppendOptions{})

	// Second run, same store: it resumes inside the first batch, after
	// order 2, and ends with the stream.
	r2, _ := durable.NewReader(c, "orders", durable.JSONCodec[Order]{}, durable.WithStore(store), durable.WithManualCommit())
	defer r2.Close(context.Background())
	for {
		m, err := r2.Next(ctx)
		if err != nil {
			fmt.Println("end:", err)
			break
		}
		fmt.Println("run 2:", m.Value.ID, m.Value.Item)
		if err := r2.Commit(ctx, m.Position); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// run 1: 1 tea
	// run 1: 2 jam
	// run 2: 3 oats
	// run 2: 4 figs
	// end: EOF
}

// Messages is a range-over-func iterator; it ends without an error when a
// closed stream is exhausted (or, in live mode none, when caught up). A
// message that does not decode is a *DecodeError: log it and continue to
// skip it. Cancelling ctx (Ctrl-C) ends the loop with context.Canceled,
// which is how a service stops, not a failure.
func ExampleReader_Messages() {
	srv := testserver.New()
	defer srv.Close()
	c, err := durable.NewClient(srv.URL()) // the server root: streams under /v1/stream/
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json", Closed: true,
		Data: []byte(`[{"id":1,"item":"tea"},{"id":"two"},{"id":3,"item":"jam"}]`)}); err != nil {
		log.Fatal(err)
	}

	r, err := durable.NewReader(c, "orders", durable.JSONCodec[Order]{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close(ctx)
	for m, err := range r.Messages(ctx) {
		var de *durable.DecodeError
		switch {
		case errors.As(err, &de):
			fmt.Println("skipped the message at index", de.Index, "of its batch")
			continue
		case errors.Is(err, context.Canceled):
			return // stopped
		case err != nil:
			log.Fatal(err)
		}
		fmt.Printf("%d %s\n", m.Value.ID, m.Value.Item)
	}
	fmt.Println("closed:", r.Stats().StreamClosed)
	// Output:
	// 1 tea
	// skipped the message at index 1 of its batch
	// 3 jam
	// closed: true
}
