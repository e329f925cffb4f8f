package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/testsupport/chaos"
	"github.com/durablego/durable/offsetstore"
)

// pendingAck is an event handed to the Writer and the Ack to wait for (or,
// for WriteSync, the offset it returned).
type pendingAck struct {
	ev  chaos.Event
	ack *durable.Ack
	off durable.Offset
}

// runWriter appends events with a durable.Writer in small bursts until ctx
// ends, then closes the Writer (flushing what it holds). Every event the
// Writer acknowledged is logged, in order, to the ack log.
func runWriter(ctx context.Context, c config) error {
	store, err := offsetstore.OpenFile(c.path("offsets"))
	if err != nil {
		return err
	}
	defer store.Close()
	// The epoch the Writer will claim: the one saved by the previous
	// incarnation + 1, or 0 (see WithEpochStore). It is written into every
	// event, and checked against the Writer's once the first batch landed.
	var epoch int64
	if prev, ok, err := store.LoadEpoch(ctx, c.id); err != nil {
		return err
	} else if ok {
		epoch = prev + 1
	}

	// Resume after the last acknowledged event.
	acked, _, err := chaos.ReadLog[chaos.AckRecord](c.path("acks"))
	if err != nil {
		return err
	}
	var next int64
	for _, a := range acked {
		next = max(next, a.S+1)
	}
	log, err := chaos.OpenLog(c.path("acks"), -1)
	if err != nil {
		return err
	}
	defer log.Close()

	client, err := newClient(c)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	w, err := durable.NewWriter(client, c.stream, durable.JSONCodec[chaos.Event]{},
		durable.WithProducerID(c.id),
		durable.WithEpochStore(store),
		durable.WithMaxBatch(c.batch, 1<<20),
		durable.WithMaxInFlight(c.inflight),
		durable.WithRetry(durable.RetryPolicy{
			Initial:    50 * time.Millisecond,
			Max:        time.Second,
			Multiplier: 2,
			Jitter:     0.2,
			MaxElapsed: 2 * time.Minute,
		}))
	if err != nil {
		return err
	}
	say("ready epoch=%d next=%d", epoch, next)

	// The logger waits for the acks in write order and logs each.
	acks := make(chan pendingAck, 1<<16)
	logged := make(chan int)
	go func() {
		n := 0
		for p := range acks {
			off, err := p.off, error(nil)
			if p.ack != nil {
				off, err = p.ack.Wait(context.Background())
			}
			if err != nil {
				fail(c, fmt.Errorf("event %d (epoch %d) lost: %w", p.ev.S, p.ev.E, err))
			}
			if n == 0 && w.Producer().Epoch != epoch {
				fail(c, fmt.Errorf("the Writer claimed epoch %d, expected %d", w.Producer().Epoch, epoch))
			}
			if _, err := log.Append(chaos.AckRecord{W: p.ev.W, E: p.ev.E, S: p.ev.S, O: string(off)}); err != nil {
				fail(c, err)
			}
			n++
		}
		logged <- n
	}()

	// Bursts of 1..8 events, rate events per second on average; the last
	// event of one burst in four is written with WriteSync (sealing the
	// batch at once and waiting for it), the others with WriteAsync.
	tick := time.NewTicker(time.Duration(4.5 * float64(time.Second) / c.rate))
	defer tick.Stop()
	written := 0
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		n, sync := 1+rand.IntN(8), rand.IntN(4) == 0
		for i := range n {
			ev := chaos.Event{W: c.id, E: epoch, S: next}
			p := pendingAck{ev: ev}
			var err error
			if sync && i == n-1 {
				p.off, err = w.WriteSync(ctx, ev)
			} else {
				p.ack, err = w.WriteAsync(ctx, ev)
			}
			if ctx.Err() != nil {
				break loop // not acknowledged (a WriteSync may still land)
			}
			if err != nil {
				return fmt.Errorf("write event %d: %w", next, err)
			}
			acks <- p
			next++
			written++
		}
	}

	// Stopping: flush everything written, log the last acks.
	cctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cerr := w.Close(cctx)
	close(acks)
	n := <-logged
	if cerr != nil {
		return fmt.Errorf("close: %w", cerr)
	}
	say("done written=%d acked=%d next=%d", written, n, next)
	return nil
}

// fail ends the process at once: a worker that cannot trust its state must
// not go on.
func fail(c config, err error) {
	fmt.Fprintf(os.Stderr, "worker %s: %v\n", c.id, err)
	os.Exit(1)
}
