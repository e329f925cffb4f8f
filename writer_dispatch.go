package durable

import (
	"context"
	"fmt"
	"time"
)

// Dispatching a Writer's batches. There is no goroutine while the Writer
// has nothing to send: whoever changes the pipeline's state (a write, a
// sender settling its batch, Flush, Close) calls dispatchLocked, which
// starts a sender for each sealed batch an in-flight slot is free for. The
// only other goroutine is the linger goroutine, which runs while an open
// batch waits for its linger and stops once none does.

// dispatch is dispatchLocked taking the lock.
func (p *pipeline) dispatch() {
	p.mu.Lock()
	p.dispatchLocked(time.Now())
	p.mu.Unlock()
}

// dispatchLocked starts what can be started, and the linger goroutine if
// the open batch must wait for its linger and none runs.
func (p *pipeline) dispatchLocked(now time.Time) {
	wait := p.startLocked(now)
	switch {
	case wait > 0 && !p.lingering:
		p.lingering = true
		p.wg.Add(1)
		go p.linger(wait)
	case wait == 0 && p.lingering:
		// Nothing waits for a linger any more: end the linger goroutine
		// now rather than at its deadline (a Writer with nothing to send
		// runs no goroutine; Close returns).
		select {
		case p.lingerEnd <- struct{}{}:
		default:
		}
	}
}

// linger waits for the open batch's linger, then dispatches, for as long
// as an open batch waits for one. A batch opened later has a later
// deadline, so waiting for the first is never too long.
func (p *pipeline) linger(wait time.Duration) {
	defer p.wg.Done()
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-p.lingerEnd:
		case <-p.ctx.Done(): // Close gave up: fail what is unsent
		}
		p.mu.Lock()
		wait = p.startLocked(time.Now())
		p.lingering = wait > 0
		p.mu.Unlock()
		if wait == 0 {
			return
		}
		t.Reset(wait)
	}
}

// startLocked seals the open batch if its linger has passed and starts a
// sender for each sealed batch while an in-flight slot is free. It returns
// how long the open batch still has to wait for its linger (0: nothing to
// wait for; a sender or a write dispatches next). Once the Writer is
// closing and nothing is left, it closes p.stopped.
func (p *pipeline) startLocked(now time.Time) time.Duration {
	if p.ctx.Err() != nil && p.err == nil && p.aborted != nil && (len(p.queue) > 0 || (p.open != nil && p.open.n > 0)) {
		p.err = p.aborted
	}
	if p.err != nil {
		p.failUnsentLocked()
		if p.closing && p.inflight == 0 {
			p.stopLocked()
		}
		return 0
	}
	for p.inflight < p.window {
		if !p.confirmed && p.inflight > 0 {
			break // the first batch of an epoch goes alone
		}
		if len(p.queue) == 0 {
			b := p.open
			if b == nil || b.n == 0 || !(b.sealNow || p.closing || !now.Before(b.deadline)) {
				break
			}
			p.sealLocked()
		}
		b := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.inflight++
		p.wg.Add(1)
		go p.send(b)
	}
	if p.closing && p.inflight == 0 && len(p.queue) == 0 && (p.open == nil || p.open.n == 0) {
		p.stopLocked()
		return 0
	}
	if b := p.open; b != nil && b.n > 0 && p.inflight < p.window && (p.confirmed || p.inflight == 0) {
		if d := b.deadline.Sub(now); d > 0 {
			return d
		}
		return time.Nanosecond
	}
	return 0
}

// stopLocked marks the pipeline stopped: closing, and nothing left to send.
func (p *pipeline) stopLocked() {
	if !isClosed(p.stopped) {
		close(p.stopped)
	}
}

// failUnsentLocked fails every batch not yet sent with the sticky error.
func (p *pipeline) failUnsentLocked() {
	if b := p.open; b != nil && b.n > 0 {
		p.open = nil
		p.settleLocked(b, p.err)
		close(b.done)
	}
	for _, b := range p.queue {
		p.settleLocked(b, p.err)
		close(b.done)
	}
	p.queue = nil
}

