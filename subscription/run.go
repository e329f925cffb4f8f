package subscription

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/link"
)

// Message is one message handed to a handler: the Reader's message (its
// Value, raw Data, Position and read Offset) and the stream it came from.
type Message[T any] struct {
	durable.Message[T]
	// Stream is the stream's path relative to the stream root.
	Stream string
	// Generation is the generation of the wake the message was read in.
	Generation int64
}

// Handler handles one message. It is called for each message of a stream
// in order, one at a time per stream; returning nil marks the message
// handled (its progress is acked), an error ends the wake: the progress
// up to the message before is acked and the lease released, so the
// message is delivered again later. ctx ends when the wake's lease is
// lost (fenced; the handler's result is then ignored: nothing more is
// acked) or the worker stops (a nil result still counts and is acked on
// the way out; an error does not).
type Handler[T any] func(ctx context.Context, m Message[T]) error

// BatchHandler handles several messages of one stream at once, in order
// (at most the batch size, never more than one read of the stream
// returned). The slice and the messages' Data are the handler's to keep. An
// error ends the wake as with Handler; nil marks the whole batch handled.
type BatchHandler[T any] func(ctx context.Context, batch []Message[T]) error

// HandlerError wraps an error a handler returned, or a message that did
// not decode (a *durable.DecodeError), with where it happened.
type HandlerError struct {
	Subscription string
	Stream       string
	Position     durable.Position // the position after the failed message (or batch)
	Err          error
}

// Error implements error.
func (e *HandlerError) Error() string {
	return fmt.Sprintf("subscription %q stream %q: handler failed at position %q+%d: %v",
		e.Subscription, e.Stream, e.Position.Offset, e.Position.Skip, e.Err)
}

// Unwrap returns the handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }

// engine works wakes: it reads each pending stream of a wake from its
// acked offset with a Reader, hands the messages to the handler in order,
// and keeps the lease with a keeper. The Worker and the Receiver share it.
type engine[T any] struct {
	c           *durable.Client
	l           link.Client
	handle      BatchHandler[T]
	batch       int  // most messages per handler call
	copyData    bool // batch handlers keep Data past the next read
	interval    time.Duration
	slots       *capacity // streams handled at once, shared by every wake
	readerOpts  []durable.Option
	obs         observer
	stats       *stats
	finalBudget time.Duration // final ack and release after the run's context ended
	// releaseOnError releases the lease after a handler error (Worker).
	// Without it (Receiver) the wake stays with the server's delivery
	// retries or the lease's expiry, which space the next attempts.
	releaseOnError bool
}

func newEngine[T any](c *durable.Client, l link.Client, cfg *config, st *stats) *engine[T] {
	return &engine[T]{
		c: c, l: l, batch: cfg.batch, interval: cfg.ackInterval, slots: newCapacity(cfg.concurrency),
		readerOpts: cfg.readerOpts, obs: counting{next: logging{next: cfg.obs, log: l.Logger()}, stats: st},
		stats: st, finalBudget: finalBudget,
	}
}

// outcome is how a wake ended.
type outcome struct {
	next    bool  // the server issued the next wake at once (ack with done)
	handler error // a *HandlerError: the wake was released
	lost    error // the wake was lost (fenced, token refused, deleted, or expired here)
}

// work works wake w of s until every pending stream is caught up, a
// handler fails, or the wake is lost, then ends it: ack with done, or on
// a handler error ack the progress and release. ttl is the lease length,
// start when the lease began (the claim was sent).
func (e *engine[T]) work(ctx context.Context, s *Subscription, w *Wake, ttl time.Duration, start time.Time) outcome {
	k := newKeeper(ctx, s, w, ttl, e.interval, e.obs, start)
	go k.keep()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			k.cancel() // stop the other streams: the wake is released
		}
		mu.Unlock()
	}
	for _, l := range w.Pending() {
		if e.slots.acquire(k.ctx) != nil {
			break // lost, failed or stopping: the rest waits for the next wake
		}
		wg.Add(1)
		go func(l Link) {
			defer wg.Done()
			defer e.slots.release()
			if err := e.stream(k, s, w, l); err != nil {
				fail(err)
			}
		}(l)
	}
	wg.Wait()
	k.stop()
	return e.finish(ctx, k, firstErr)
}

