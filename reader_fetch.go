package durable

// The Reader's fetching: one read from its position through the retry
// loop, catch-up GET, long-poll or SSE, and the throttle for answers that
// bring nothing new. Requests themselves are in reader_transport.go.

import (
	"context"
	"errors"
	"time"

	"github.com/durablego/durable/internal/protocol"
	"github.com/durablego/durable/internal/retry"
)

// readState is where the Reader's next read starts and how it goes.
type readState struct {
	started  bool
	saved    bool     // pos was loaded from the store and not read from yet
	pos      Position // the next request reads from pos.Offset and drops pos.Skip items
	cursor   string
	ctype    string
	ctypeSet bool
	isJSON   bool
	live     bool // caught up once: later reads wait for data (unless LiveNone)
	sseFails int
	etagOff  Offset
	etag     string
	etagUp   bool
	sched    *retry.Schedule // failures: one episode from the first failure to the next success
	throttle *retry.Schedule // answers with nothing new, until the next progress
	sticky   error           // a permanent failure: every later Next returns it
}

// read fetches the next chunk through the retry loop: transient failures
// are retried per the Reader's policy, logged by the Client's logger and
// reported to the retry hook; Close ends the loop at once.
func (r *Reader[T]) read(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.closeCtx, cancel)
	defer stop()
	logRetry := r.c.retryLogger(ctx, "read", r.url)
	return retry.Do(ctx, r.reading.sched, r.fetch, classifier(true), func(ev retry.Event) {
		logRetry(ev)
		if !ev.Recovered {
			r.retried()
		}
	})
}

// chunkDone reports a chunk handed out in full to the read hooks.
func (r *Reader[T]) chunkDone() {
	if r.cur.event.Bytes > 0 {
		r.c.cfg.hooks.onRead(r.cur.event)
		r.cur.event = ReadEvent{}
	}
}

// throttled waits as the throttle says: answers that bring nothing new
// come back ever more slowly, so that a server repeating itself cannot make
// the Reader spin.
func (r *Reader[T]) throttled(ctx context.Context) error {
	d, _ := r.reading.throttle.Next(0)
	r.retried()
	return retry.Sleep(ctx, d)
}

// retried counts a wait of the retry schedule or of the throttle.
func (r *Reader[T]) retried() {
	r.mu.Lock()
	r.stats.Retries++
	r.mu.Unlock()
}

// fetch performs one read from readPos and loads its batch.
func (r *Reader[T]) fetch(ctx context.Context) error {
	off := Offset(r.reading.pos.Offset)
	begin := time.Now()
	liveReq := r.reading.live && r.cfg.live != LiveNone
	sseReq := liveReq && r.mode == LiveSSE
	ch, ahead, ok, err := r.readChunk(ctx, off, liveReq, sseReq)
	if !ok {
		return err
	}
	ch = r.readHeaders(off, ch, liveReq)
	before := r.reading.pos
	if err := r.load(off, ch, ahead); err != nil {
		return err
	}
	wasUpToDate := r.readState(off, ch)
	// A batch that ends at or before the last delivered position holds
	// nothing new (a server repeating an old answer): not progress, even
	// though it is pending until take drops it.
	fresh := r.batchPending() && !(r.commit.hasLast && Position{Offset: string(ch.next)}.Compare(r.commit.last) <= 0)
	progress := fresh || r.reading.pos.Compare(before) != 0 || ch.closed || (ch.upToDate && !wasUpToDate)
	if progress {
		r.reading.throttle.Reset()
		if !liveReq && !ch.upToDate && !ch.closed && len(ch.data) > 0 && ch.next != off {
			r.prefetch(ctx, ch.next)
		}
		return nil
	}
	if sseReq || (r.cfg.live == LiveNone && ch.upToDate) || time.Since(begin) >= minQuickPoll {
		// An event on an open connection costs no request; a caught-up
		// poll in live mode none returns to the caller; a long wait is
		// a normal long-poll timeout.
		return nil
	}
	// Quick answer with nothing new: throttle, so that a server that
	// repeats the same offset cannot make the Reader spin.
	return r.throttled(ctx)
}

// readChunk reads from off as the Reader's state says: the next event of
// the SSE connection, a long-poll, the catch-up read started ahead, or a
// catch-up GET. ahead holds the chunk's values when they were decoded
// ahead. ok is false when there is nothing to load: err says why, or is
// nil when an SSE connection ended and is to be reopened at once.
func (r *Reader[T]) readChunk(ctx context.Context, off Offset, liveReq, sseReq bool) (ch rawChunk, ahead *decoded[T], ok bool, err error) {
	if liveReq {
		r.dropPrefetch()
	}
	switch {
	case sseReq:
		ch, ok, err = r.readSSE(ctx, off)
		return ch, nil, ok, err
	case liveReq:
		ch, err = r.tr.get(ctx, off, LiveLongPoll, r.reading.cursor, "")
	case r.ahead.pf != nil && r.ahead.pf.off == off:
		ch, ahead, err = r.awaitPrefetch(ctx)
	default:
		ch, err = r.getCatchUp(ctx, off)
	}
	return ch, ahead, err == nil, err
}

