package durable_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
)

type OrderEvent struct {
	ID    int    `json:"id"`
	State string `json:"state"`
}

// printJSONStream prints every message of a JSON stream.
func printJSONStream(ctx context.Context, c *durable.Client, stream string) {
	ch, err := c.Read(ctx, stream, durable.ReadOptions{Offset: durable.OffsetStart})
	if err != nil {
		log.Fatal(err)
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(ch.Data, &msgs); err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		fmt.Println(string(m))
	}
}

// Write queues values; they are batched and sent in the background. Flush
// waits until everything written so far has landed, and reports a loss.
func ExampleWriter() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		log.Fatal(err)
	}

	w, err := durable.NewWriter(c, "orders", durable.JSONCodec[OrderEvent]{}, durable.WithProducerID("order-service"))
	if err != nil {
		log.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if err := w.Write(ctx, OrderEvent{ID: i, State: "created"}); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Flush(ctx); err != nil {
		log.Fatal(err) // a batch could not land
	}
	if err := w.Close(ctx); err != nil {
		log.Fatal(err)
	}
	printJSONStream(ctx, c, "orders")
	// Output:
	// {"id":1,"state":"created"}
	// {"id":2,"state":"created"}
	// {"id":3,"state":"created"}
}

// WriteSync sends at once (no linger) and returns when the message has
// landed, with the offset after it.
func ExampleWriter_WriteSync() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "payments", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		log.Fatal(err)
	}
	w, err := durable.NewWriter(c, "payments", durable.JSONCodec[OrderEvent]{})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)

	off, err := w.WriteSync(ctx, OrderEvent{ID: 7, State: "paid"})
	if err != nil {
		log.Fatal(err)
	}
	info, _ := c.Head(ctx, "payments")
	fmt.Println("landed at the tail:", off == info.NextOffset)
	last, _ := w.LastAcked()
	fmt.Println("last acked:", last == off)
	// Output:
	// landed at the tail: true
	// last acked: true
}

// A restarted worker loads its last epoch from a store and uses the next
// one, which fences the previous incarnation if it is still running.
func ExampleWithEpochStore() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "jobs", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		log.Fatal(err)
	}
	store := offsetstore.NewMemory() // offsetstore.OpenFile in production

	old, _ := durable.NewWriter(c, "jobs", durable.JSONCodec[string]{}, durable.WithProducerID("worker-1"), durable.WithEpochStore(store))
	defer old.Close(ctx)
	if _, err := old.WriteSync(ctx, "from the first run"); err != nil {
		log.Fatal(err)
	}

	restarted, _ := durable.NewWriter(c, "jobs", durable.JSONCodec[string]{}, durable.WithProducerID("worker-1"), durable.WithEpochStore(store))
	defer restarted.Close(ctx)
	if _, err := restarted.WriteSync(ctx, "from the restart"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("epochs:", old.Producer().Epoch, restarted.Producer().Epoch)

	_, err := old.WriteSync(ctx, "from the zombie")
	fmt.Println("zombie fenced:", errors.Is(err, durable.ErrStaleEpoch))
	printJSONStream(ctx, c, "jobs")
	// Output:
	// epochs: 0 1
	// zombie fenced: true
	// "from the first run"
	// "from the restart"
}

// CloseStream appends a final message and closes the stream for readers.
func ExampleWriter_CloseStream() {
	srv := testserver.New()
	defer srv.Close()
	c, _ := durable.NewClient(srv.StreamURL(""))
	ctx := context.Background()
	if _, err := c.Create(ctx, "job-42", durable.CreateOptions{ContentType: "text/plain"}); err != nil {
		log.Fatal(err)
	}
	w, err := durable.NewWriter(c, "job-42", durable.BytesCodec{}, durable.WithContentType("text/plain"))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close(ctx)
	_ = w.Write(ctx, []byte("step 1\n"))
	_ = w.Write(ctx, []byte("step 2\n"))
	if err := w.CloseStream(ctx, []byte("done\n")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(errors.Is(w.Write(ctx, []byte("late\n")), durable.ErrStreamClosed))

	ch, _ := c.Read(ctx, "job-42", durable.ReadOptions{Offset: durable.OffsetStart})
	fmt.Print(string(ch.Data))
	fmt.Println("closed:", ch.Closed)
	// Output:
	// true
	// step 1
	// step 2
	// done
	// closed: true
}