// finish ends the wake after its streams stopped: the progress is acked,
// with done when every stream was worked to its end; otherwise the lease
// is released when the run's context ended, the lease ran out here, or a
// handler failed and releaseOnError is set.
func (e *engine[T]) finish(ctx context.Context, k *keeper, handlerErr error) outcome {
	var out outcome
	lost := k.lostErr()
	if lost != nil && lost != errLeaseExpired {
		out.lost = lost // the server refused the wake: touch nothing more
		return out
	}
	// The run's context may have ended (the worker stops): hand the
	// progress back all the same, within a short budget, so that another
	// worker goes on from it at once rather than after the lease.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.finalBudget)
	defer cancel()
	var handlerFailed *HandlerError
	done := handlerErr == nil && ctx.Err() == nil && lost == nil
	if errors.As(handlerErr, &handlerFailed) {
		out.handler = handlerErr
		e.stats.handlerErrors.Add(1)
	}
	next, err := k.send(fctx, done, k.pending())
	switch {
	case err != nil && IsLost(err):
		out.lost = err
		return out
	case err != nil:
		e.obs.failed(k.w, "ack", err)
	case lost != nil:
		// Expired here, but the server still had the lease: the progress
		// is saved; give the rest back.
		out.lost = lost
	}
	out.next = next
	release := ctx.Err() != nil || lost != nil || (handlerErr != nil && e.releaseOnError)
	if !done && release && (err == nil || !IsLost(err)) {
		if rerr := k.s.Release(fctx, k.w); rerr != nil && !IsLost(rerr) {
			e.obs.failed(k.w, "release", rerr)
		} else if rerr == nil {
			e.stats.releases.Add(1)
		}
	}
	return out
}

// stream reads one pending stream from its acked offset until it is
// caught up (or closed), handing its messages to the handler. It returns
// a *HandlerError when the handler fails or a message does not decode,
// nil when the stream was handled to its end (or the wake ended).
func (e *engine[T]) stream(k *keeper, s *Subscription, w *Wake, l Link) error {
	start := l.Acked
	if start == "" {
		start = durable.OffsetStart
	}
	opts := append(append([]durable.Option(nil), e.readerOpts...),
		durable.WithStart(start), durable.WithLive(durable.LiveNone))
	r, err := durable.NewReader(e.c, l.Path, codecOf[T](), opts...)
	if err != nil {
		return &HandlerError{Subscription: s.id, Stream: l.Path, Err: err}
	}
	defer closeReader(r)
	var batch []Message[T]
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if !k.alive() {
			return nil
		}
		last := batch[len(batch)-1].Position
		err := e.handle(k.ctx, batch)
		if k.lostErr() != nil || (err != nil && k.ctx.Err() != nil) {
			return nil // lost, or failed as the worker stops: the result does not count
		}
		if err != nil {
			return &HandlerError{Subscription: s.id, Stream: l.Path, Position: last, Err: err}
		}
		e.stats.handled.Add(int64(len(batch)))
		k.progress(l.Path, last)
		if e.copyData {
			batch = nil // the handler may keep the slice
		} else {
			batch = batch[:0]
		}
		return nil
	}
	for {
		m, err := r.Next(k.ctx)
		switch {
		case err == nil:
		case errors.Is(err, durable.ErrCaughtUp), errors.Is(err, io.EOF):
			return flush()
		case k.ctx.Err() != nil:
			return nil
		case errors.As(err, new(*durable.DecodeError)):
			if ferr := flush(); ferr != nil {
				return ferr
			}
			var de *durable.DecodeError
			pos := durable.Position{}
			if errors.As(err, &de) {
				pos = de.Position
			}
			return &HandlerError{Subscription: s.id, Stream: l.Path, Position: pos, Err: err}
		case errors.Is(err, durable.ErrNotFound), errors.Is(err, durable.ErrGone):
			// The stream was deleted since the wake: nothing to handle.
			e.obs.failed(w, "read "+l.Path, err)
			return flush()
		default:
			return &HandlerError{Subscription: s.id, Stream: l.Path, Err: err}
		}
		if e.copyData {
			m.Data = append([]byte(nil), m.Data...)
		}
		batch = append(batch, Message[T]{Message: m, Stream: l.Path, Generation: w.Generation})
		if len(batch) >= e.batch || m.Position.Skip == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
		if !k.alive() {
			return nil
		}
	}
}

// closeReader closes a Reader of the engine (no store, no live
// connection: nothing to wait long for).
func closeReader[T any](r *durable.Reader[T]) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.Close(ctx)
}

// codecOf is the codec of the Readers of a Worker or Receiver: the bytes of
// each message as they are for T []byte, JSON for any other T.
func codecOf[T any]() durable.Codec[T] {
	if c, ok := any(durable.BytesCodec{}).(durable.Codec[T]); ok {
		return c
	}
	return durable.JSONCodec[T]{}
}
