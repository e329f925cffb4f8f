package durable

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/durablego/durable/internal/jsonframe"
	"github.com/durablego/durable/internal/protocol"
	"github.com/durablego/durable/internal/retry"
)

// Writer errors (besides the Client's: ErrStaleEpoch, ErrStreamClosed,
// ErrNotFound, ErrContentTypeMismatch, ...).
var (
	// ErrBufferFull is returned by TryWrite when the Writer's buffer
	// (messages or bytes) has no room for the message.
	ErrBufferFull = errors.New("writer buffer full")
	// ErrMessageTooLarge is returned by Write when a message cannot fit in
	// a batch on its own (see WithMaxBatchBytes). Nothing is sent.
	ErrMessageTooLarge = errors.New("message larger than the max batch size")
	// ErrWriterClosed is returned by writes after Close, and is the cause
	// of the loss of batches that Close had to abandon.
	ErrWriterClosed = errors.New("writer closed")
	// ErrEncode wraps a value the Writer's codec could not encode, or whose
	// encoding is not one JSON value on a JSON stream. Only that Write fails.
	ErrEncode = errors.New("message encoding failed")
	// ErrProducerReused means the server answered a batch's first attempt
	// as a duplicate: its (Producer-Id, Producer-Epoch, Producer-Seq) was
	// already used by another writer, so the batch was NOT appended. Use a
	// new epoch per writer incarnation (WithEpochStore or WithAutoClaim) or
	// a unique producer ID.
	ErrProducerReused = errors.New("producer ID, epoch and sequence already used by another writer")
)

