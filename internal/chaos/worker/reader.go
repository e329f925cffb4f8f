package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/chaos"
	"github.com/durablego/durable/offsetstore"
)

// runReader tails the stream until it is closed and fully handled (nil) or
// ctx ends (nil), logging and committing every message.
func runReader(ctx context.Context, c config) error {
	store, pos, ok, logLen, err := openLogStore(ctx, c.path("offsets"), c.id)
	if err != nil {
		return err
	}
	defer store.Close()
	if !ok {
		pos = offsetstore.Position{Offset: string(durable.OffsetStart)}
	}
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
	say("ready offset=%s skip=%d log=%d", pos.Offset, pos.Skip, logLen)

	n := 0
	for {
		chunk, err := client.Read(ctx, c.stream, durable.ReadOptions{Offset: durable.Offset(pos.Offset), Live: durable.LiveLongPoll})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			say("retry %v", err)
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		var msgs []json.RawMessage
		if len(chunk.Data) > 0 {
			if err := json.Unmarshal(chunk.Data, &msgs); err != nil {
				return fmt.Errorf("read at %s: %w", pos.Offset, err)
			}
		}
		from := pos.Offset
		for i := int(pos.Skip); i < len(msgs); i++ {
			p := offsetstore.Position{Offset: from, Skip: int64(i + 1)}
			if i == len(msgs)-1 {
				p = offsetstore.Position{Offset: string(chunk.NextOffset)}
			}
			size, err := log.Append(chaos.HandledRecord{Offset: p.Offset, Skip: p.Skip, M: msgs[i]})
			if err != nil {
				return err
			}
			store.handled(p, size)
			p.Meta = strconv.FormatInt(size, 10)
			if err := store.Save(ctx, c.id, p); err != nil {
				return err
			}
			pos = p
			n++
		}
		if len(msgs) <= int(pos.Skip) && pos.Offset == from {
			pos = offsetstore.Position{Offset: string(chunk.NextOffset), Skip: pos.Skip - int64(len(msgs))}
		}
		if chunk.Closed {
			say("done handled=%d", n)
			return nil
		}
	}
}
