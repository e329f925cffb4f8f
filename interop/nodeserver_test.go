//go:build interop

package interop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
)

// The Go SDK against the Node reference server (@durable-streams/server's
// DurableStreamTestServer, started by node-server.mjs). Failures are labelled
// "[Go SDK ↔ Node server]" and log the SDK's last HTTP exchanges with the
// server, so the exchange that broke is in the output.

const nodeLongPoll = 700 * time.Millisecond

// nodeServer is one Node reference server shared by the subtests of a test.
type nodeServer struct {
	base string // stream base URL, ending in "/"
	proc *proc
}

func startNode(t *testing.T) *nodeServer {
	t.Helper()
	e := needEnv(t)
	u, p := startNodeServer(t, e, nodeLongPoll)
	t.Cleanup(func() {
		if t.Failed() {
			if s := p.stderr.String(); s != "" {
				t.Logf("Node server stderr:\n%s", s)
			}
		}
	})
	return &nodeServer{base: u + "/v1/stream/", proc: p}
}

// client returns a recorded Client for one subtest and a fresh stream name.
func (n *nodeServer) client(t *testing.T) (*durable.Client, string) {
	t.Helper()
	c, _ := newRecordedClient(t, n.base, "the Node server")
	name := strings.NewReplacer("/", "-", " ", "_").Replace(t.Name())
	return c, fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
}

// must fails the test with a side label when err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("[Go SDK ↔ Node server] %s: %v", what, err)
	}
}

// wantErr fails the test unless err wraps target.
func wantErr(t *testing.T, what string, err, target error) *durable.Error {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("[Go SDK ↔ Node server] %s: got error %v, want %v", what, err, target)
	}
	var de *durable.Error
	if !errors.As(err, &de) {
		t.Fatalf("[Go SDK] %s: error %T is not a *durable.Error", what, err)
	}
	return de
}

