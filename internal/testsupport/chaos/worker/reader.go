package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/testsupport/chaos"
)

// runReader tails the stream with a durable.Reader until the stream is
// closed and every message handled (nil), or ctx ends (nil). Each message is
// handled by appending it to the handled log (fsynced), then committed with
// the log's new length in Position.Meta; on restart the log is cut back to
// the length saved with the position (see package chaos).
func runReader(ctx context.Context, c config) error {
	store, pos, ok, logLen, err := openLogStore(ctx, c.path("offsets"), c.id)
	if err != nil {
		return err
	}
	defer store.Close()
	log, err := chaos.OpenLog(c.path("handled"), logLen)
	if err != nil {
		return err
	}
	defer log.Close()
	client, err := newClient(c)
	if err != nil {
		return err
	}
	defer client.CloseIdleConnections()
	var live durable.LiveMode
	switch c.live {
	case "long-poll":
		live = durable.LiveLongPoll
	case "sse":
		live = durable.LiveSSE
	case "auto":
		live = durable.LiveAuto
	default:
		return fmt.Errorf("unknown -live %q", c.live)
	}
	r, err := durable.NewReader(client, c.stream, durable.JSONCodec[chaos.Event]{},
		durable.WithStore(store),
		durable.WithKey(c.id),
		durable.WithManualCommit(),
		durable.WithLive(live),
		durable.WithRetry(durable.RetryPolicy{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}))
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	if ok {
		say("ready offset=%s skip=%d log=%d", pos.Offset, pos.Skip, logLen)
	} else {
		say("ready from the start")
	}

	n := 0
	for {
		msg, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			st := r.Stats()
			say("done handled=%d delivered=%d requests=%d retries=%d stale=%d commits=%d",
				n, st.Delivered, st.Requests, st.Retries, st.Stale, st.Commits)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		size, err := log.Append(chaos.HandledRecord{Offset: msg.Position.Offset, Skip: msg.Position.Skip, M: append([]byte(nil), msg.Data...)})
		if err != nil {
			return err
		}
		store.handled(msg.Position, size)
		msg.Position.Meta = strconv.FormatInt(size, 10)
		if err := r.Commit(ctx, msg.Position); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		n++
	}
}