// readSSE reads the next chunk of the SSE connection (see readChunk for
// ok), learning the stream's content type first if no GET has told it.
func (r *Reader[T]) readSSE(ctx context.Context, off Offset) (rawChunk, bool, error) {
	if !r.reading.ctypeSet {
		if err := r.learnContentType(ctx); err != nil {
			return rawChunk{}, false, err
		}
	}
	ch, err := r.tr.sseNext(ctx, off, r.reading.cursor)
	if err != nil {
		return rawChunk{}, false, r.sseFailed(ctx, err)
	}
	r.reading.sseFails = 0
	return ch, true, nil
}

// getCatchUp sends a catch-up GET of off: conditional (If-None-Match) when
// the last catch-up GET of off returned an ETag.
func (r *Reader[T]) getCatchUp(ctx context.Context, off Offset) (rawChunk, error) {
	r.dropPrefetch()
	inm := ""
	if r.reading.etag != "" && r.reading.etagOff == off {
		inm = r.reading.etag
	}
	return r.tr.catchUp(ctx, &r.tr.buf, off, inm)
}

// readHeaders keeps what the answer to a read of off says besides its data
// (ETag, content type, cursor) and returns the chunk to load: a 304 stands
// for an empty one, as up to date as the answer that carried the ETag.
func (r *Reader[T]) readHeaders(off Offset, ch rawChunk, liveReq bool) rawChunk {
	switch {
	case ch.notModified:
		ch = rawChunk{next: off, upToDate: r.reading.etagUp}
	case !liveReq && ch.etag != "":
		r.reading.etagOff, r.reading.etag, r.reading.etagUp = off, ch.etag, ch.upToDate
	}
	if ch.ctype != "" {
		r.setContentType(ch.ctype)
	}
	if ch.cursor != "" {
		r.reading.cursor = ch.cursor
	}
	return ch
}

// readState records what the loaded chunk of off says of the stream (up to
// date, closed), tells the hooks when up-to-date changes, and prepares the
// chunk's HookRead event. It returns whether the Reader was up to date
// before.
func (r *Reader[T]) readState(off Offset, ch rawChunk) (wasUpToDate bool) {
	r.mu.Lock()
	wasUpToDate = r.upToDate
	r.upToDate = ch.upToDate
	if ch.closed {
		r.eof = true
	}
	r.mu.Unlock()
	if wasUpToDate != ch.upToDate {
		r.c.cfg.hooks.onUpToDate(UpToDateEvent{Stream: streamOf(r.url), Key: r.key, UpToDate: ch.upToDate, Offset: ch.next})
	}
	if len(ch.data) > 0 {
		r.cur.event = ReadEvent{Stream: streamOf(r.url), Key: r.key, Bytes: len(ch.data), Offset: off, NextOffset: ch.next}
	}
	if ch.upToDate {
		r.reading.live = true
	}
	return wasUpToDate
}

// sseFailed handles the end of an SSE connection: a connection that
// delivered control events and then ended (servers end them about every
// minute) is reopened at once; LiveAuto counts connections that die young
// without any and falls back to long-poll.
func (r *Reader[T]) sseFailed(ctx context.Context, err error) error {
	if !errors.Is(err, ErrDisconnected) {
		return err
	}
	if r.tr.lastControls > 0 && r.tr.lastLife >= r.cfg.sseMinLife {
		return nil // a connection that served its time: reopen at once
	}
	if r.cfg.live == LiveAuto && r.tr.lastLife < r.cfg.sseMinLife {
		r.reading.sseFails++
		if r.reading.sseFails >= r.cfg.sseFallbackN {
			r.mu.Lock()
			r.mode = LiveLongPoll
			r.mu.Unlock()
			r.log.Warn("durable: SSE connections keep failing; falling back to long-poll", "url", redactURL(r.url), "failures", r.reading.sseFails)
			return nil
		}
	}
	if r.tr.lastControls > 0 {
		// A connection that answered and died young: reopen it after the
		// throttle's wait, which grows until the stream makes progress.
		return r.throttled(ctx)
	}
	return err
}

// learnContentType asks the server (HEAD) for the stream's content type
// when no GET has told it yet (needed to frame SSE data).
func (r *Reader[T]) learnContentType(ctx context.Context) error {
	r.tr.requests.Add(1)
	info, err := r.c.headOnce(ctx, r.url)
	if err != nil {
		return err
	}
	r.setContentType(info.ContentType)
	return nil
}

func (r *Reader[T]) setContentType(ct string) {
	r.reading.ctype, r.reading.ctypeSet = ct, true
	r.reading.isJSON = protocol.IsJSON(ct)
	r.mu.Lock()
	r.stats.ContentType = ct
	r.mu.Unlock()
}