func TestGoClientAgainstNodeServer(t *testing.T) {
	n := startNode(t)
	// Parallel subtests outlive this function: cancel at cleanup, not defer.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)

	t.Run("json catch-up", func(t *testing.T) {
		t.Parallel()
		c, s := n.client(t)
		res, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json", Data: jsonBody(`{"init":0}`)})
		must(t, "create", err)
		if !res.Created || res.ContentType != "application/json" {
			t.Errorf("[Go SDK ↔ Node server] create = %+v, want Created with application/json", res)
		}
		want := []string{`{"init":0}`}
		bodies := [][]string{
			{`{"n":1,"s":"héllo ✓ \"q\" \\ <&>"}`},
			{`[1,2,3]`, `"str"`, `null`},
			{`{"nested":{"a":[true,false,null],"x":-0.5}}`},
		}
		offsets := []durable.Offset{res.NextOffset}
		for _, b := range bodies {
			r, err := c.Append(ctx, s, jsonBody(b...), durable.AppendOptions{ContentType: "application/json"})
			must(t, "append", err)
			want = append(want, b...)
			offsets = append(offsets, r.NextOffset)
		}
		r, err := c.AppendJSON(ctx, s, map[string]any{"k": []int{1, 2}}, durable.AppendOptions{})
		must(t, "append JSON", err)
		want = append(want, `{"k":[1,2]}`)
		offsets = append(offsets, r.NextOffset)

		_, msgs, last, err := readAll(ctx, c, s, durable.OffsetStart, true)
		must(t, "catch-up read", err)
		if d := diffMessages(want, msgs); d != "" {
			t.Errorf("[Go SDK ↔ Node server] catch-up read differs from what was appended: %s", d)
		}
		if !last.UpToDate || last.Closed || last.NextOffset != offsets[len(offsets)-1] || last.ContentType != "application/json" {
			t.Errorf("[Go SDK ↔ Node server] last chunk = {UpToDate %v Closed %v NextOffset %q ContentType %q}, want up to date, open, at %q",
				last.UpToDate, last.Closed, last.NextOffset, last.ContentType, offsets[len(offsets)-1])
		}
		info, err := c.Head(ctx, s)
		must(t, "head", err)
		if info.NextOffset != last.NextOffset || info.ContentType != "application/json" || info.Closed {
			t.Errorf("[Go SDK ↔ Node server] head = %+v, want tail %q, application/json, open", info, last.NextOffset)
		}
		// Resume from every offset an append returned: the rest, exactly.
		counts := []int{1, 2, 5, 6, 7}
		for i, off := range offsets {
			_, msgs, _, err := readAll(ctx, c, s, off, true)
			must(t, fmt.Sprintf("read from %s", off), err)
			if d := diffMessages(want[counts[i]:], msgs); d != "" {
				t.Errorf("[Go SDK ↔ Node server] read from offset %q (after append %d): %s", off, i, d)
			}
		}
		// A repeated catch-up read with the ETag is answered 304.
		ch, err := c.Read(ctx, s, durable.ReadOptions{Offset: offsets[1]})
		must(t, "read", err)
		if ch.ETag == "" {
			t.Errorf("[Node server] catch-up read has no ETag")
		} else {
			nm, err := c.Read(ctx, s, durable.ReadOptions{Offset: offsets[1], IfNoneMatch: ch.ETag})
			must(t, "conditional read", err)
			if !nm.NotModified {
				t.Errorf("[Go SDK ↔ Node server] If-None-Match %s: not answered NotModified (%+v)", ch.ETag, nm)
			}
		}
	})

	t.Run("bytes catch-up", func(t *testing.T) {
		t.Parallel()
		c, s := n.client(t)
		_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/octet-stream"})
		must(t, "create", err)
		parts := [][]byte{testBytes(1, 256), testBytes(2, 70000), []byte("data: x\r\n\r\n"), {0}}
		var want []byte
		var offsets []durable.Offset
		for _, p := range parts {
			r, err := c.Append(ctx, s, p, durable.AppendOptions{ContentType: "application/octet-stream"})
			must(t, "append", err)
			want = append(want, p...)
			offsets = append(offsets, r.NextOffset)
		}
		data, _, last, err := readAll(ctx, c, s, durable.OffsetStart, false)
		must(t, "catch-up read", err)
		if d := diffBytes(want, data); d != "" {
			t.Errorf("[Go SDK ↔ Node server] catch-up read differs from what was appended: %s", d)
		}
		if last.NextOffset != offsets[len(offsets)-1] {
			t.Errorf("[Go SDK ↔ Node server] read ended at %q, last append returned %q", last.NextOffset, offsets[len(offsets)-1])
		}
		pos := 0
		for i, off := range offsets[:len(offsets)-1] {
			pos += len(parts[i])
			data, _, _, err := readAll(ctx, c, s, off, false)
			must(t, "read from offset", err)
			if d := diffBytes(want[pos:], data); d != "" {
				t.Errorf("[Go SDK ↔ Node server] read from offset %q (after append %d): %s", off, i, d)
			}
		}
		// Wrong content type on append.
		_, err = c.Append(ctx, s, []byte(`[1]`), durable.AppendOptions{ContentType: "application/json"})
		wantErr(t, "append with another content type", err, durable.ErrContentTypeMismatch)
		// Creating it again with another content type.
		_, err = c.Create(ctx, s, durable.CreateOptions{ContentType: "text/plain"})
		wantErr(t, "create with another content type", err, durable.ErrStreamExists)
		// Same configuration: idempotent.
		r, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/octet-stream"})
		must(t, "create again with the same configuration", err)
		if r.Created {
			t.Errorf("[Go SDK ↔ Node server] second identical create reported Created")
		}
	})

	t.Run("not found", func(t *testing.T) {
		t.Parallel()
		c, s := n.client(t)
		_, err := c.Head(ctx, s)
		wantErr(t, "head of a missing stream", err, durable.ErrNotFound)
		_, err = c.Read(ctx, s, durable.ReadOptions{})
		wantErr(t, "read of a missing stream", err, durable.ErrNotFound)
		_, err = c.Append(ctx, s, []byte("x"), durable.AppendOptions{ContentType: "text/plain"})
		wantErr(t, "append to a missing stream", err, durable.ErrNotFound)
		_, err = c.Create(ctx, s, durable.CreateOptions{ContentType: "text/plain"})
		must(t, "create", err)
		must(t, "delete", c.Delete(ctx, s))
		_, err = c.Head(ctx, s)
		if !errors.Is(err, durable.ErrNotFound) && !errors.Is(err, durable.ErrGone) {
			t.Errorf("[Go SDK ↔ Node server] head after delete: %v, want ErrNotFound or ErrGone", err)
		}
	})

	t.Run("long-poll", func(t *testing.T) {
		t.Parallel()
		for _, ct := range []string{"application/json", "application/octet-stream"} {
			t.Run(ct, func(t *testing.T) {
				c, s := n.client(t)
				cr, err := c.Create(ctx, s, durable.CreateOptions{ContentType: ct})
				must(t, "create", err)
				isJSON := ct == "application/json"
				parts := [][]byte{testBytes(3, 40), testBytes(4, 1), testBytes(5, 3000)}
				if isJSON {
					parts = [][]byte{jsonBody(`{"live":1}`), jsonBody(`{"live":2}`, `{"live":3}`), jsonBody(`"x"`)}
				}
				// An idle long-poll ends at the server's timeout, up to date, with no data.
				start := time.Now()
				idle, err := c.Read(ctx, s, durable.ReadOptions{Offset: cr.NextOffset, Live: durable.LiveLongPoll})
				must(t, "idle long-poll", err)
				if len(idle.Data) != 0 || !idle.UpToDate || idle.NextOffset != cr.NextOffset {
					t.Errorf("[Go SDK ↔ Node server] idle long-poll = {%d bytes, UpToDate %v, NextOffset %q}, want no data, up to date, at %q",
						len(idle.Data), idle.UpToDate, idle.NextOffset, cr.NextOffset)
				}
				if el := time.Since(start); el < nodeLongPoll/4 {
					t.Errorf("[Go SDK ↔ Node server] idle long-poll returned after %v, before the server's %v timeout", el, nodeLongPoll)
				}
				// Appends made while a long-poll waits are delivered to it.
				var wantData []byte
				var wantMsgs []string
				off, cursor := cr.NextOffset, idle.Cursor
				for i, p := range parts {
					type result struct {
						ch  durable.Chunk
						err error
					}
					// Long-poll until data comes; an empty answer (the server's
					// timeout) is followed by another long-poll.
					got := make(chan result, 1)
					empty := 0
					go func() {
						cur := cursor
						for {
							ch, err := c.Read(ctx, s, durable.ReadOptions{Offset: off, Live: durable.LiveLongPoll, Cursor: cur})
							if err != nil || len(ch.Data) > 0 || ch.Closed {
								got <- result{ch, err}
								return
							}
							empty++
							cur = ch.Cursor
						}
					}()
					timer := time.NewTimer(100 * time.Millisecond)
					select {
					case r := <-got:
						t.Fatalf("[Go SDK ↔ Node server] long-poll %d answered before the append: %+v, %v", i, r.ch, r.err)
					case <-timer.C:
					}
					_, err := c.Append(ctx, s, p, durable.AppendOptions{ContentType: ct})
					must(t, "append", err)
					r := <-got
					must(t, "long-poll", r.err)
					if empty > 0 {
						t.Logf("long-poll %d: %d empty answer(s) before the data", i, empty)
					}
					if isJSON {
						m, err := splitJSON(r.ch.Data)
						must(t, "split", err)
						pm, _ := splitJSON(p)
						wantMsgs = append(wantMsgs, pm...)
						if d := diffMessages(pm, m); d != "" {
							t.Errorf("[Go SDK ↔ Node server] long-poll %d got other messages than appended: %s", i, d)
						}
					} else {
						wantData = append(wantData, p...)
						if d := diffBytes(p, r.ch.Data); d != "" {
							t.Errorf("[Go SDK ↔ Node server] long-poll %d got other bytes than appended: %s", i, d)
						}
					}
					if r.ch.Cursor == "" {
						t.Errorf("[Node server] long-poll response without Stream-Cursor")
					}
					off, cursor = r.ch.NextOffset, r.ch.Cursor
				}
				// The whole stream, once more, by catch-up.
				data, msgs, _, err := readAll(ctx, c, s, durable.OffsetStart, isJSON)
				must(t, "catch-up read", err)
				if d := diffMessages(wantMsgs, msgs) + diffBytes(wantData, data); d != "" {
					t.Errorf("[Go SDK ↔ Node server] catch-up read after the long-polls: %s", d)
				}
				// A long-poll waiting when the stream is closed ends with EOF.
				got := make(chan error, 1)
				var eof durable.Chunk
				go func() {
					var err error
					eof, err = c.Read(ctx, s, durable.ReadOptions{Offset: off, Live: durable.LiveLongPoll, Cursor: cursor})
					got <- err
				}()
				time.Sleep(100 * time.Millisecond) // let the long-poll reach the server
				cl, err := c.CloseStream(ctx, s, nil, durable.AppendOptions{})
				must(t, "close", err)
				must(t, "long-poll across the close", <-got)
				if !eof.Closed || eof.NextOffset != cl.NextOffset || len(eof.Data) != 0 {
					t.Errorf("[Go SDK ↔ Node server] long-poll across the close = {Closed %v NextOffset %q %d bytes}, want EOF at %q",
						eof.Closed, eof.NextOffset, len(eof.Data), cl.NextOffset)
				}
			})
		}
	})

	t.Run("sse", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			ct    string
			parts [][]byte
		}{
			{"application/json", [][]byte{jsonBody(`{"sse":1}`), jsonBody(`{"sse":2}`, `[3]`), jsonBody(`"data: x\n\n"`)}},
			{"application/octet-stream", [][]byte{testBytes(6, 300), {0}, testBytes(7, 5000), []byte("\r\n\r\ndata: x\n\n")}},
			{"text/plain", [][]byte{[]byte("line 1\n"), []byte("data: fake\n\nevent: control\n"), []byte("ünïcode ✓")}},
		} {
			t.Run(tc.ct, func(t *testing.T) {
				c, s := n.client(t)
				isJSON := tc.ct == "application/json"
				// Half the data before the connection, half while it is open.
				_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: tc.ct, Data: tc.parts[0]})
				must(t, "create", err)
				var wg sync.WaitGroup
				var appendErr error
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, p := range tc.parts[1:] {
						time.Sleep(80 * time.Millisecond) // spread the appends over the live connection
						if _, err := c.Append(ctx, s, p, durable.AppendOptions{ContentType: tc.ct}); err != nil {
							appendErr = err
							return
						}
					}
					time.Sleep(80 * time.Millisecond)
					_, appendErr = c.CloseStream(ctx, s, nil, durable.AppendOptions{})
				}()
				data, msgs, conns, last, err := sseAll(ctx, c, s, durable.OffsetStart, tc.ct)
				wg.Wait()
				must(t, "append/close while SSE is open", appendErr)
				must(t, "SSE read", err)
				var wantData []byte
				var wantMsgs []string
				for _, p := range tc.parts {
					if isJSON {
						m, _ := splitJSON(p)
						wantMsgs = append(wantMsgs, m...)
					} else {
						wantData = append(wantData, p...)
					}
				}
				if d := diffMessages(wantMsgs, msgs) + diffBytes(wantData, data); d != "" {
					t.Errorf("[Go SDK ↔ Node server] SSE read differs from what was appended: %s", d)
				}
				info, err := c.Head(ctx, s)
				must(t, "head", err)
				if !last.Closed || last.NextOffset != info.NextOffset {
					t.Errorf("[Go SDK ↔ Node server] SSE ended at %q closed=%v; head says tail %q closed=%v", last.NextOffset, last.Closed, info.NextOffset, info.Closed)
				}
				t.Logf("SSE: %d connection(s)", conns)
				// SSE on the closed stream, at its tail: EOF at once.
				s2, err := c.OpenSSE(ctx, s, durable.ReadOptions{Offset: info.NextOffset, ContentType: tc.ct})
				must(t, "SSE at the closed tail", err)
				defer s2.Close()
				ch, err := s2.Next(ctx)
				must(t, "SSE at the closed tail: first event", err)
				if !ch.Closed || len(ch.Data) != 0 {
					t.Errorf("[Go SDK ↔ Node server] SSE at the closed tail = {Closed %v, %d bytes}, want EOF", ch.Closed, len(ch.Data))
				}
			})
		}
	})

	t.Run("offset now", func(t *testing.T) {
		t.Parallel()
		c, s := n.client(t)
		cr, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json", Data: jsonBody(`{"old":1}`, `{"old":2}`)})
		must(t, "create", err)
		// Catch-up from now: nothing, up to date, at the tail.
		ch, err := c.Read(ctx, s, durable.ReadOptions{Offset: durable.OffsetNow})
		must(t, "read from now", err)
		if m, _ := splitJSON(ch.Data); len(m) != 0 || !ch.UpToDate || ch.NextOffset != cr.NextOffset {
			t.Errorf("[Go SDK ↔ Node server] read from now = {%q UpToDate %v NextOffset %q}, want nothing, up to date, at %q", ch.Data, ch.UpToDate, ch.NextOffset, cr.NextOffset)
		}
		// Long-poll and SSE from now see only what is appended later.
		type result struct {
			ch  durable.Chunk
			err error
		}
		lp := make(chan result, 1)
		go func() {
			ch, err := c.Read(ctx, s, durable.ReadOptions{Offset: durable.OffsetNow, Live: durable.LiveLongPoll})
			lp <- result{ch, err}
		}()
		sse, err := c.OpenSSE(ctx, s, durable.ReadOptions{Offset: durable.OffsetNow, ContentType: "application/json"})
		must(t, "SSE from now", err)
		defer sse.Close()
		time.Sleep(100 * time.Millisecond) // let the long-poll reach the server
		_, err = c.Append(ctx, s, jsonBody(`{"new":1}`), durable.AppendOptions{ContentType: "application/json"})
		must(t, "append", err)
		r := <-lp
		must(t, "long-poll from now", r.err)
		if m, _ := splitJSON(r.ch.Data); len(m) != 1 || m[0] != `{"new":1}` {
			t.Errorf("[Go SDK ↔ Node server] long-poll from now got %q, want only the new message", r.ch.Data)
		}
		var got []string
		for len(got) == 0 {
			ch, err := sse.Next(ctx)
			must(t, "SSE from now: next", err)
			m, err := splitJSON(ch.Data)
			must(t, "SSE split", err)
			got = append(got, m...)
		}
		if d := diffMessages([]string{`{"new":1}`}, got); d != "" {
			t.Errorf("[Go SDK ↔ Node server] SSE from now: %s", d)
		}
	})

	t.Run("closure", func(t *testing.T) {
		t.Parallel()
		c, s := n.client(t)
		_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "text/plain", Data: []byte("a")})
		must(t, "create", err)
		cl, err := c.CloseStream(ctx, s, []byte("final"), durable.AppendOptions{ContentType: "text/plain"})
		must(t, "close with a final message", err)
		info, err := c.Head(ctx, s)
		must(t, "head", err)
		if !info.Closed || info.NextOffset != cl.NextOffset {
			t.Errorf("[Go SDK ↔ Node server] head after close = %+v, want closed at %q", info, cl.NextOffset)
		}
		_, err = c.Append(ctx, s, []byte("late"), durable.AppendOptions{ContentType: "text/plain"})
		de := wantErr(t, "append after close", err, durable.ErrStreamClosed)
		if de.NextOffset != "" && de.NextOffset != cl.NextOffset {
			t.Errorf("[Go SDK ↔ Node server] append after close reported final offset %q, want %q", de.NextOffset, cl.NextOffset)
		}
		_, err = c.CloseStream(ctx, s, nil, durable.AppendOptions{})
		must(t, "close again without data (idempotent)", err)
		_, err = c.CloseStream(ctx, s, []byte("more"), durable.AppendOptions{ContentType: "text/plain"})
		wantErr(t, "close again with data", err, durable.ErrStreamClosed)
		data, _, last, err := readAll(ctx, c, s, durable.OffsetStart, false)
		must(t, "catch-up read", err)
		if string(data) != "afinal" || !last.Closed || last.NextOffset != cl.NextOffset {
			t.Errorf("[Go SDK ↔ Node server] catch-up read of the closed stream = %q closed=%v at %q, want \"afinal\" closed at %q", data, last.Closed, last.NextOffset, cl.NextOffset)
		}
		// At the final offset every read mode answers EOF at once.
		start := time.Now()
		for _, live := range []durable.LiveMode{durable.LiveNone, durable.LiveLongPoll} {
			ch, err := c.Read(ctx, s, durable.ReadOptions{Offset: cl.NextOffset, Live: live})
			must(t, fmt.Sprintf("read %q at the final offset", live), err)
			if !ch.Closed || len(ch.Data) != 0 {
				t.Errorf("[Go SDK ↔ Node server] read %q at the final offset = {Closed %v, %d bytes}, want EOF", live, ch.Closed, len(ch.Data))
			}
		}
		if el := time.Since(start); el > nodeLongPoll/2 {
			t.Errorf("[Node server] reads at the final offset of a closed stream waited %v", el)
		}
		// A stream created closed.
		s2 := s + "-created-closed"
		r, err := c.Create(ctx, s2, durable.CreateOptions{ContentType: "application/json", Closed: true, Data: jsonBody(`{"only":true}`)})
		must(t, "create closed", err)
		if !r.Closed {
			t.Errorf("[Go SDK ↔ Node server] create closed: result not Closed: %+v", r)
		}
		_, msgs, last, err := readAll(ctx, c, s2, durable.OffsetStart, true)
		must(t, "read created-closed", err)
		if d := diffMessages([]string{`{"only":true}`}, msgs); d != "" || !last.Closed {
			t.Errorf("[Go SDK ↔ Node server] created-closed stream: %s closed=%v", d, last.Closed)
		}
	})

	t.Run("idempotent producer", func(t *testing.T) {
		t.Parallel()
		c, s := n.client(t)
		_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"})
		must(t, "create", err)
		const pid = "go-producer"
		app := func(epoch, seq int64, msgs ...string) (durable.AppendResult, error) {
			return c.Append(ctx, s, jsonBody(msgs...), durable.AppendOptions{ContentType: "application/json",
				Producer: &durable.Producer{ID: pid, Epoch: epoch, Seq: seq}})
		}
		var want []string
		for seq := int64(0); seq < 3; seq++ {
			m := fmt.Sprintf(`{"epoch":0,"seq":%d}`, seq)
			r, err := app(0, seq, m)
			must(t, fmt.Sprintf("producer append seq %d", seq), err)
			if r.Duplicate {
				t.Errorf("[Go SDK ↔ Node server] first append of seq %d reported Duplicate", seq)
			}
			want = append(want, m)
		}
		// A retry of seq 1 (same epoch) is a duplicate: acknowledged, not applied.
		// The Node server acknowledges it with 204, Producer-Epoch and
		// Producer-Seq but no Stream-Next-Offset; PROTOCOL.md §5.2.1 lists
		// only the producer headers for that answer, so the SDK must accept it.
		r, err := app(0, 1, `{"epoch":0,"seq":1}`)
		switch {
		case err != nil:
			t.Errorf("[Go SDK] rejects the Node server's duplicate acknowledgement (a retried producer append would fail): %v", err)
		case !r.Duplicate:
			t.Errorf("[Go SDK ↔ Node server] resent seq 1 not reported Duplicate: %+v", r)
		}
		// A gap is refused with the expected sequence.
		_, err = app(0, 5, `{"gap":true}`)
		de := wantErr(t, "producer append with a gap", err, durable.ErrProducerSeqGap)
		if de.ExpectedSeq != 3 || de.ReceivedSeq != 5 {
			t.Errorf("[Go SDK ↔ Node server] gap: expected/received = %d/%d, want 3/5", de.ExpectedSeq, de.ReceivedSeq)
		}
		// A new epoch fences the old one.
		_, err = app(1, 0, `{"epoch":1,"seq":0}`)
		must(t, "append with a new epoch", err)
		want = append(want, `{"epoch":1,"seq":0}`)
		_, err = app(0, 3, `{"zombie":true}`)
		de = wantErr(t, "append with the old epoch", err, durable.ErrStaleEpoch)
		if de.ServerEpoch != 1 {
			t.Errorf("[Go SDK ↔ Node server] stale epoch: server epoch %d, want 1", de.ServerEpoch)
		}
		// Producer close with a final message, then its retry.
		cl, err := c.CloseStream(ctx, s, jsonBody(`{"final":true}`), durable.AppendOptions{ContentType: "application/json", Producer: &durable.Producer{ID: pid, Epoch: 1, Seq: 1}})
		must(t, "producer close", err)
		want = append(want, `{"final":true}`)
		cl2, err := c.CloseStream(ctx, s, jsonBody(`{"final":true}`), durable.AppendOptions{ContentType: "application/json", Producer: &durable.Producer{ID: pid, Epoch: 1, Seq: 1}})
		switch {
		case err != nil:
			t.Errorf("[Go SDK] rejects the Node server's answer to a retried producer close: %v", err)
		case !cl2.Duplicate || cl2.NextOffset != cl.NextOffset:
			t.Errorf("[Go SDK ↔ Node server] retried producer close = %+v, want Duplicate at %q", cl2, cl.NextOffset)
		}
		_, msgs, last, err := readAll(ctx, c, s, durable.OffsetStart, true)
		must(t, "read", err)
		if d := diffMessages(want, msgs); d != "" {
			t.Errorf("[Go SDK ↔ Node server] stream after producer appends: %s", d)
		}
		if !last.Closed {
			t.Errorf("[Go SDK ↔ Node server] stream not closed after producer close")
		}
	})

	t.Run("resume from a saved position", func(t *testing.T) {
		t.Parallel()
		c, s := n.client(t)
		_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"})
		must(t, "create", err)
		for i := 0; i < 3; i++ {
			_, err := c.Append(ctx, s, jsonBody(fmt.Sprintf(`{"batch":%d,"i":0}`, i), fmt.Sprintf(`{"batch":%d,"i":1}`, i)), durable.AppendOptions{ContentType: "application/json"})
			must(t, "append", err)
		}
		// Consume: read the first batch and handle one of its messages, then
		// save the position (offset, skip) and "crash".
		path := filepath.Join(t.TempDir(), "offsets.json")
		store, err := offsetstore.OpenFile(path)
		must(t, "open offset file", err)
		ch, err := c.Read(ctx, s, durable.ReadOptions{Offset: durable.OffsetStart})
		must(t, "read", err)
		first, err := splitJSON(ch.Data)
		must(t, "split", err)
		if len(first) != 6 {
			t.Fatalf("[Go SDK ↔ Node server] first read has %d messages, want 6", len(first))
		}
		must(t, "save position", store.Save(ctx, s, offsetstore.Position{Offset: string(durable.OffsetStart), Skip: 1}))
		must(t, "close offset file", store.Close())
		// More data arrives while the consumer is down.
		_, err = c.Append(ctx, s, jsonBody(`{"batch":3,"i":0}`), durable.AppendOptions{ContentType: "application/json"})
		must(t, "append", err)
		// Restart: load the position, read from its offset, skip what was handled.
		store, err = offsetstore.OpenFile(path)
		must(t, "reopen offset file", err)
		defer store.Close()
		pos, ok, err := store.Load(ctx, s)
		must(t, "load position", err)
		if !ok {
			t.Fatalf("saved position not found")
		}
		_, rest, last, err := readAll(ctx, c, s, durable.Offset(pos.Offset), true)
		must(t, "read from the saved position", err)
		rest = rest[pos.Skip:]
		want := append(first[1:], `{"batch":3,"i":0}`)
		if d := diffMessages(want, rest); d != "" {
			t.Errorf("[Go SDK ↔ Node server] resumed read: %s", d)
		}
		// Save the normalised position (the tail, skip 0) and resume from it: nothing.
		must(t, "save tail", store.Save(ctx, s, offsetstore.Position{Offset: string(last.NextOffset)}))
		pos, _, err = store.Load(ctx, s)
		must(t, "load tail", err)
		ch, err = c.Read(ctx, s, durable.ReadOptions{Offset: durable.Offset(pos.Offset)})
		must(t, "read from the tail", err)
		if len(bytes.TrimSpace(ch.Data)) > 2 || !ch.UpToDate {
			t.Errorf("[Go SDK ↔ Node server] read from the saved tail = %q up-to-date=%v, want nothing new", ch.Data, ch.UpToDate)
		}
	})
}
