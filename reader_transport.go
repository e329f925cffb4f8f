package durable

// The Reader's transport: single attempts built on the Client's internals
// (c.send, readURL, statusError, the header checks of validate.go), reading
// bodies into a buffer the Reader reuses, and a streaming SSE connection on
// internal/sse that outlives one call of Next. Nothing here retries or
// sleeps: the Reader owns its retry loop.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/durablego/durable/internal/protocol"
	"github.com/durablego/durable/internal/retry"
	"github.com/durablego/durable/internal/sse"
)

// errStale marks a response whose offset goes back before the one asked
// for (a stale cache or a confused server): dropped and retried. It is
// reported with ErrProtocol when a bounded retry schedule gives up.
var errStale = retry.Transient("stale response: offset before the one requested")

// rawChunk is one read as the Reader consumes it.
type rawChunk struct {
	data        []byte // aliases the transport's buffer until the next read
	parts       []int  // SSE: end of each data event in data (JSON arrays are split one by one)
	ctype       string // Content-Type of a GET ("" for SSE)
	next        Offset
	cursor      string
	upToDate    bool
	closed      bool
	notModified bool
	etag        string
}

// readerTransport performs the Reader's requests.
type readerTransport struct {
	c        *Client
	url      string
	limit    int64 // bytes of one read
	closeCtx context.Context
	requests atomic.Int64

	buf     []byte
	parts   []int
	sse     *sseConn
	sseIdle time.Duration // an SSE connection silent this long is closed

	// The last SSE connection that ended: how long it lived and how many
	// control events it delivered (for LiveAuto's fallback).
	lastLife     time.Duration
	lastControls int
}

// sseConn is one open SSE response.
type sseConn struct {
	body     io.ReadCloser
	cancel   context.CancelFunc
	p        *sse.Parser
	b64      bool
	opened   time.Time
	controls int
	last     Offset
	url      string
	idle     *time.Timer // closes the connection after sseIdle without an event
}

func (t *readerTransport) errorf(op, u string, status int, err error) *Error {
	return &Error{Op: op, URL: redactURL(u), Status: status, Err: err}
}

// get sends one catch-up (live == LiveNone) or long-poll GET from off.
// The body is read into t.buf.
func (t *readerTransport) get(ctx context.Context, off Offset, live LiveMode, cursor, ifNoneMatch string) (rawChunk, error) {
	return t.getInto(ctx, &t.buf, off, live, cursor, ifNoneMatch)
}

