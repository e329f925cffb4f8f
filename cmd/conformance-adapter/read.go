package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/durablego/durable"
)

// readState collects what a read command reports.
type readState struct {
	chunks   []readChunk
	offset   durable.Offset
	upToDate bool
	closed   bool
	cursor   string
	status   int
	json     bool
}

// add records one chunk of data read up to off; no data (or, on a JSON
// stream, an empty array) adds nothing.
func (s *readState) add(data []byte, off durable.Offset) {
	if len(data) == 0 {
		return
	}
	if s.json {
		var buf bytes.Buffer
		if json.Compact(&buf, data) == nil {
			data = buf.Bytes()
		}
		if string(data) == "[]" {
			return // no messages (an SSE data event may carry an empty batch)
		}
	}
	ch := readChunk{Offset: string(off)}
	if utf8.Valid(data) {
		ch.Data = string(data)
	} else {
		ch.Data, ch.Binary = base64.StdEncoding.EncodeToString(data), true
	}
	s.chunks = append(s.chunks, ch)
}

func (s *readState) result() result {
	chunks := s.chunks
	if chunks == nil {
		chunks = []readChunk{}
	}
	return result{
		Type: "read", Success: true, Status: or(s.status, http.StatusOK), Chunks: &chunks,
		Offset: string(s.offset), UpToDate: ptr(s.upToDate), StreamClosed: ptr(s.closed), Cursor: s.cursor,
	}
}

// read reads a stream: catch-up only (live false), catch-up then long-poll
// or SSE, or auto (live true) through a Reader. It stops when the stream is
// closed, after maxChunks chunks with data, when up to date if asked
// (always for catch-up), or when timeoutMs has passed: the end of a live
// read, not an error.
func (a *adapter) read(ctx context.Context, cmd *command) result {
	mode, err := liveMode(cmd.Live)
	if err != nil {
		return errResult("read", codeInvalidArgument, 0, err.Error())
	}
	timeout := defaultReadTimeout
	if cmd.TimeoutMs != nil && *cmd.TimeoutMs > 0 {
		timeout = time.Duration(*cmd.TimeoutMs) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, min(timeout, maxCommandTimeout))
	defer cancel()
	c, err := a.client(cmd.Headers)
	if err != nil {
		return failure("read", err, true)
	}
	maxChunks := 100
	if cmd.MaxChunks != nil && *cmd.MaxChunks > 0 {
		maxChunks = *cmd.MaxChunks
	}
	st := &readState{offset: durable.Offset(cmd.Offset)}
	if st.offset == "" {
		st.offset = durable.OffsetStart
	}
	if ct, ok := a.ctypes[cmd.Path]; ok {
		st.json = isJSON(ct)
	}
	if mode == durable.LiveAuto {
		err = a.readAuto(ctx, c, cmd, st, maxChunks)
	} else {
		err = a.readRequests(ctx, c, cmd, mode, st, maxChunks)
	}
	if err != nil {
		return a.withSent(failure("read", err, true))
	}
	return a.withSent(st.result())
}

func liveMode(raw json.RawMessage) (durable.LiveMode, error) {
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "false" {
		return durable.LiveNone, nil
	}
	if string(raw) == "true" {
		return durable.LiveAuto, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("live: %s is not false, true, \"long-poll\" or \"sse\"", raw)
	}
	switch durable.LiveMode(s) {
	case durable.LiveLongPoll, durable.LiveSSE:
		return durable.LiveMode(s), nil
	}
	return "", fmt.Errorf("live: unknown mode %q", s)
}

// timedOut reports whether err is the read's own deadline, which ends a live
// read normally.
func timedOut(ctx context.Context, err error) bool {
	return ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded)
}