// Writer appends values of T to one stream in batches, as an idempotent
// producer (PROTOCOL.md §5.2.1): every request carries Producer-Id,
// Producer-Epoch and Producer-Seq, so a retried batch is never appended
// twice. Open one with NewWriter and always Close it. A Writer is safe for
// concurrent use; messages written by one goroutine land in the order it
// wrote them.
//
// Batching. For application/json streams each value is one message, and a
// batch is one JSON array body; for other content types a batch is the
// concatenation of the messages' bytes. A batch is sent when it reaches the
// max messages or bytes, when its linger has passed (or at once for
// WriteSync, Flush and Close), and never before an in-flight slot is free:
// while all MaxInFlight slots are busy the open batch keeps growing.
//
// Delivery. Up to MaxInFlight batches are in flight; a batch that reaches
// the server before an earlier one is answered with a sequence gap and
// resent once the earlier one has landed, so order is kept. Network errors,
// truncated responses, 5xx and 429 are retried with the writer's retry
// policy (cenkalti/backoff/v4; Retry-After is a floor); the Client's
// WithTimeout, if set, bounds each attempt, and an attempt cut off by it is
// retried the same way. A batch that cannot
// land (retries exhausted, stale epoch, closed or deleted stream, content
// type mismatch, ...) fails the Writer: its error is sticky, returned by
// Flush, Close, the Acks of every message not yet appended, and every later
// write. A lost batch is never silent (when retries give up after an
// attempt that got no answer, the batch may in fact have landed: it is
// reported as lost all the same).
//
// Producer identity. One (producer ID, epoch) pair must belong to one
// Writer: the default random ID guarantees it; with a fixed ID use
// WithEpochStore (each Writer takes the next epoch, fencing older ones with
// ErrStaleEpoch) or WithAutoClaim. A Writer that reuses a pair already used
// on the stream gets ErrProducerReused instead of having its first batch
// silently dropped as a duplicate.
//
// Offsets. A message's Ack (WriteAsync, WriteSync) reports the stream's
// Stream-Next-Offset right after the batch holding it was appended: reading
// from it returns only data after the message. When a retry is answered as
// a duplicate (the first attempt landed but its response was lost), the
// server reports its current tail, which can be later than that, or no
// offset at all (the Node reference server omits it): the Ack then reports
// an empty Offset, and LastAcked keeps the last offset a server reported.
//
// Memory is bounded by the buffer options: messages waiting, batched and in
// flight all count until their batch settles.
type Writer[T any] struct {
	c        *Client
	url      string
	cfg      writerConfig
	codec    Codec[T]
	isJSON   bool
	validate bool // check each encoding with jsonframe.Valid (custom codec or []byte on a JSON stream)
	fast     int  // fastNone, fastBytes or fastJSON
	ct       string
	pid      string

	ctx      context.Context // cancelled when Close gives up waiting
	cancel   context.CancelFunc
	kick     chan struct{} // wakes the dispatch loop (buffered, 1)
	loopDone chan struct{}
	wg       sync.WaitGroup // sender goroutines
	scratch  sync.Pool      // *scratch encode buffers

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

// Ack reports the outcome of one message written with WriteAsync.
type Ack struct{ b *wbatch }

// Done is closed when the message's batch has settled.
func (a *Ack) Done() <-chan struct{} { return a.b.done }

// Wait waits until the message's batch has settled and returns the offset
// after it (see Writer) or the error that lost it. A ctx that ends first
// only ends the wait.
func (a *Ack) Wait(ctx context.Context) (Offset, error) {
	select {
	case <-a.b.done:
		return a.b.off, a.b.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// NewWriter returns a Writer appending to stream (a name relative to the
// Client's base URL, or a full URL) and starts its dispatch goroutine;
// Close stops it. Options are validated here. The stream must exist; its
// content type must match WithContentType (default application/json, or
// application/octet-stream when T is []byte).
func NewWriter[T any](c *Client, stream string, opts ...WriterOption) (*Writer[T], error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil Client", ErrInvalidArgument)
	}
	u, err := c.streamURL(stream)
	if err != nil {
		return nil, &Error{Op: "writer", URL: redactURL(stream), Err: err}
	}
	cfg := defaultWriterConfig()
	for _, o := range opts {
		if o == nil {
			cfg.fail("nil WriterOption")
			continue
		}
		o.applyWriter(&cfg)
	}
	codec, cerr := codecFor[T](cfg.codec)
	if cerr != nil {
		cfg.errs = append(cfg.errs, cerr)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var zero T
	_, isBytes := any(zero).([]byte)
	if cfg.contentType == "" {
		cfg.contentType = protocol.ContentTypeJSON
		if isBytes {
			cfg.contentType = "application/octet-stream"
		}
	}
	pid := cfg.producerID
	if pid == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		pid = hex.EncodeToString(b[:])
	}
	_, defaultJSON := codec.(JSONCodec[T])
	w := &Writer[T]{
		c:            c,
		url:          u,
		cfg:          cfg,
		codec:        codec,
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
	w.validate = w.isJSON && !defaultJSON
	switch any(codec).(type) {
	case JSONCodec[T]:
		w.fast = fastJSON
		if byPointerSame[T]() {
			w.fast = fastJSONPtr
		}
	case BytesCodec:
		w.fast = fastBytes
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.loop()
	return w, nil
}

// ProducerID returns the Producer-Id the Writer sends.
func (w *Writer[T]) ProducerID() string { return w.pid }

// Epoch returns the producer epoch in use. With WithEpochStore or
// WithAutoClaim it is final once the first batch has landed.
func (w *Writer[T]) Epoch() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.epoch
}

// LastAcked returns the offset after the last batch known to have landed
// (in sequence order), or "" if none has yet.
func (w *Writer[T]) LastAcked() Offset {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastAcked
}

// Write queues v. It blocks while the buffer is full, until there is room
// or ctx ends (ctx.Err() is returned and v is not queued). It fails at once
// with ErrEncode (v cannot be encoded) or ErrMessageTooLarge, which affect
// only this call, and with the Writer's sticky error after a batch was
// lost, ErrWriterClosed after Close, or ErrStreamClosed after CloseStream.
// A nil error means queued, not landed: use Flush, WriteSync or WriteAsync
// to learn the outcome.
func (w *Writer[T]) Write(ctx context.Context, v T) error {
	_, err := w.write(ctx, v, true, false, false)
	return err
}

// TryWrite is Write without waiting: when the buffer is full it returns
// ErrBufferFull and v is not queued.
func (w *Writer[T]) TryWrite(v T) error {
	_, err := w.write(context.Background(), v, false, false, false)
	return err
}

// WriteAsync is Write that also returns the message's Ack.
func (w *Writer[T]) WriteAsync(ctx context.Context, v T) (*Ack, error) {
	return w.write(ctx, v, true, true, false)
}

// WriteSync writes v, sends its batch without waiting for the linger, and
// waits until it has landed: it returns the offset after the batch (see
// Writer) or the error that lost it. If ctx ends first the message may
// still land later.
func (w *Writer[T]) WriteSync(ctx context.Context, v T) (Offset, error) {
	a, err := w.write(ctx, v, true, true, true)
	if err != nil {
		return "", err
	}
	return a.Wait(ctx)
}

func (w *Writer[T]) write(ctx context.Context, v T, block, wantAck, now bool) (*Ack, error) {
	sc := w.getScratch()
	defer w.putScratch(sc)
	enc, err := w.encodeMsg(sc, v)
	if err != nil {
		return nil, err
	}
	size := len(enc)
	if w.isJSON {
		size++ // the comma (or a bracket)
		if len(enc)+2 > w.cfg.maxBatchBytes {
			return nil, w.tooLarge(len(enc))
		}
	} else if len(enc) > w.cfg.maxBatchBytes {
		return nil, w.tooLarge(len(enc))
	}

	w.mu.Lock()
	for {
		if err := w.writableLocked(); err != nil {
			w.mu.Unlock()
			return nil, err
		}
		if w.bufMsgs+1 <= w.cfg.bufferMessages && w.bufBytes+size <= w.cfg.bufferBytes {
			break
		}
		if !block {
			w.mu.Unlock()
			return nil, ErrBufferFull
		}
		ch := w.space
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		w.mu.Lock()
	}
	kick := false
	closing := 0 // bytes a sealed batch adds: the JSON array's "]"
	if w.isJSON {
		closing = 1
	}
	b := w.open
	if b != nil && b.n > 0 && (b.n+1 > w.cfg.maxBatchMessages || len(b.body)+size+closing > w.cfg.maxBatchBytes) {
		w.sealLocked()
		kick = true
		b = nil
	}
	if b == nil || b.n == 0 {
		if b == nil {
			b = w.newBatchLocked(len(enc))
		}
		b.deadline = time.Now().Add(w.cfg.linger)
		kick = true // arm the linger timer
	}
	if w.isJSON && b.n > 0 {
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
	w.bufMsgs++
	w.bufBytes += size
	if now {
		b.sealNow = true
		kick = true
	}
	if b.n >= w.cfg.maxBatchMessages || len(b.body)+2*closing+1 > w.cfg.maxBatchBytes {
		// Full: not even a 1-byte message (with its comma) would fit.
		w.sealLocked()
		kick = true
	}
	w.mu.Unlock()
	if kick {
		w.wake()
	}
	if !wantAck {
		return nil, nil
	}
	return &Ack{b: b}, nil
}

// scratch is a reusable encoding buffer.
type scratch struct {
	b    []byte        // custom codecs
	buf  bytes.Buffer  // the default JSON codec
	enc  *json.Encoder // on buf
	slot any           // fastJSONPtr: a *T the value is copied into
}

func (w *Writer[T]) putScratch(sc *scratch) {
	if cap(sc.b) <= 64<<10 && sc.buf.Cap() <= 64<<10 {
		w.scratch.Put(sc)
	}
}

func (w *Writer[T]) getScratch() *scratch {
	if sc, ok := w.scratch.Get().(*scratch); ok {
		return sc
	}
	sc := &scratch{}
	sc.enc = json.NewEncoder(&sc.buf)
	return sc
}

// encodeMsg encodes one message, into sc unless it can be used as it is
// (T = []byte with the default codec); the result is valid until sc is
// reused.
func (w *Writer[T]) encodeMsg(sc *scratch, v T) ([]byte, error) {
	switch w.fast {
	case fastBytes:
		return w.check(any(v).([]byte), nil)
	case fastJSON, fastJSONPtr:
		// Same output as json.Marshal (HTML escaped), without its copy.
		sc.buf.Reset()
		var err error
		if w.fast == fastJSONPtr {
			// Through a pointer to a reused slot: no allocation to box v.
			p, _ := sc.slot.(*T)
			if p == nil {
				p = new(T)
				sc.slot = p
			}
			*p = v
			err = sc.enc.Encode(p)
			var zero T
			*p = zero // keep no reference to the caller's data
		} else {
			err = sc.enc.Encode(v)
		}
		b := sc.buf.Bytes()
		if n := len(b); err == nil && n > 0 && b[n-1] == '\n' {
			b = b[:n-1]
		}
		return w.check(b, err)
	}
	var err error
	sc.b, err = w.codec.Append(sc.b[:0], v)
	return w.check(sc.b, err)
}

// encode appends one message's encoding to dst and checks it.
func (w *Writer[T]) encode(dst []byte, v T) ([]byte, error) {
	enc, err := w.codec.Append(dst, v)
	if _, err := w.check(enc[len(dst):], err); err != nil {
		return dst, err
	}
	return enc, nil
}

// check vets one encoded message.
func (w *Writer[T]) check(enc []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, &Error{Op: "write", URL: redactURL(w.url), Err: fmt.Errorf("%w: %w", ErrEncode, err)}
	}
	switch {
	case w.validate && !jsonframe.Valid(enc):
		return enc, &Error{Op: "write", URL: redactURL(w.url), Err: fmt.Errorf("%w: not one valid JSON value", ErrEncode)}
	case !w.isJSON && len(enc) == 0:
		return enc, &Error{Op: "write", URL: redactURL(w.url), Err: fmt.Errorf("%w: empty message", ErrInvalidArgument)}
	}
	return enc, nil
}

// Encoding shortcuts for the default codecs.
const (
	fastNone  = iota
	fastBytes // BytesCodec: the value is the message
	fastJSON  // JSONCodec: pooled json.Encoder
	// fastJSONPtr is fastJSON encoding through a *T slot, for types whose
	// encoding is the same by value and by pointer (see byPointerSame).
	fastJSONPtr
)

func (w *Writer[T]) tooLarge(n int) error {
	return &Error{Op: "write", URL: redactURL(w.url),
		Err: fmt.Errorf("%w: %d bytes, max batch %d bytes", ErrMessageTooLarge, n, w.cfg.maxBatchBytes)}
}

// writableLocked reports why a write cannot be accepted now.
func (w *Writer[T]) writableLocked() error {
	switch {
	case w.err != nil:
		return w.err
	case w.closing:
		return &Error{Op: "write", URL: redactURL(w.url), Err: ErrWriterClosed}
	case w.closeBatch != nil:
		return &Error{Op: "write", URL: redactURL(w.url), Err: ErrStreamClosed}
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

func (w *Writer[T]) newBatchLocked(first int) *wbatch {
	b := &wbatch{done: make(chan struct{})}
	if first < bigMessage {
		// Size the body like the last batch, so that it rarely grows by
		// copying.
		hint := min(max(4096, w.sizeHint+w.sizeHint/8), w.cfg.maxBatchBytes)
		b.body = make([]byte, 0, hint)
	}
	if w.isJSON {
		b.body = append(b.body, '[')
	}
	w.open = b
	return b
}

// sealLocked closes the open batch to new messages, numbers it and queues
// it for sending.
func (w *Writer[T]) sealLocked() {
	b := w.open
	w.open = nil
	if b == nil || (b.n == 0 && !b.close) {
		return
	}
	if w.isJSON && b.n > 0 && !b.close {
		b.body = append(b.body, ']')
	}
	w.sizeHint = len(b.body)
	b.seq = w.nextSeq
	w.nextSeq++
	b.written = make(chan struct{})
	b.prev = w.last
	w.last = b
	w.queue = append(w.queue, b)
	w.pending = append(w.pending, b)
}

// wake nudges the dispatch loop.
func (w *Writer[T]) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// signalSpaceLocked wakes every writer blocked on the buffer.
func (w *Writer[T]) signalSpaceLocked() {
	close(w.space)
	w.space = make(chan struct{})
}

// Flush sends every message written so far without waiting for the linger
// and waits until all of them have settled. It returns the Writer's sticky
// error if any batch was lost (now or before), nil only when everything
// written before the call has landed, or ctx.Err() if ctx ends first.
func (w *Writer[T]) Flush(ctx context.Context) error {
	w.mu.Lock()
	targets := make([]*wbatch, 0, len(w.pending)+1)
	targets = append(targets, w.pending...)
	if b := w.open; b != nil && b.n > 0 {
		b.sealNow = true
		targets = append(targets, b)
	}
	w.mu.Unlock()
	w.wake()
	for _, b := range targets {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close stops the Writer: later writes fail with ErrWriterClosed, pending
// messages are sent without waiting for the linger, and Close waits until
// every batch has settled and every goroutine of the Writer has stopped.
// It returns the sticky error if any batch was lost. If ctx ends first,
// Close abandons what has not landed (those messages fail with an error
// wrapping ErrWriterClosed and ctx's error, which Close returns), still
// stops every goroutine, and returns promptly. Close does not close the
// stream on the server; see CloseStream. Calling it again returns the same
// result.
func (w *Writer[T]) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closing {
		w.closing = true
		if b := w.open; b != nil && b.n > 0 {
			b.sealNow = true
		}
		w.signalSpaceLocked()
	}
	w.mu.Unlock()
	w.wake()
	select {
	case <-w.loopDone:
	case <-ctx.Done():
		w.mu.Lock()
		if w.aborted == nil {
			w.aborted = &Error{Op: "write", URL: redactURL(w.url), Err: fmt.Errorf("%w before its batch landed: %w", ErrWriterClosed, ctx.Err())}
		}
		w.mu.Unlock()
		w.cancel()
		<-w.loopDone
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// CloseStream sends everything written so far, then closes the stream on
// the server (Stream-Closed: true) with the final messages, if any,
// appended atomically in the same request, and waits for the outcome.
// Later writes fail with ErrStreamClosed. It is idempotent: a second call
// waits for (or returns) the outcome of the first; a stream already closed
// by anyone counts as closed when no final message is given, and is
// ErrStreamClosed when one is (it could not be appended). The close
// request carries the producer headers, so a fenced writer cannot close
// the stream. CloseStream does not stop the Writer; call Close too.
func (w *Writer[T]) CloseStream(ctx context.Context, final ...T) error {
	var body []byte
	if w.isJSON && len(final) > 0 {
		body = append(body, '[')
	}
	for i, v := range final {
		if w.isJSON && i > 0 {
			body = append(body, ',')
		}
		var err error
		if body, err = w.encode(body, v); err != nil {
			return err
		}
	}
	if w.isJSON && len(final) > 0 {
		body = append(body, ']')
	}
	if len(body) > w.cfg.maxBatchBytes {
		return w.tooLarge(len(body))
	}

	w.mu.Lock()
	b := w.closeBatch
	if b == nil {
		if err := w.writableLocked(); err != nil {
			w.mu.Unlock()
			return err
		}
		w.sealLocked()
		b = &wbatch{done: make(chan struct{}), body: body, n: len(final), acct: len(body), close: true, sealNow: true}
		w.bufMsgs += b.n
		w.bufBytes += b.acct
		w.open = b
		w.sealLocked()
		w.closeBatch = b
	}
	w.mu.Unlock()
	w.wake()
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop is the dispatch goroutine: it seals batches whose linger has passed
// and starts a sender for each batch when an in-flight slot is free.
func (w *Writer[T]) loop() {
	defer close(w.loopDone)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	aborted := w.ctx.Done()
	for {
		w.mu.Lock()
		wait, exit := w.dispatchLocked(time.Now())
		w.mu.Unlock()
		if exit {
			w.wg.Wait()
			w.cancel()
			return
		}
		var tc <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			tc = timer.C
		}
		select {
		case <-w.kick:
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
func (w *Writer[T]) dispatchLocked(now time.Time) (time.Duration, bool) {
	if w.ctx.Err() != nil && w.err == nil && w.aborted != nil && (len(w.queue) > 0 || (w.open != nil && w.open.n > 0)) {
		w.err = w.aborted
	}
	if w.err != nil {
		w.failUnsentLocked()
		return 0, w.closing && w.inflight == 0
	}
	for w.inflight < w.window {
		if !w.confirmed && w.inflight > 0 {
			break // the first batch of an epoch goes alone
		}
		if len(w.queue) == 0 {
			b := w.open
			if b == nil || b.n == 0 || !(b.sealNow || w.closing || !now.Before(b.deadline)) {
				break
			}
			w.sealLocked()
		}
		b := w.queue[0]
		w.queue[0] = nil
		w.queue = w.queue[1:]
		w.inflight++
		w.wg.Add(1)
		go w.send(b)
	}
	if w.closing && w.inflight == 0 && len(w.queue) == 0 && (w.open == nil || w.open.n == 0) {
		return 0, true
	}
	if b := w.open; b != nil && b.n > 0 && w.inflight < w.window && (w.confirmed || w.inflight == 0) {
		if d := b.deadline.Sub(now); d > 0 {
			return d, false
		}
		return time.Nanosecond, false
	}
	return 0, false
}

// failUnsentLocked fails every batch not yet sent with the sticky error.
func (w *Writer[T]) failUnsentLocked() {
	if b := w.open; b != nil && b.n > 0 {
		w.open = nil
		w.settleLocked(b, w.err)
		close(b.done)
	}
	for _, b := range w.queue {
		w.settleLocked(b, w.err)
		close(b.done)
	}
	w.queue = nil
}

// settleLocked records a batch's outcome and releases its buffer space.
// The caller closes b.done after unlocking.
func (w *Writer[T]) settleLocked(b *wbatch, err error) {
	b.err = err
	for i, p := range w.pending {
		if p == b {
			copy(w.pending[i:], w.pending[i+1:])
			w.pending[len(w.pending)-1] = nil
			w.pending = w.pending[:len(w.pending)-1]
			break
		}
	}
	w.bufMsgs -= b.n
	w.bufBytes -= b.acct
	w.signalSpaceLocked()
	switch {
	case b.gapped:
		if w.window > 1 {
			// Gaps again: wait longer before growing the window back.
			w.regrow = min(2*w.regrow, maxRegrow)
		}
		w.window = max(1, w.window/2)
		w.okStreak = 0
	case err == nil && w.window < w.cfg.maxInFlight:
		if w.okStreak++; w.okStreak >= w.regrow*w.window {
			w.window++
			w.okStreak = 0
			if w.window == w.cfg.maxInFlight {
				// Back to full pipelining: a rare gap costs little again.
				w.regrow = max(minRegrow, w.regrow/2)
			}
		}
	}
	if err == nil {
		w.confirmed = true
		if b.seq > w.lastAckedSeq && b.off != "" {
			w.lastAckedSeq, w.lastAcked = b.seq, b.off
		}
	} else if w.err == nil {
		w.err = err
	}
	b.body = nil
	b.prev = nil
	b.markWritten()
}

func (b *wbatch) markWritten() {
	if b.written != nil { // nil: never sealed
		b.writtenOnce.Do(func() { close(b.written) })
	}
}

// send delivers one batch and settles it.
func (w *Writer[T]) send(b *wbatch) {
	defer w.wg.Done()
	start := time.Now()
	size := len(b.body)
	err := w.deliver(b)
	w.mu.Lock()
	w.inflight--
	w.settleLocked(b, err)
	w.mu.Unlock()
	close(b.done)
	if err != nil {
		w.c.log.Warn("durable: writer lost a batch", "url", redactURL(w.url), "producer", w.pid,
			"seq", b.seq, "messages", b.n, "error", err)
	}
	if h := w.cfg.hooks; h != nil {
		h.OnBatchSent(b.n, size, time.Since(start), err)
	}
	w.wake()
}

// deliver sends b until it lands or cannot: the retry loop (retry.Do with
// the Writer's policy) around sendBatch.
func (w *Writer[T]) deliver(b *wbatch) error {
	ctx := w.ctx
	if err := w.ensureEpoch(ctx); err != nil {
		return w.abortedOr(err)
	}
	if prev := b.prev; prev != nil {
		// Start only once the previous batch's request has been sent: it
		// then almost always reaches the server first, and pipelining
		// rarely costs a sequence-gap resend.
		select {
		case <-prev.written:
		case <-prev.done:
		case <-ctx.Done():
			return w.abortedOr(ctx.Err())
		}
	}
	actx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				b.markWritten()
			}
		},
	})
	st := &batchSend{b: b, prev: b.prev, ct: w.ct}
	if len(b.body) == 0 {
		st.ct = "" // close-only
	}
	classify := func(err error) (bool, time.Duration) {
		if st.final {
			return false, 0
		}
		ok, floor := retry.Classify(failureOf(err, true))
		if ok {
			st.mayHaveLanded = true
		}
		return ok, floor
	}
	logRetry := w.c.retryLogger(ctx, "write", w.url)
	err := retry.Do(actx, retry.NewSchedule(w.cfg.retry.internal()), func(ctx context.Context) error {
		return w.sendBatch(ctx, st)
	}, classify, func(ev retry.Event) {
		logRetry(ev)
		if h := w.cfg.hooks; h != nil && !ev.Recovered {
			h.OnRetry(ev.Attempt, ev.Err, ev.Wait)
		}
	})
	if err != nil && ctx.Err() != nil {
		return w.abortedOr(err)
	}
	return err
}

// batchSend is the state of one batch's delivery across attempts.
type batchSend struct {
	b             *wbatch
	prev          *wbatch
	ct            string
	mayHaveLanded bool // an attempt may have been applied without our knowing
	claimed       bool // the producer ID was claimed with a new epoch (WithAutoClaim)
	final         bool // the error returned is final: no retry
}

// sendBatch makes one attempt of a batch, sending it again at once (not a
// retry: no wait) when the protocol says so: after a sequence gap, once the
// batch it overtook has landed, and after claiming the producer ID.
func (w *Writer[T]) sendBatch(ctx context.Context, st *batchSend) error {
	b, prev := st.b, st.prev
	for {
		w.mu.Lock()
		epoch := w.epoch
		w.mu.Unlock()
		prevSettled := prev == nil || isClosed(prev.done)
		res, err := w.attempt(ctx, b, epoch, st.ct)
		if err == nil {
			if res.Duplicate && !st.mayHaveLanded && len(b.body) > 0 {
				st.final = true
				return &Error{Op: "write", URL: redactURL(w.url), Err: fmt.Errorf("%w (epoch %d, seq %d)", ErrProducerReused, epoch, b.seq)}
			}
			b.off = res.NextOffset
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		var e *Error
		errors.As(err, &e)
		switch {
		case errors.Is(err, ErrProducerSeqGap) && !prevSettled:
			b.gapped = true
			// Overtook an earlier batch: resend once it has landed.
			select {
			case <-prev.done:
			case <-ctx.Done():
				return err
			}
			if prev.err != nil {
				st.final = true
				return prev.err
			}
		case errors.Is(err, ErrStaleEpoch) && e != nil && w.cfg.autoClaim && b.seq == 0 && !st.mayHaveLanded && !st.claimed:
			st.claimed = true
			if err := w.claim(ctx, e.ServerEpoch+1); err != nil {
				st.final = true
				return err
			}
		case errors.Is(err, ErrStreamClosed) && b.close && len(b.body) == 0:
			// Close-only on a closed stream: closed is what was asked.
			b.off = e.NextOffset
			return nil
		default:
			return err
		}
	}
}

// claim takes the producer ID over with epoch next (WithAutoClaim), saving
// it to the epoch store first, if any.
func (w *Writer[T]) claim(ctx context.Context, next int64) error {
	if next > protocol.MaxProducerNumber {
		return &Error{Op: "write", URL: redactURL(w.url), Err: fmt.Errorf("%w: producer epoch exhausted", ErrStaleEpoch)}
	}
	if s := w.cfg.epochStore; s != nil {
		if err := s.SaveEpoch(ctx, w.pid, next); err != nil {
			return &Error{Op: "write", URL: redactURL(w.url), Err: fmt.Errorf("save producer epoch: %w", err)}
		}
	}
	w.mu.Lock()
	w.epoch = next
	w.mu.Unlock()
	return nil
}

// errAttemptTimeout marks an attempt cut off by the Client's WithTimeout;
// the batch may have landed, and is retried.
var errAttemptTimeout = retry.Transient("append attempt timed out")

// attempt sends one request of b, bounded by the Client's WithTimeout.
func (w *Writer[T]) attempt(ctx context.Context, b *wbatch, epoch int64, ct string) (AppendResult, error) {
	if d := w.c.cfg.timeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, errAttemptTimeout)
		defer cancel()
	}
	res, err := w.c.appendOnce(ctx, w.url, b.body, AppendOptions{
		ContentType: ct,
		Producer:    &Producer{ID: w.pid, Epoch: epoch, Seq: b.seq},
		Close:       b.close,
	})
	if err != nil && context.Cause(ctx) == errAttemptTimeout && w.ctx.Err() == nil {
		err = &Error{Op: "append", URL: redactURL(w.url), Err: fmt.Errorf("%w after %v: %w", errAttemptTimeout, w.c.cfg.timeout, err)}
	}
	return res, err
}

// ensureEpoch consults the epoch store once, before the first request
// (which is alone in flight).
func (w *Writer[T]) ensureEpoch(ctx context.Context) error {
	w.mu.Lock()
	ready := w.epochReady
	w.mu.Unlock()
	if ready {
		return nil
	}
	if s := w.cfg.epochStore; s != nil {
		e, ok, err := s.LoadEpoch(ctx, w.pid)
		if err != nil {
			return &Error{Op: "append", URL: redactURL(w.url), Err: fmt.Errorf("load producer epoch: %w", err)}
		}
		epoch := w.cfg.epoch
		if ok && e+1 > epoch {
			epoch = e + 1
		}
		if epoch > protocol.MaxProducerNumber {
			return &Error{Op: "append", URL: redactURL(w.url), Err: fmt.Errorf("%w: producer epoch exhausted", ErrInvalidArgument)}
		}
		if err := s.SaveEpoch(ctx, w.pid, epoch); err != nil {
			return &Error{Op: "append", URL: redactURL(w.url), Err: fmt.Errorf("save producer epoch: %w", err)}
		}
		w.mu.Lock()
		w.epoch = epoch
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.epochReady = true
	w.mu.Unlock()
	return nil
}

// abortedOr returns Close's abort error if Close gave up, else err.
func (w *Writer[T]) abortedOr(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.aborted != nil {
		return w.aborted
	}
	return err
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