// getInto is get reading the body into *buf (reused). It touches no other
// state of t than the request counter, so a prefetch may run it with its
// own buffer while the Reader works on the last chunk.
func (t *readerTransport) getInto(ctx context.Context, buf *[]byte, off Offset, live LiveMode, cursor, ifNoneMatch string) (rawChunk, error) {
	ru, err := readURL(t.url, off, string(live), cursor)
	if err != nil {
		return rawChunk{}, t.errorf("read", t.url, 0, err)
	}
	cl := &call{op: "read", method: http.MethodGet, url: ru, header: http.Header{}, stream: true}
	if ifNoneMatch != "" {
		cl.header.Set("If-None-Match", ifNoneMatch)
	}
	t.requests.Add(1)
	resp, err := t.c.send(ctx, cl)
	if err != nil {
		return rawChunk{}, err
	}
	h := resp.header
	switch resp.status {
	case http.StatusOK, http.StatusNoContent:
	case http.StatusNotModified:
		if ifNoneMatch == "" {
			return rawChunk{}, t.c.protocolError(cl, resp, fmt.Errorf("%w: 304 without If-None-Match", ErrProtocol))
		}
		return rawChunk{notModified: true, etag: ifNoneMatch}, nil
	default:
		if resp.raw != nil {
			resp.raw.Body.Close()
			return rawChunk{}, t.c.protocolError(cl, resp, fmt.Errorf("%w: read answered with status %d", ErrProtocol, resp.status))
		}
		return rawChunk{}, t.c.statusError(cl, resp)
	}
	defer resp.raw.Body.Close()
	ch := rawChunk{
		ctype:    h.Get("Content-Type"),
		cursor:   h.Get(protocol.HeaderCursor),
		upToDate: protocol.IsTrue(h.Get(protocol.HeaderUpToDate)),
		closed:   protocol.IsTrue(h.Get(protocol.HeaderClosed)),
		etag:     h.Get("ETag"),
	}
	if ch.next, err = nextOffset(h); err != nil {
		return rawChunk{}, t.c.protocolError(cl, resp, err)
	}
	if isRealOffset(off) && ch.next < off {
		return rawChunk{}, t.c.protocolError(cl, resp, fmt.Errorf("%w: %w: %s %q is before %q", ErrProtocol, errStale, protocol.HeaderNextOffset, ch.next, off))
	}
	if err := checkCursor(ch.cursor); err != nil {
		return rawChunk{}, t.c.protocolError(cl, resp, err)
	}
	if ch.closed {
		ch.upToDate = true
	}
	if resp.status == http.StatusNoContent {
		if live != LiveLongPoll {
			return rawChunk{}, t.c.protocolError(cl, resp, fmt.Errorf("%w: 204 to a read that was not a long-poll", ErrProtocol))
		}
		return ch, nil
	}
	if protocol.BaseMediaType(ch.ctype) == "text/event-stream" {
		return rawChunk{}, t.c.protocolError(cl, resp, fmt.Errorf("%w: event stream returned to a non-SSE read", ErrProtocol))
	}
	*buf, err = readBody(*buf, resp.raw.Body, resp.raw.ContentLength, t.limit)
	if err != nil {
		return rawChunk{}, t.errorf("read", ru, resp.status, err)
	}
	if len(*buf) > 0 && ch.ctype == "" {
		return rawChunk{}, t.c.protocolError(cl, resp, fmt.Errorf("%w: data without Content-Type", ErrProtocol))
	}
	ch.data = *buf
	return ch, nil
}

// openSSE opens an SSE connection from off. The connection outlives the
// call of Next that opened it, so its context keeps the values of the
// caller's ctx (for a HeaderFunc) but not its cancellation; it is cancelled
// by the Reader's Close (or garbage collection), by closeSSE, and by the
// caller's ctx while a call is using the connection.
func (t *readerTransport) openSSE(ctx context.Context, off Offset, cursor string) error {
	ru, err := readURL(t.url, off, protocol.LiveSSE, cursor)
	if err != nil {
		return t.errorf("sse", t.url, 0, err)
	}
	connCtx, cancelConn := context.WithCancel(context.WithoutCancel(ctx))
	stopClose := context.AfterFunc(t.closeCtx, cancelConn)
	cancel := func() { stopClose(); cancelConn() }
	stopCaller := context.AfterFunc(ctx, cancelConn)
	cl := &call{op: "sse", method: http.MethodGet, url: ru, header: http.Header{"Accept": {"text/event-stream"}}, stream: true}
	t.requests.Add(1)
	resp, err := t.c.send(connCtx, cl)
	stopCaller()
	if err != nil {
		cancel()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return t.errorf("sse", ru, 0, ctxErr)
		}
		return err
	}
	if resp.status != http.StatusOK {
		cancel()
		if resp.raw != nil {
			resp.raw.Body.Close()
			return t.c.protocolError(cl, resp, fmt.Errorf("%w: SSE answered with status %d", ErrProtocol, resp.status))
		}
		return t.c.statusError(cl, resp)
	}
	if ct := protocol.BaseMediaType(resp.header.Get("Content-Type")); ct != "text/event-stream" {
		resp.raw.Body.Close()
		cancel()
		return t.c.protocolError(cl, resp, fmt.Errorf("%w: SSE response has Content-Type %q", ErrProtocol, ct))
	}
	b64 := strings.EqualFold(strings.TrimSpace(resp.header.Get(protocol.HeaderSSEDataEncoding)), "base64")
	limit := t.limit
	if b64 {
		limit = limit/3*4 + 8
	}
	if limit > int64(^uint32(0)>>1) {
		limit = int64(^uint32(0) >> 1)
	}
	body := resp.raw.Body
	t.sse = &sseConn{
		body:   body,
		cancel: cancel,
		p:      sse.NewParser(body, int(limit)+64, int(limit)+64),
		b64:    b64,
		opened: time.Now(),
		last:   off,
		url:    ru,
		idle:   time.AfterFunc(t.sseIdle, func() { cancel(); body.Close() }),
	}
	return nil
}