// readRequests reads with Client.Read: catch-up requests until up to date,
// then long-poll requests or SSE connections (Client.OpenSSE).
func (a *adapter) readRequests(ctx context.Context, c *durable.Client, cmd *command, mode durable.LiveMode, st *readState, maxChunks int) error {
	u := a.streamURL(cmd.Path)
	live := false
	for {
		if live && mode == durable.LiveSSE {
			return a.readSSE(ctx, c, u, cmd, st, maxChunks)
		}
		opts := durable.ReadOptions{Offset: st.offset, Cursor: st.cursor}
		if live {
			opts.Live = durable.LiveLongPoll
		}
		a.dyn.begin()
		ch, err := c.Read(ctx, u, opts)
		if err != nil {
			if mode != durable.LiveNone && timedOut(ctx, err) {
				return nil
			}
			return err
		}
		if ch.ContentType != "" {
			a.ctypes[cmd.Path] = ch.ContentType
			st.json = isJSON(ch.ContentType)
		}
		st.status = http.StatusOK
		if live && len(ch.Data) == 0 && !ch.Closed {
			st.status = http.StatusNoContent // a long-poll that timed out on the server
		}
		st.add(ch.Data, ch.NextOffset)
		st.offset, st.upToDate, st.closed = ch.NextOffset, ch.UpToDate, ch.Closed
		if ch.Cursor != "" {
			st.cursor = ch.Cursor
		}
		switch {
		case st.closed, len(st.chunks) >= maxChunks:
			return nil
		case st.upToDate && (mode == durable.LiveNone || cmd.WaitForUpToDate):
			return nil
		case st.upToDate:
			live = true
		}
	}
}

// readSSE follows SSE connections from st.offset, reconnecting from the
// last control event when the server ends one.
func (a *adapter) readSSE(ctx context.Context, c *durable.Client, u string, cmd *command, st *readState, maxChunks int) error {
	for {
		a.dyn.begin()
		s, err := c.OpenSSE(ctx, u, durable.ReadOptions{Offset: st.offset, Cursor: st.cursor, ContentType: a.ctypes[cmd.Path]})
		if err != nil {
			if timedOut(ctx, err) {
				return nil
			}
			return err
		}
		got := false
		for {
			ch, err := s.Next(ctx)
			if err != nil {
				s.Close()
				switch {
				case err == io.EOF:
					return nil
				case timedOut(ctx, err):
					return nil
				case errors.Is(err, durable.ErrDisconnected):
				default:
					return err
				}
				break
			}
			got = true
			st.status = http.StatusOK
			st.add(ch.Data, ch.NextOffset)
			st.offset, st.upToDate, st.closed = ch.NextOffset, ch.UpToDate, ch.Closed
			if ch.Cursor != "" {
				st.cursor = ch.Cursor
			}
			if st.closed || len(st.chunks) >= maxChunks || (st.upToDate && cmd.WaitForUpToDate) {
				s.Close()
				return nil
			}
		}
		if !got {
			// A connection that ended without a control event: wait a
			// little before the next one, so a failing server is not hammered.
			t := time.NewTimer(100 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
}

// readAuto reads through a Reader in LiveAuto mode: catch-up, then SSE
// falling back to long-poll. A chunk is one response's batch: the messages
// up to the one whose position closes the batch (Skip 0).
func (a *adapter) readAuto(ctx context.Context, c *durable.Client, cmd *command, st *readState, maxChunks int) error {
	if _, ok := a.ctypes[cmd.Path]; !ok {
		// The chunk layout depends on it: JSON messages are regrouped into arrays.
		ct, err := a.contentType(ctx, c, cmd.Path)
		if err != nil {
			return err
		}
		st.json = isJSON(ct)
	}
	r, err := durable.NewReader(c, a.streamURL(cmd.Path), durable.BytesCodec{}, durable.WithStart(st.offset),
		durable.WithLive(durable.LiveAuto), durable.WithManualCommit())
	if err != nil {
		return err
	}
	defer r.Close(ctx)
	var batch [][]byte
	finish := func() {
		st.upToDate, st.closed = r.Stats().UpToDate, r.Stats().StreamClosed
		st.offset = durable.Offset(r.Stats().Position.Offset)
	}
	for {
		a.dyn.begin()
		msg, err := r.Next(ctx)
		if err != nil {
			finish()
			if err == io.EOF || timedOut(ctx, err) {
				return nil
			}
			return err
		}
		batch = append(batch, bytes.Clone(msg.Data))
		if msg.Position.Skip != 0 {
			continue // more messages of this response follow
		}
		var data []byte
		if st.json {
			data = append([]byte{'['}, bytes.Join(batch, []byte{','})...)
			data = append(data, ']')
		} else {
			data = bytes.Join(batch, nil)
		}
		batch = batch[:0]
		st.add(data, durable.Offset(msg.Position.Offset))
		finish()
		if st.closed || len(st.chunks) >= maxChunks || (st.upToDate && cmd.WaitForUpToDate) {
			return nil
		}
	}
}
