package durable

// The Reader's transport: single attempts on the one read path (getChunk
// for GETs, openEvents and the sseDecoder for SSE), reading bodies into a
// buffer the Reader reuses, and an SSE connection that outlives one call of
// Next. Nothing here retries or sleeps: the Reader runs the retry loop.

import (
	"context"
	"sync/atomic"
	"time"
)

// readerTransport performs the Reader's requests.
type readerTransport struct {
	c        *Client
	url      string
	key      string // the Reader's store key, for the hooks
	limit    int64  // bytes of one read
	closeCtx context.Context
	requests atomic.Int64

	buf     []byte
	sse     *sseConn
	sseIdle time.Duration // an SSE connection silent this long is closed

	// The last SSE connection that ended: how long it lived and how many
	// control events it delivered (for LiveAuto's fallback).
	lastLife     time.Duration
	lastControls int
}

// sseConn is one open SSE response.
type sseConn struct {
	d      *sseDecoder
	cancel context.CancelFunc
	opened time.Time
	idle   *time.Timer // closes the connection after sseIdle without an event
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
	t.requests.Add(1)
	ctx, start := t.startRead(ctx, off, live)
	ch, err := t.c.getChunk(ctx, t.url, readQuery{offset: off, live: live, cursor: cursor, ifNoneMatch: ifNoneMatch, limit: t.limit, dropStale: true}, buf)
	t.endRead(ctx, start, off, live, ch, err)
	return ch, err
}

// catchUp sends one catch-up GET into *buf, bounded by the Client's
// WithRequestTimeout (live reads are not: they wait for data by design), so that a
// connection that never answers is abandoned and retried instead of
// holding Next.
func (t *readerTransport) catchUp(ctx context.Context, buf *[]byte, off Offset, ifNoneMatch string) (rawChunk, error) {
	actx, cancel := t.c.withAttemptTimeout(ctx)
	defer cancel()
	ch, err := t.getInto(actx, buf, off, LiveNone, "", ifNoneMatch)
	return ch, t.c.timedOut(ctx, actx, "read", t.url, err)
}

// openSSE opens an SSE connection from off. The connection outlives the
// call of Next that opened it, so its context keeps the values of the
// caller's ctx (for a HeaderFunc) but not its cancellation; it is cancelled
// by the Reader's Close (or garbage collection), by closeSSE, and by the
// caller's ctx while a call is using the connection.
func (t *readerTransport) openSSE(ctx context.Context, off Offset, cursor string) error {
	connCtx, cancelConn := context.WithCancel(context.WithoutCancel(ctx))
	stopClose := context.AfterFunc(t.closeCtx, cancelConn)
	cancel := func() { stopClose(); cancelConn() }
	stopCaller := context.AfterFunc(ctx, cancelConn)
	t.requests.Add(1)
	d, err := t.c.openEvents(connCtx, "read", t.url, off, cursor, t.limit)
	stopCaller()
	if err != nil {
		cancel()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return &Error{Op: "read", URL: redactURL(t.url), Err: ctxErr}
		}
		return err
	}
	d.buf = t.buf[:0]
	s := &sseConn{d: d, cancel: cancel, opened: time.Now()}
	// The timer is reachable from the runtime: what it refers to must not
	// refer to the Reader, or a Reader dropped without Close would never be
	// collected.
	idle := t.sseIdle
	s.idle = time.AfterFunc(idle, func() { cancel(); d.body.Close() })
	d.onEvent = func() { s.idle.Reset(idle) }
	t.sse = s
	return nil
}

// closeSSE ends the open SSE connection, if any.
func (t *readerTransport) closeSSE() {
	if s := t.sse; s != nil {
		t.lastLife, t.lastControls = time.Since(s.opened), s.d.controls
		s.idle.Stop()
		s.cancel()
		s.d.body.Close()
		t.buf = s.d.buf // keep the grown buffer for the next reads
		t.sse = nil
	}
}

// sseNext returns the data up to the next control event of the SSE
// connection, opening one from off when none is open. Every error closes
// the connection: the next call reopens it from the offset the Reader
// passes (the last control event's).
func (t *readerTransport) sseNext(ctx context.Context, off Offset, cursor string) (rawChunk, error) {
	ctx, start := t.startRead(ctx, off, LiveSSE)
	ch, err := t.sseRead(ctx, off, cursor)
	t.endRead(ctx, start, off, LiveSSE, ch, err)
	return ch, err
}

// sseRead is sseNext without the hooks.
func (t *readerTransport) sseRead(ctx context.Context, off Offset, cursor string) (rawChunk, error) {
	if t.sse == nil {
		if err := t.openSSE(ctx, off, cursor); err != nil {
			t.lastLife, t.lastControls = 0, 0
			return rawChunk{}, err
		}
	}
	s := t.sse
	stop := context.AfterFunc(ctx, func() { s.cancel(); s.d.body.Close() })
	defer stop()
	ch, err := s.d.next()
	if err != nil {
		t.closeSSE()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return rawChunk{}, s.d.fail(ctxErr)
		}
		return rawChunk{}, err
	}
	if ch.closed {
		t.closeSSE()
	}
	return ch, nil
}
