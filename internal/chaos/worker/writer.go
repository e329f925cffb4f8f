package main

import (
	"context"
	"fmt"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/chaos"
	"github.com/durablego/durable/offsetstore"
)

// runWriter appends events until ctx ends, logging every acknowledged one.
func runWriter(ctx context.Context, c config) error {
	store, err := offsetstore.OpenFile(c.path("offsets"))
	if err != nil {
		return err
	}
	defer store.Close()
	// One epoch per process: the last claimed epoch + 1.
	var epoch int64
	if prev, ok, err := store.LoadEpoch(ctx, c.id); err != nil {
		return err
	} else if ok {
		epoch = prev + 1
	}
	if err := store.SaveEpoch(ctx, c.id, epoch); err != nil {
		return err
	}

	// Resume after the last acknowledged event.
	acked, _, err := chaos.ReadLog[chaos.AckRecord](c.path("acks"))
	if err != nil {
		return err
	}
	var next int64
	for _, a := range acked {
		if a.S >= next {
			next = a.S + 1
		}
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
	say("ready epoch=%d next=%d", epoch, next)

	tick := time.NewTicker(time.Duration(float64(time.Second) / c.rate))
	defer tick.Stop()
	var seq int64 // producer sequence (one event per request)
	n := 0
	for {
		select {
		case <-ctx.Done():
			say("done acked=%d next=%d", n, next)
			return nil
		case <-tick.C:
		}
		ev := chaos.Event{W: c.id, E: epoch, S: next}
		// The request is abandoned only when the process is told to stop:
		// the event is then not acknowledged.
		res, err := client.AppendJSON(ctx, c.stream, ev, durable.AppendOptions{
			Producer: &durable.Producer{ID: c.id, Epoch: epoch, Seq: seq},
		})
		if ctx.Err() != nil {
			say("done acked=%d next=%d", n, next)
			return nil
		}
		if err != nil {
			return fmt.Errorf("append seq %d: %w", next, err)
		}
		if _, err := log.Append(chaos.AckRecord{W: ev.W, E: ev.E, S: ev.S, O: string(res.NextOffset)}); err != nil {
			return err
		}
		n++
		next++
		seq++
	}
}
