package subscription

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

// benchWork is what the benchmark's handler spends on each message: a
// wait, as for a call to another service (the CPU is shared by every
// worker of the benchmark, so CPU-bound work would measure the machine).
const benchWork = 2 * time.Millisecond

// BenchmarkSubscription measures messages per second through one
// subscription and through N shards, with 4 workers (as 4 processes would
// run them: separate Workers, each handling up to 4 streams at once)
// working 64 streams whose messages are all pending when the timer starts.
// One subscription has one lease: one worker works at a time, however many
// there are. With N shards up to N leases are held at once.
//
//	go test -run '^$' -bench BenchmarkSubscription -benchtime 20000x -count 6 ./subscription/
func BenchmarkSubscription(b *testing.B) {
	for _, shards := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("shards=%d", shards), func(b *testing.B) { benchSubscription(b, shards, 4) })
	}
}

func benchSubscription(b *testing.B, shards, workers int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv := testserver.New(testserver.WithSubscriptions(true))
	defer srv.Close()
	c, err := durable.NewClient(srv.URL() + "/v1/stream/")
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	sh := Sharding{ID: "bench", Prefix: "bench", N: shards}
	if _, err := c.Create(ctx, "wake/bench", durable.CreateOptions{ContentType: "application/json"}); err != nil {
		b.Fatal(err)
	}
	if err := sh.Create(ctx, c, Config{Type: PullWake, WakeStream: "wake/bench", LeaseTTL: 5 * time.Second}); err != nil {
		b.Fatal(err)
	}
	const streams = 64
	writers := make([]*durable.Writer[item], streams)
	for i := range writers {
		s := sh.Stream(fmt.Sprintf("key-%d", i))
		if _, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"}); err != nil {
			b.Fatal(err)
		}
		if writers[i], err = durable.NewWriter(c, s, durable.JSONCodec[item]{}); err != nil {
			b.Fatal(err)
		}
	}
	for n := range b.N {
		if err := writers[n%streams].Write(ctx, item{Seq: n}); err != nil {
			b.Fatal(err)
		}
	}
	for _, w := range writers {
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}

	var handled atomic.Int64
	all := make(chan struct{})
	h := func(ctx context.Context, m Message[item]) error {
		t := time.NewTimer(benchWork)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
		if handled.Add(1) == int64(b.N) {
			close(all)
		}
		return nil
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, workers)
	b.ResetTimer()
	start := time.Now()
	for i := range workers {
		w, err := NewWorker(c, sh.ID, h, WithShards(shards), WithName(fmt.Sprintf("w%d", i)), WithConcurrency(4))
		if err != nil {
			b.Fatal(err)
		}
		go func() { done <- w.Run(wctx) }()
	}
	select {
	case <-all:
	case <-ctx.Done():
		b.Fatal("not every message was handled")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	for range workers {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