// closeSSE ends the open SSE connection, if any.
func (t *readerTransport) closeSSE() {
	if s := t.sse; s != nil {
		t.lastLife, t.lastControls = time.Since(s.opened), s.controls
		s.idle.Stop()
		s.cancel()
		s.body.Close()
		t.sse = nil
	}
}

// sseNext returns the data up to the next control event of the SSE
// connection, opening one from off when none is open. Every error closes
// the connection: the next call reopens it from the offset the Reader
// passes (the last control event's).
func (t *readerTransport) sseNext(ctx context.Context, off Offset, cursor string) (rawChunk, error) {
	if t.sse == nil {
		if err := t.openSSE(ctx, off, cursor); err != nil {
			t.lastLife, t.lastControls = 0, 0
			return rawChunk{}, err
		}
	}
	s := t.sse
	stop := context.AfterFunc(ctx, func() { s.cancel(); s.body.Close() })
	defer stop()
	ch, err := t.sseRead(s)
	if err != nil {
		t.closeSSE()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return rawChunk{}, t.errorf("sse", s.url, http.StatusOK, ctxErr)
		}
		var e *Error
		if errors.As(err, &e) {
			return rawChunk{}, err
		}
		return rawChunk{}, t.errorf("sse", s.url, http.StatusOK, err)
	}
	if ch.closed {
		t.closeSSE()
	}
	return ch, nil
}

func (t *readerTransport) sseRead(s *sseConn) (rawChunk, error) {
	t.buf = t.buf[:0]
	t.parts = t.parts[:0]
	for {
		ev, err := s.p.Next()
		if err == nil {
			s.idle.Reset(t.sseIdle)
		}
		if err != nil {
			switch {
			case errors.Is(err, sse.ErrLineTooLong), errors.Is(err, sse.ErrEventTooLarge):
				return rawChunk{}, fmt.Errorf("%w: %w", ErrResponseTooLarge, err)
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				return rawChunk{}, fmt.Errorf("%w (%w)", ErrDisconnected, err)
			default:
				return rawChunk{}, fmt.Errorf("%w: %w", ErrDisconnected, err)
			}
		}
		switch ev.Type {
		case protocol.SSEEventData:
			if s.b64 {
				clean := ev.Data
				if strings.ContainsAny(clean, "\r\n") {
					clean = strings.NewReplacer("\n", "", "\r", "").Replace(clean)
				}
				t.buf, err = base64.StdEncoding.AppendDecode(t.buf, []byte(clean))
				if err != nil {
					return rawChunk{}, fmt.Errorf("%w: bad base64 in an SSE data event: %w", ErrProtocol, err)
				}
			} else {
				t.buf = append(t.buf, ev.Data...)
			}
			if int64(len(t.buf)) > t.limit {
				return rawChunk{}, fmt.Errorf("%w: SSE data between control events exceeds %d bytes", ErrResponseTooLarge, t.limit)
			}
			t.parts = append(t.parts, len(t.buf))
		case protocol.SSEEventControl:
			return t.sseControl(s, ev.Data)
		default:
			// Unknown event types are ignored (forward compatibility).
		}
	}
}

func (t *readerTransport) sseControl(s *sseConn, raw string) (rawChunk, error) {
	ctl, next, err := parseControl(raw, s.last)
	if err != nil {
		return rawChunk{}, err
	}
	s.last = next
	s.controls++
	return rawChunk{
		data:     t.buf,
		parts:    t.parts,
		next:     next,
		cursor:   ctl.StreamCursor,
		upToDate: ctl.UpToDate || ctl.StreamClosed,
		closed:   ctl.StreamClosed,
	}, nil
}
