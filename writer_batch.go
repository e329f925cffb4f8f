package durable

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// pipeline is the part of a Writer that does not depend on T: the buffer,
// the batches, the in-flight window and the goroutines that send batches.
// It holds no reference to its Writer, so a Writer dropped without Close
// is garbage collected; its cleanup calls beginClose, and the pipeline
// sends what was written and stops.
type pipeline struct {
	c      *Client
	url    string
	cfg    writerConfig
	isJSON bool
	ct     string
	pid    string

	ctx      context.Context // cancelled when Close gives up waiting
	cancel   context.CancelFunc
	kick     chan struct{} // wakes the dispatch loop (buffered, 1)
	loopDone chan struct{}
	wg       sync.WaitGroup // sender goroutines

	mu           sync.Mutex
	space        chan struct{} // closed (and replaced) when buffer space is released or writes must stop
	open         *wbatch       // batch accepting messages (nil or n == 0: none)
	queue        []*wbatch     // sealed, waiting for an in-flight slot
	pending      []*wbatch     // sealed and not settled, in sequence order
	last         *wbatch       // last sealed batch
	inflight     int
	window       int // in-flight limit now: MaxInFlight, halved by each sequence gap, regrown by gap-free batches
	sizeHint     int // body size of the last sealed batch
	okStreak     int // batches settled without a gap since the window last changed
	regrow       int // the window grows by one after regrow × window gap-free batches
	nextSeq      int64
	epoch        int64
	epochReady   bool // the epoch store has been consulted
	confirmed    bool // a batch of the current epoch landed: the pipeline may open
	bufMsgs      int
	bufBytes     int
	err          error // sticky: the first batch loss
	closing      bool
	aborted      error // why Close stopped waiting
	closeBatch   *wbatch
	lastAcked    Offset
	lastAckedSeq int64
}

