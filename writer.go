package durable

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/durablego/durable/internal/protocol"
)

// Writer errors (besides ErrClosed and the Client's: ErrStaleEpoch,
// ErrStreamClosed, ErrNotFound, ErrContentTypeMismatch, ...).
var (
	// ErrBufferFull is returned by TryWrite when the Writer's buffer
	// (messages or bytes) has no room for the message.
	ErrBufferFull = errors.New("writer buffer full")
	// ErrMessageTooLarge is returned by Write when a message cannot fit in
	// a batch on its own (see WithMaxBatch). Nothing is sent.
	ErrMessageTooLarge = errors.New("message larger than the max batch size")
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
// producer: every request carries Producer-Id, Producer-Epoch and
// Producer-Seq, so a retried batch is never appended twice. Open one with
// NewWriter and Close it. One Writer may be shared by any number of
// goroutines (it is safe for concurrent use); the messages each goroutine
// writes land in the order it wrote them. A Writer dropped without Close is
// not leaked: once it is garbage collected, what was written is sent and
// its goroutines stop, but nobody learns of a loss then. A Writer with
// nothing to send runs no goroutine.
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
// policy (Retry-After is a floor); the Client's WithRequestTimeout, if set, bounds
// each attempt, and an attempt cut off by it is retried the same way.
//
// A batch that cannot land (retries exhausted, stale epoch, closed or
// deleted stream, content type mismatch, ...) fails the Writer: its error
// is sticky, returned by Flush, Close, the Acks of every message not yet
// appended, and every later write. So a Writer on a stream that does not
// exist fails the first Write after its first batch came back with
// ErrNotFound; the Writes accepted while that batch was on its way are
// reported lost by Flush and Close. A lost batch is never silent (when
// retries give up after an attempt that got no answer, the batch may in
// fact have landed: it is reported as lost all the same).
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
	p        *pipeline // batches, the in-flight window and the goroutines that send them
	codec    Codec[T]
	validate bool      // check each encoding with jsonframe.Valid (custom codec or []byte on a JSON stream)
	fast     int       // fastNone, fastBytes or fastJSON
	scratch  sync.Pool // *scratch encode buffers
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
// Client's base URL, or a full URL) the values of T encoded by codec:
// JSONCodec[T]{} for JSON values, BytesCodec{} for messages given as bytes,
// or a codec of your own. The Writer runs goroutines only while it has
// something to send. A nil Client or codec, and invalid options, are an
// error wrapping ErrInvalidArgument. The stream must exist; its content
// type must match WithContentType (default application/json, or
// application/octet-stream when T is []byte).
func NewWriter[T any](c *Client, stream string, codec Codec[T], opts ...Option) (*Writer[T], error) {
	if c == nil || codec == nil {
		return nil, fmt.Errorf("%w: nil Client or Codec", ErrInvalidArgument)
	}
	u, err := c.streamURL(stream)
	if err != nil {
		return nil, &Error{Op: "write", URL: redactURL(stream), Err: err}
	}
	cfg := defaultWriterConfig()
	_, errs := applyOptions("NewWriter", opts, func(o Option) func(*writerConfig) { return o.writer }, &cfg)
	cfg.errs = append(errs, cfg.errs...)
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
	p := newPipeline(c, u, cfg, pid)
	w := &Writer[T]{p: p, codec: codec, validate: p.isJSON && !defaultJSON}
	switch any(codec).(type) {
	case JSONCodec[T]:
		w.fast = fastJSON
		if byPointerSame[T]() {
			w.fast = fastJSONPtr
		}
	case BytesCodec:
		w.fast = fastBytes
	}
	// A Writer dropped without Close must not lose what was written (its
	// goroutines refer to the pipeline only): once the Writer is garbage,
	// close the pipeline, which sends what was written and stops.
	runtime.AddCleanup(w, (*pipeline).beginClose, p)
	return w, nil
}

// Producer returns the idempotent producer the Writer appends as: its ID
// (WithProducerID, or a random one), the epoch in use (with
// WithEpochStore or WithAutoClaim final once the first batch has landed)
// and the sequence number its next batch will carry.
func (w *Writer[T]) Producer() Producer {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return Producer{ID: w.p.pid, Epoch: w.p.epoch, Seq: w.p.nextSeq}
}

// LastAcked returns the offset after the last batch known to have landed
// (in sequence order); ok is false until one has.
func (w *Writer[T]) LastAcked() (off Offset, ok bool) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.lastAcked, w.p.lastAcked != ""
}

// Write queues v. It blocks while the buffer is full, until there is room
// or ctx ends (ctx.Err() is returned and v is not queued). It fails at once
// with ErrEncode (v cannot be encoded) or ErrMessageTooLarge, which affect
// only this call, and with the Writer's sticky error after a batch was
// lost, ErrClosed after Close, or ErrStreamClosed after CloseStream.
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
	return w.p.enqueue(ctx, enc, block, wantAck, now)
}

// Flush sends every message written so far without waiting for the linger
// and waits until all of them have settled. It returns the Writer's sticky
// error if any batch was lost (now or before), nil only when everything
// written before the call has landed, or ctx.Err() if ctx ends first.
func (w *Writer[T]) Flush(ctx context.Context) error { return w.p.flush(ctx) }

// Close stops the Writer: later writes fail with ErrClosed, pending
// messages are sent without waiting for the linger, and Close waits until
// every batch has settled and every goroutine of the Writer has stopped.
// It returns the sticky error if any batch was lost. If ctx ends first,
// Close abandons what has not landed (those messages fail with an error
// wrapping ErrClosed and ctx's error, which Close returns), still
// stops every goroutine, and returns promptly. Close does not close the
// stream on the server; see CloseStream. Calling it again returns the same
// result.
func (w *Writer[T]) Close(ctx context.Context) error { return w.p.close(ctx) }

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
	isJSON := w.p.isJSON
	var body []byte
	if isJSON && len(final) > 0 {
		body = append(body, '[')
	}
	for i, v := range final {
		if isJSON && i > 0 {
			body = append(body, ',')
		}
		var err error
		if body, err = w.encode(body, v); err != nil {
			return err
		}
	}
	if isJSON && len(final) > 0 {
		body = append(body, ']')
	}
	return w.p.closeStream(ctx, body, len(final))
}
