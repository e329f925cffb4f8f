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

// read fetches the next chunk through the retry loop: transient failures
// are retried per the Reader's policy, logged by the Client's logger and
// reported to the retry hook; Close ends the loop at once.
func (r *Reader[T]) read(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.closeCtx, cancel)
	defer stop()
	logRetry := r.c.retryLogger(ctx, "read", r.url)
	return retry.Do(ctx, r.sched, r.fetch, classifier(true), func(ev retry.Event) {
		logRetry(ev)
		if !ev.Recovered {
			r.retried(ev.Attempt, ev.Err, ev.Wait)
		}
	})
}

// chunkDone reports a chunk handed out in full to the read hooks.
func (r *Reader[T]) chunkDone() {
	if r.chunk.Bytes > 0 {
		r.c.cfg.hooks.onRead(r.chunk)
		r.chunk = ReadEvent{}
	}
}

// throttled waits as the throttle says: answers that bring nothing new
// come back ever more slowly, so that a server repeating itself cannot make
// the Reader spin.
func (r *Reader[T]) throttled(ctx context.Context) error {
	d, _ := r.throttle.Next(0)
	r.retried(r.throttle.Failures(), nil, d)
	return retry.Sleep(ctx, d)
}

// retried counts a wait of the retry schedule (or of the throttle, with a
// nil err) and reports it to the retry hook.
func (r *Reader[T]) retried(attempt int, err error, wait time.Duration) {
	r.mu.Lock()
	r.stats.Retries++
	r.mu.Unlock()
	if r.cfg.retryHook != nil {
		r.cfg.retryHook(RetryInfo{Attempt: attempt, Err: err, Wait: wait, Offset: Offset(r.readPos.Offset)})
	}
}

// fetch performs one read from readPos and loads its batch.
func (r *Reader[T]) fetch(ctx context.Context) error {
	callerCtx := ctx
	off := Offset(r.readPos.Offset)
	begin := time.Now()
	liveReq := r.live && r.cfg.live != LiveNone
	sseReq := liveReq && r.mode == LiveSSE
	var (
		ch    rawChunk
		err   error
		ahead *decoded[T] // ch decoded ahead
	)
	if liveReq {
		r.dropPrefetch()
	}
	switch {
	case sseReq:
		if !r.ctypeSet {
			if err := r.learnContentType(ctx); err != nil {
				return err
			}
		}
		ch, err = r.tr.sseNext(ctx, off, r.cursor)
		if err != nil {
			return r.sseFailed(ctx, err)
		}
		r.sseFails = 0
	case liveReq:
		ch, err = r.tr.get(ctx, off, LiveLongPoll, r.cursor, "")
	case r.pf != nil && r.pf.off == off:
		// The catch-up read of this offset was started while the last
		// chunk was being handed out: its outcome stands for this one.
		pf := r.pf
		select {
		case <-pf.done:
		case <-ctx.Done():
			return ctx.Err() // pf is kept for the next call
		}
		r.pf = nil
		r.tr.buf, r.pfBuf = pf.buf, r.tr.buf
		ch, err = pf.ch, pf.err
		if pf.dec != nil {
			if pf.decOK && err == nil {
				ahead = pf.dec
			} else if r.pfDec == nil {
				r.pfDec = pf.dec // spare slabs again
			}
		}
	default:
		r.dropPrefetch()
		inm := ""
		if r.etag != "" && r.etagOff == off {
			inm = r.etag
		}
		ch, err = r.tr.catchUp(ctx, &r.tr.buf, off, inm)
	}
	if err != nil {
		return err
	}
	switch {
	case ch.notModified:
		ch = rawChunk{next: off, upToDate: r.etagUp}
	case !liveReq && ch.etag != "":
		r.etagOff, r.etag, r.etagUp = off, ch.etag, ch.upToDate
	}
	if ch.ctype != "" {
		r.setContentType(ch.ctype)
	}
	if ch.cursor != "" {
		r.cursor = ch.cursor
	}
	before := r.readPos
	if err := r.load(off, ch, ahead); err != nil {
		return err
	}
	r.mu.Lock()
	wasUpToDate := r.upToDate
	r.upToDate = ch.upToDate
	if ch.closed {
		r.eof = true
	}
	r.mu.Unlock()
	if wasUpToDate != ch.upToDate {
		r.c.cfg.hooks.onUpToDate(UpToDateEvent{Stream: streamOf(r.url), Key: r.key, UpToDate: ch.upToDate, Offset: ch.next})
	}
	if len(ch.data) > 0 {
		r.chunk = ReadEvent{Stream: streamOf(r.url), Key: r.key, Bytes: len(ch.data), Offset: off, NextOffset: ch.next}
	}
	if ch.upToDate {
		r.live = true
	}
	// A batch that ends at or before the last delivered position holds
	// nothing new (a server repeating an old answer): not progress, even
	// though it is pending until take drops it.
	fresh := r.batchPending() && !(r.hasLast && Position{Offset: string(ch.next)}.Compare(r.last) <= 0)
	progress := fresh || r.readPos.Compare(before) != 0 || ch.closed || (ch.upToDate && !wasUpToDate)
	if progress {
		r.throttle.Reset()
		if !liveReq && !ch.upToDate && !ch.closed && len(ch.data) > 0 && ch.next != off && !r.noPrefetch {
			r.prefetch(callerCtx, ch.next)
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
		r.sseFails++
		if r.sseFails >= r.cfg.sseFallbackN {
			r.mu.Lock()
			r.mode = LiveLongPoll
			r.mu.Unlock()
			r.log.Warn("durable: SSE connections keep failing; falling back to long-poll", "url", redactURL(r.url), "failures", r.sseFails)
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
	r.ctype, r.ctypeSet = ct, true
	r.isJSON = protocol.IsJSON(ct)
}