func newPipeline(c *Client, u string, cfg writerConfig, pid string) *pipeline {
	p := &pipeline{
		c:            c,
		url:          u,
		cfg:          cfg,
		isJSON:       protocol.IsJSON(cfg.contentType),
		ct:           cfg.contentType,
		pid:          pid,
		kick:         make(chan struct{}, 1),
		loopDone:     make(chan struct{}),
		space:        make(chan struct{}),
		epoch:        cfg.epoch,
		window:       cfg.maxInFlight,
		regrow:       minRegrow,
		lastAckedSeq: -1,
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// wbatch is one request's worth of messages.
type wbatch struct {
	body     []byte // JSON: "[" m1 "," m2 ... and "]" once sealed
	n        int    // messages
	acct     int    // bytes counted against the buffer
	seq      int64
	close    bool // Stream-Closed: true (CloseStream)
	sealNow  bool // skip the linger
	deadline time.Time
	gapped   bool    // overtook an earlier batch (set by its sender before settling)
	prev     *wbatch // the batch sealed before this one, until this one settles

	written     chan struct{} // closed once a request of this batch has been fully sent (or it settled)
	writtenOnce sync.Once

	done chan struct{} // closed when settled; off and err are set before
	off  Offset
	err  error
}

func (b *wbatch) markWritten() {
	if b.written != nil { // nil: never sealed
		b.writtenOnce.Do(func() { close(b.written) })
	}
}

// enqueue adds one encoded message to the open batch, waiting for buffer
// space (block) or failing with ErrBufferFull.
func (p *pipeline) enqueue(ctx context.Context, enc []byte, block, wantAck, now bool) (*Ack, error) {
	size := len(enc)
	if p.isJSON {
		size++ // the comma (or a bracket)
		if len(enc)+2 > p.cfg.maxBatchBytes {
			return nil, p.tooLarge(len(enc))
		}
	} else if len(enc) > p.cfg.maxBatchBytes {
		return nil, p.tooLarge(len(enc))
	}

	p.mu.Lock()
	for {
		if err := p.writableLocked(); err != nil {
			p.mu.Unlock()
			return nil, err
		}
		if p.bufMsgs+1 <= p.cfg.bufferMessages && p.bufBytes+size <= p.cfg.bufferBytes {
			break
		}
		if !block {
			p.mu.Unlock()
			return nil, ErrBufferFull
		}
		ch := p.space
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		p.mu.Lock()
	}
	kick := false
	closing := 0 // bytes a sealed batch adds: the JSON array's "]"
	if p.isJSON {
		closing = 1
	}
	b := p.open
	if b != nil && b.n > 0 && (b.n+1 > p.cfg.maxBatchMessages || len(b.body)+size+closing > p.cfg.maxBatchBytes) {
		p.sealLocked()
		kick = true
		b = nil
	}
	if b == nil || b.n == 0 {
		if b == nil {
			b = p.newBatchLocked(len(enc))
		}
		b.deadline = time.Now().Add(p.cfg.linger)
		kick = true // arm the linger timer
	}
	if p.isJSON && b.n > 0 {
		b.body = append(b.body, ',')
	}
	if b.n == 0 && len(enc) >= bigMessage {
		// A big first message: allocate by copying it (no zeroing pass over
		// a presized buffer).
		b.body = append(b.body[:len(b.body):len(b.body)], enc...)
	} else {
		b.body = append(b.body, enc...)
	}
	b.n++
	b.acct += size
	p.bufMsgs++
	p.bufBytes += size
	if now {
		b.sealNow = true
		kick = true
	}
	if b.n >= p.cfg.maxBatchMessages || len(b.body)+2*closing+1 > p.cfg.maxBatchBytes {
		// Full: not even a 1-byte message (with its comma) would fit.
		p.sealLocked()
		kick = true
	}
	p.mu.Unlock()
	if kick {
		p.wake()
	}
	if !wantAck {
		return nil, nil
	}
	return &Ack{b: b}, nil
}

func (p *pipeline) tooLarge(n int) error {
	return &Error{Op: "write", URL: redactURL(p.url),
		Err: fmt.Errorf("%w: %d bytes, max batch %d bytes", ErrMessageTooLarge, n, p.cfg.maxBatchBytes)}
}

// writableLocked reports why a write cannot be accepted now.
func (p *pipeline) writableLocked() error {
	switch {
	case p.err != nil:
		return p.err
	case p.closing:
		return &Error{Op: "write", URL: redactURL(p.url), Err: ErrWriterClosed}
	case p.closeBatch != nil:
		return &Error{Op: "write", URL: redactURL(p.url), Err: ErrStreamClosed}
	}
	return nil
}

// Growing the in-flight window back after sequence gaps: by one after
// regrow × window gap-free batches, regrow starting at minRegrow and
// doubling (up to maxRegrow) with each gap that shrinks the window. Where
// pipelined requests are often applied out of order (a server reading
// several bodies at once on a busy machine) the window then settles low
// instead of regrowing into the next gap, each of which costs a whole
// batch sent again; where gaps are rare it stays wide.
const (
	minRegrow = 16
	maxRegrow = 1024
)

// bigMessage is the size from which a message starting a batch is copied
// into a fresh allocation of its own size instead of a presized buffer.
const bigMessage = 64 << 10

func (p *pipeline) newBatchLocked(first int) *wbatch {
	b := &wbatch{done: make(chan struct{})}
	if first < bigMessage {
		// Size the body like the last batch, so that it rarely grows by
		// copying.
		hint := min(max(4096, p.sizeHint+p.sizeHint/8), p.cfg.maxBatchBytes)
		b.body = make([]byte, 0, hint)
	}
	if p.isJSON {
		b.body = append(b.body, '[')
	}
	p.open = b
	return b
}

// sealLocked closes the open batch to new messages, numbers it and queues
// it for sending.
func (p *pipeline) sealLocked() {
	b := p.open
	p.open = nil
	if b == nil || (b.n == 0 && !b.close) {
		return
	}
	if p.isJSON && b.n > 0 && !b.close {
		b.body = append(b.body, ']')
	}
	p.sizeHint = len(b.body)
	b.seq = p.nextSeq
	p.nextSeq++
	b.written = make(chan struct{})
	b.prev = p.last
	p.last = b
	p.queue = append(p.queue, b)
	p.pending = append(p.pending, b)
}

// wake nudges the dispatch loop.
func (p *pipeline) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// signalSpaceLocked wakes every writer blocked on the buffer.
func (p *pipeline) signalSpaceLocked() {
	close(p.space)
	p.space = make(chan struct{})
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
	p.mu.Unlock()
	p.wake()
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

// beginClose rejects new writes and has the loop send what is pending and
// stop (Close, and the cleanup of a Writer dropped without Close).
func (p *pipeline) beginClose() {
	p.mu.Lock()
	if !p.closing {
		p.closing = true
		if b := p.open; b != nil && b.n > 0 {
			b.sealNow = true
		}
		p.signalSpaceLocked()
	}
	p.mu.Unlock()
	p.wake()
}

// close is Writer.Close.
func (p *pipeline) close(ctx context.Context) error {
	p.beginClose()
	select {
	case <-p.loopDone:
	case <-ctx.Done():
		p.mu.Lock()
		if p.aborted == nil {
			p.aborted = &Error{Op: "write", URL: redactURL(p.url), Err: fmt.Errorf("%w before its batch landed: %w", ErrWriterClosed, ctx.Err())}
		}
		p.mu.Unlock()
		p.cancel()
		<-p.loopDone
	}
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
	}
	p.mu.Unlock()
	p.wake()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop is the dispatch goroutine: it seals batches whose linger has passed
// and starts a sender for each batch when an in-flight slot is free.
func (p *pipeline) loop() {
	defer close(p.loopDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	aborted := p.ctx.Done()
	for {
		p.mu.Lock()
		wait, exit := p.dispatchLocked(time.Now())
		p.mu.Unlock()
		if exit {
			p.wg.Wait()
			p.cancel()
			return
		}
		var tc <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-p.kick:
		case <-tc:
		case <-aborted:
			aborted = nil // senders wake the loop as they finish
		}
		timer.Stop()
	}
}

// dispatchLocked starts what can be started. It returns how long to wait
// for the open batch's linger (0: wait for a wake-up) and whether the loop
// is finished.
func (p *pipeline) dispatchLocked(now time.Time) (time.Duration, bool) {
	if p.ctx.Err() != nil && p.err == nil && p.aborted != nil && (len(p.queue) > 0 || (p.open != nil && p.open.n > 0)) {
		p.err = p.aborted
	}
	if p.err != nil {
		p.failUnsentLocked()
		return 0, p.closing && p.inflight == 0
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
		return 0, true
	}
	if b := p.open; b != nil && b.n > 0 && p.inflight < p.window && (p.confirmed || p.inflight == 0) {
		if d := b.deadline.Sub(now); d > 0 {
			return d, false
		}
		return time.Nanosecond, false
	}
	return 0, false
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
	switch {
	case b.gapped:
		if p.window > 1 {
			// Gaps again: wait longer before growing the window back.
			p.regrow = min(2*p.regrow, maxRegrow)
		}
		p.window = max(1, p.window/2)
		p.okStreak = 0
	case err == nil && p.window < p.cfg.maxInFlight:
		if p.okStreak++; p.okStreak >= p.regrow*p.window {
			p.window++
			p.okStreak = 0
			if p.window == p.cfg.maxInFlight {
				// Back to full pipelining: a rare gap costs little again.
				p.regrow = max(minRegrow, p.regrow/2)
			}
		}
	}
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
