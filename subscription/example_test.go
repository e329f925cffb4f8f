package subscription_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/subscription"
	"github.com/durablego/durable/testserver"
)

// Order is the example's message type.
type Order struct {
	ID    int    `json:"id"`
	Item  string `json:"item"`
	Store string `json:"store"`
}

// A Worker processes every stream under orders/*: it claims the
// subscription's lease when there is work, reads each stream with pending
// messages from its acked offset, and hands the messages to the handler in
// order, acking as the handler returns. Run it in every process that should
// share the work.
func ExampleWorker() {
	srv := testserver.New(testserver.WithSubscriptions(true))
	defer srv.Close()
	client, err := durable.NewClient(srv.URL() + "/v1/stream/")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range []string{"orders/berlin", "wake/orders"} {
		if _, err := client.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"}); err != nil {
			log.Fatal(err)
		}
	}

	// The subscription: created once (creating it again with the same
	// configuration only re-confirms it).
	sub, err := subscription.Open(client, "order-processor")
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := sub.Create(ctx, subscription.Config{
		Type: subscription.PullWake, Pattern: "orders/*", WakeStream: "wake/orders",
	}); err != nil {
		log.Fatal(err)
	}
	for i, item := range []string{"tea", "cake", "jam"} {
		order := Order{ID: i + 1, Item: item, Store: "berlin"}
		if _, err := client.AppendJSON(ctx, "orders/berlin", order, durable.AppendOptions{}); err != nil {
			log.Fatal(err)
		}
	}

	// The worker, until its context ends.
	runCtx, stop := context.WithCancel(ctx)
	handled := 0
	w, err := subscription.NewWorker(client, "order-processor", func(ctx context.Context, m subscription.Message[Order]) error {
		fmt.Printf("%s: order %d, %s\n", m.Stream, m.Value.ID, m.Value.Item)
		if handled++; handled == 3 {
			stop() // the example ends here; the progress is acked on the way out
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Run(runCtx); err != nil {
		log.Fatal(err)
	}

	info, err := sub.Get(ctx)
	if err != nil {
		log.Fatal(err)
	}
	tail, err := client.Head(ctx, "orders/berlin")
	if err != nil {
		log.Fatal(err)
	}
	link, _ := info.Link("orders/berlin")
	fmt.Println("acked to the tail:", link.Acked == tail.NextOffset)
	// Output:
	// orders/berlin: order 1, tea
	// orders/berlin: order 2, cake
	// orders/berlin: order 3, jam
	// acked to the tail: true
}

// The low-level calls: claim the lease, read the pending streams (here
// with a plain Reader), ack with done.
func ExampleSubscription_Claim() {
	srv := testserver.New(testserver.WithSubscriptions(true))
	defer srv.Close()
	client, err := durable.NewClient(srv.URL() + "/v1/stream/")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for _, s := range []string{"jobs/a", "wake/jobs"} {
		if _, err := client.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"}); err != nil {
			log.Fatal(err)
		}
	}
	sub, err := subscription.Open(client, "jobs")
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := sub.Create(ctx, subscription.Config{Type: subscription.PullWake, Pattern: "jobs/*", WakeStream: "wake/jobs"}); err != nil {
		log.Fatal(err)
	}
	if _, err := client.AppendJSON(ctx, "jobs/a", map[string]string{"job": "resize"}, durable.AppendOptions{}); err != nil {
		log.Fatal(err)
	}

	wake, err := sub.Claim(ctx, "worker-1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("claimed generation %d, token %v\n", wake.Generation, wake.Token)
	var acks []subscription.Ack
	for _, l := range wake.Pending() {
		r, err := durable.NewReader(client, l.Path, durable.JSONCodec[map[string]string]{},
			durable.WithStart(l.Acked), durable.WithLive(durable.LiveNone))
		if err != nil {
			log.Fatal(err)
		}
		for m, err := range r.Messages(ctx) {
			if err != nil {
				break // durable.ErrCaughtUp: everything pending was read
			}
			fmt.Println(l.Path, m.Value["job"])
			acks = append(acks, subscription.Ack{Stream: l.Path, Offset: durable.Offset(m.Position.Offset)})
		}
		_ = r.Close(ctx)
	}
	next, err := sub.Ack(ctx, wake, true, acks...)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("done, next wake:", next)
	_, err = sub.Claim(ctx, "worker-1")
	fmt.Println(err)
	// Output:
	// claimed generation 1, token [redacted]
	// jobs/a resize
	// done, next wake: false
	// subscription claim "jobs": no pending work (HTTP 409): no linked stream has pending work
}

// A Receiver verifies each webhook delivery's signature before anything
// else, then works the wake like a Worker, acking through callbacks.
func ExampleReceiver() {
	srv := testserver.New(testserver.WithSubscriptions(true), testserver.WithLoopbackWebhooks(true))
	defer srv.Close()
	client, err := durable.NewClient(srv.URL() + "/v1/stream/")
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := client.Create(ctx, "alerts/disk", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		log.Fatal(err)
	}

	got := make(chan string, 1)
	recv, err := subscription.NewReceiver(client, func(ctx context.Context, m subscription.Message[string]) error {
		got <- m.Stream + ": " + m.Value
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer recv.Close()
	hook := httptest.NewServer(recv) // in production: your HTTPS endpoint
	defer hook.Close()

	sub, err := subscription.Open(client, "alerting")
	if err != nil {
		log.Fatal(err)
	}
	if _, _, err := sub.Create(ctx, subscription.Config{Type: subscription.Webhook, Pattern: "alerts/*", WebhookURL: hook.URL}); err != nil {
		log.Fatal(err)
	}
	if _, err := client.AppendJSON(ctx, "alerts/disk", "disk 91% full", durable.AppendOptions{}); err != nil {
		log.Fatal(err)
	}
	select {
	case s := <-got:
		fmt.Println(s)
	case <-time.After(10 * time.Second):
		fmt.Println("no delivery")
	}
	// Output:
	// alerts/disk: disk 91% full
}
