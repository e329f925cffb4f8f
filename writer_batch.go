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

	ctx       context.Context // cancelled when Close gives up waiting
	cancel    context.CancelFunc
	stopped   chan struct{}  // closed once closing and nothing is left to send
	lingerEnd chan struct{}  // wakes the linger goroutine when nothing lingers (buffered, 1)
	wg        sync.WaitGroup // sender goroutines and the linger goroutine
	hookMu    sync.Mutex     // held across each hook call that reports the buffer, so that the reports come in the order they were taken

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
	lingering    bool  // the linger goroutine runs
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
		stopped:      make(chan struct{}),
		lingerEnd:    make(chan struct{}, 1),
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
	if err := p.roomLocked(ctx, size, block); err != nil {
		p.mu.Unlock()
		return nil, err
	}
	b, dispatch := p.addLocked(enc, size, now)
	if dispatch {
		p.dispatchLocked(time.Now())
	}
	p.mu.Unlock()
	if !wantAck {
		return nil, nil
	}
	return &Ack{b: b}, nil
}

// roomLocked waits until the buffer has room for size more bytes and one
// more message (block) or fails with ErrBufferFull, or with why the Writer
// takes no more writes. It may unlock p.mu while it waits.
func (p *pipeline) roomLocked(ctx context.Context, size int, block bool) error {
	for {
		if err := p.writableLocked(); err != nil {
			return err
		}
		if p.bufMsgs+1 <= p.cfg.bufferMessages && p.bufBytes+size <= p.cfg.bufferBytes {
			return nil
		}
		if !block {
			return ErrBufferFull
		}
		ch := p.space
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			return ctx.Err()
		}
		p.mu.Lock()
	}
}

// addLocked appends one message (size bytes counted against the buffer)
// to the open batch, opening or sealing batches as needed. It returns the
// batch and whether there is something to dispatch: a batch sealed, a new
// linger to wait for, or a batch to send now.
func (p *pipeline) addLocked(enc []byte, size int, now bool) (*wbatch, bool) {
	dispatch := false
	closing := 0 // bytes a sealed batch adds: the JSON array's "]"
	if p.isJSON {
		closing = 1
	}
	b := p.open
	if b != nil && b.n > 0 && (b.n+1 > p.cfg.maxBatchMessages || len(b.body)+size+closing > p.cfg.maxBatchBytes) {
		p.sealLocked()
		dispatch = true
		b = nil
	}
	if b == nil || b.n == 0 {
		if b == nil {
			b = p.newBatchLocked(len(enc))
		}
		b.deadline = time.Now().Add(p.cfg.linger)
		dispatch = true // wait for its linger
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
		dispatch = true
	}
	if b.n >= p.cfg.maxBatchMessages || len(b.body)+2*closing+1 > p.cfg.maxBatchBytes {
		// Full: not even a 1-byte message (with its comma) would fit.
		p.sealLocked()
		dispatch = true
	}
	return b, dispatch
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
		return &Error{Op: "write", URL: redactURL(p.url), Err: ErrClosed}
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

// signalSpaceLocked wakes every writer blocked on the buffer.
func (p *pipeline) signalSpaceLocked() {
	close(p.space)
	p.space = make(chan struct{})
}
