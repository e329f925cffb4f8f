package jsoncodec_test

import (
	"context"
	"fmt"

	"github.com/durablego/durable"
	"github.com/durablego/durable/jsoncodec"
	"github.com/durablego/durable/testserver"
)

type Order struct {
	ID    int     `json:"id"`
	Total float64 `json:"total"`
}

// A Writer and a Reader of Orders, both encoding and decoding with
// jsoncodec instead of encoding/json.
func Example() {
	srv := testserver.New()
	defer srv.Close()
	ctx := context.Background()
	c, err := durable.NewClient(srv.StreamURL(""))
	if err != nil {
		panic(err)
	}
	defer c.CloseIdleConnections()
	if _, err := c.Create(ctx, "orders", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		panic(err)
	}
	codec := jsoncodec.Codec[Order]{}

	w, err := durable.NewWriter(c, "orders", codec)
	if err != nil {
		panic(err)
	}
	for i := 1; i <= 3; i++ {
		if err := w.Write(ctx, Order{ID: i, Total: 9.5 * float64(i)}); err != nil {
			panic(err)
		}
	}
	if err := w.Close(ctx); err != nil {
		panic(err)
	}

	r, err := durable.NewReader(c, "orders", codec, durable.WithLive(durable.LiveNone))
	if err != nil {
		panic(err)
	}
	defer r.Close(context.Background())
	for m, err := range r.Messages(ctx) {
		if err != nil {
			break // durable.ErrCaughtUp: the stream has nothing more for now
		}
		fmt.Printf("order %d: %.2f\n", m.Value.ID, m.Value.Total)
	}
	// Output:
	// order 1: 9.50
	// order 2: 19.00
	// order 3: 28.50
}