// settleLocked records a batch's outcome and releases its buffer space.
// The caller closes b.done after unlocking.
func (p *pipeline) settleLocked(b *wbatch, err error) {
	b.err = err
	for i, pb := range p.pending {
		if pb == b {
			copy(p.pending[i:], p.pending[i+1:])
			p.pending[len(p.pending)-1] = nil
			p.pending = p.pending[:len(p.pending)-1]
			break
		}
	}
	p.bufMsgs -= b.n
	p.bufBytes -= b.acct
	p.signalSpaceLocked()
	p.adjustWindowLocked(b.gapped, err == nil)
	if err == nil {
		p.confirmed = true
		if b.seq > p.lastAckedSeq && b.off != "" {
			p.lastAckedSeq, p.lastAcked = b.seq, b.off
		}
	} else if p.err == nil {
		p.err = err
	}
	b.body = nil
	b.prev = nil
	b.markWritten()
}

// adjustWindowLocked shrinks the in-flight window after a batch that
// overtook an earlier one, and grows it back after gap-free batches.
func (p *pipeline) adjustWindowLocked(gapped, ok bool) {
	switch {
	case gapped:
		if p.window > 1 {
			// Gaps again: wait longer before growing the window back.
			p.regrow = min(2*p.regrow, maxRegrow)
		}
		p.window = max(1, p.window/2)
		p.okStreak = 0
	case ok && p.window < p.cfg.maxInFlight:
		if p.okStreak++; p.okStreak >= p.regrow*p.window {
			p.window++
			p.okStreak = 0
			if p.window == p.cfg.maxInFlight {
				// Back to full pipelining: a rare gap costs little again.
				p.regrow = max(minRegrow, p.regrow/2)
			}
		}
	}
}

// flush is Writer.Flush.
func (p *pipeline) flush(ctx context.Context) error {
	p.mu.Lock()
	targets := make([]*wbatch, 0, len(p.pending)+1)
	targets = append(targets, p.pending...)
	if b := p.open; b != nil && b.n > 0 {
		b.sealNow = true
		targets = append(targets, b)
	}
	p.dispatchLocked(time.Now())
	p.mu.Unlock()
	for _, b := range targets {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// beginClose rejects new writes and sends what is pending without waiting
// for the linger; the pipeline stops once nothing is left (Close, and the
// cleanup of a Writer dropped without Close).
func (p *pipeline) beginClose() {
	p.mu.Lock()
	if !p.closing {
		p.closing = true
		if b := p.open; b != nil && b.n > 0 {
			b.sealNow = true
		}
		p.signalSpaceLocked()
	}
	p.dispatchLocked(time.Now())
	p.mu.Unlock()
}

// close is Writer.Close.
func (p *pipeline) close(ctx context.Context) error {
	p.beginClose()
	select {
	case <-p.stopped:
	case <-ctx.Done():
		p.mu.Lock()
		if p.aborted == nil {
			p.aborted = &Error{Op: "write", URL: redactURL(p.url), Err: fmt.Errorf("%w before its batch landed: %w", ErrClosed, ctx.Err())}
		}
		p.mu.Unlock()
		p.cancel() // senders and the linger goroutine end now
		p.dispatch()
		<-p.stopped
	}
	p.wg.Wait()
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// closeStream is Writer.CloseStream with the final messages encoded.
func (p *pipeline) closeStream(ctx context.Context, body []byte, n int) error {
	if len(body) > p.cfg.maxBatchBytes {
		return p.tooLarge(len(body))
	}
	p.mu.Lock()
	b := p.closeBatch
	if b == nil {
		if err := p.writableLocked(); err != nil {
			p.mu.Unlock()
			return err
		}
		p.sealLocked()
		b = &wbatch{done: make(chan struct{}), body: body, n: n, acct: len(body), close: true, sealNow: true}
		p.bufMsgs += b.n
		p.bufBytes += b.acct
		p.open = b
		p.sealLocked()
		p.closeBatch = b
		p.dispatchLocked(time.Now())
	}
	p.mu.Unlock()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
