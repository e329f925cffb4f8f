package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
)

// clientSource reads a stream with Client.Read: catch-up reads, then live
// reads (long-poll or SSE). It resumes from a position (offset, skip).
type clientSource struct {
	cl     *durable.Client
	stream string
	live   durable.LiveMode

	off      durable.Offset
	skip     int64 // messages/bytes still to drop at off (first read only)
	cursor   string
	upToDate bool
	closed   bool
	queue    []tailMsg
}

func openSource(cl *durable.Client, stream string, start offsetstore.Position, live durable.LiveMode, _ bool) (source, error) {
	if live == durable.LiveAuto || live == durable.LiveSSE {
		live = durable.LiveLongPoll // stand-in until the Reader is merged
	}
	return &clientSource{cl: cl, stream: stream, live: live, off: durable.Offset(start.Offset), skip: start.Skip}, nil
}

func (s *clientSource) next(ctx context.Context) (tailMsg, error) {
	for len(s.queue) == 0 {
		if s.closed {
			return tailMsg{}, io.EOF
		}
		if s.upToDate && s.live == durable.LiveNone {
			return tailMsg{}, errCaughtUp
		}
		opts := durable.ReadOptions{Offset: s.off, Cursor: s.cursor}
		if s.upToDate {
			opts.Live = s.live
		}
		ch, err := s.cl.Read(ctx, s.stream, opts)
		if err != nil {
			return tailMsg{}, err
		}
		if err := s.split(ch); err != nil {
			return tailMsg{}, err
		}
	}
	m := s.queue[0]
	s.queue = s.queue[1:]
	m.upToDate = s.upToDate && len(s.queue) == 0
	return m, nil
}

// split queues the messages of a chunk with their positions.
func (s *clientSource) split(ch durable.Chunk) error {
	from := s.off
	s.off, s.cursor = ch.NextOffset, ch.Cursor
	s.upToDate = ch.UpToDate || ch.Closed
	s.closed = ch.Closed
	if len(ch.Data) == 0 {
		return nil
	}
	if !isJSONType(ch.ContentType) {
		data := ch.Data
		if s.skip > 0 {
			if s.skip >= int64(len(data)) {
				return fmt.Errorf("saved position skips %d bytes at %s, but only %d were read", s.skip, from, len(data))
			}
			data = data[s.skip:]
			s.skip = 0
		}
		s.queue = append(s.queue, tailMsg{data: data, pos: offsetstore.Position{Offset: string(ch.NextOffset)}})
		return nil
	}
	var msgs []json.RawMessage
	if err := json.Unmarshal(ch.Data, &msgs); err != nil {
		return fmt.Errorf("read at %s: %w", from, err)
	}
	for i, m := range msgs {
		if int64(i) < s.skip {
			continue
		}
		p := offsetstore.Position{Offset: string(from), Skip: int64(i + 1)}
		if i == len(msgs)-1 {
			p = offsetstore.Position{Offset: string(ch.NextOffset)}
		}
		s.queue = append(s.queue, tailMsg{data: m, pos: p, json: true})
	}
	s.skip = 0
	return nil
}

func (s *clientSource) close() error { return nil }
