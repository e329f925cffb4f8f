package durable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/durablego/durable/internal/retry"
)

// Reader tails one stream and delivers its messages one at a time, each
// with its Position, resuming from a saved position after a restart. Open
// it with NewReader; a Reader[T] decodes each JSON message into T (see
// Message for non-JSON streams).
//
// # Reading
//
// The Reader starts from the position saved in its store (WithStore,
// WithKey), or else from WithStart (the beginning by default). It catches
// up with plain GETs (cacheable; a repeated read of the same offset sends
// If-None-Match and takes 304 as "nothing new"), then waits for new data by
// long-poll, SSE or neither (WithLive), echoing the server's cursor on every
// live request. A closed stream ends the Reader: after the last message
// Next returns io.EOF, every time, without another request.
//
// # Failures
//
// Transient failures (network errors, 408, 429, 5xx, truncated bodies,
// dropped SSE connections, responses whose offset goes backwards) are
// retried from the last good position with jittered exponential backoff
// (github.com/cenkalti/backoff/v4), honouring Retry-After, forever unless
// WithRetry bounds it; a HookRetry (WithHooks) sees each retry. A live answer
// that brings nothing new and comes back in less than a second (a server
// that repeats the same offset) is throttled by the same backoff, so the
// Reader never spins. Permanent failures (404, 410, 400, 401, 403, a
// response that breaks the protocol or exceeds WithMaxResponseBytes) are
// returned as an *Error and are sticky: every later Next returns the same
// error without a request; open a new Reader to try again. A message that
// does not decode into T is a *DecodeError (see there).
//
// # Delivery and commit
//
// Messages are delivered exactly once and in order by one Reader: a
// retried request, a reconnect, or a stale response never delivers a
// position at or before one already delivered.
//
// A message returned by Next is "handled" once the caller calls Next again
// or commits it (Commit). Close does not count as handling the last
// message: a caller may stop before it has processed it. The Reader saves
// the position of the last handled message:
//
//   - With the default interval commit (WithCommitInterval, 1 s), the
//     position is saved at most one interval after the message was handled
//     while messages keep coming, at once when the Reader is about to wait
//     for data, and on Close. After a crash the messages handled since the
//     last save are delivered again: at-least-once, never a message
//     skipped.
//   - With Commit(ctx, msg) after each message (WithManualCommit, or on top
//     of the interval), a message whose Commit returned nil is never
//     delivered again by a Reader opened on the same store; after a crash
//     at most the one message in hand is delivered again. Exactly-once
//     needs the caller to save the position in the same transaction as its
//     own side effects (Position.Meta can carry data of its own).
//
// A saved position never moves backwards and never past a message the
// caller has not handled.
//
// # Concurrency
//
// Next (and Messages) must be called from one goroutine at a time. Commit,
// Close and the accessors may be called from any goroutine. During
// catch-up the Reader reads the next chunk ahead, in one goroutine that
// ends with that read (bounded by the Client's WithRequestTimeout, if set) and,
// with the default JSONCodec, the decoding of its messages (split between
// up to WithDecodeAhead goroutines), on Close, or when the Reader reads
// from elsewhere; it starts no other goroutine. A Reader dropped without
// Close holds at
// most an open SSE connection, released when the Reader is garbage
// collected (or when the server ends the connection and the Reader is used
// again).
type Reader[T any] struct {
	c     *Client
	url   string
	key   string // the store key
	cfg   readerConfig
	codec Codec[T]
	log   *slog.Logger
	tr    readerTransport

	closeCtx    context.Context
	closeCancel context.CancelFunc
	bg          sync.WaitGroup // goroutines the Reader started (the read ahead); Close waits for them
	saving      chan struct{}  // a one-slot semaphore held during a store save (saves are ordered; r.mu is not held)

	// Owned by the goroutine in Next.
	reading readState    // where the next read starts, and how (reader_fetch.go)
	cur     batch[T]     // the chunk being handed out, and its decoding (reader_decode.go)
	ahead   readAhead[T] // the next chunk, read and decoded ahead (reader_ahead.go)

	mu       sync.Mutex // guards what follows; never held during I/O
	closed   bool
	commit   commitState // delivered, handled and saved positions (reader_commit.go)
	mode     LiveMode    // the live transport in use (Next's goroutine reads it unlocked)
	upToDate bool
	eof      bool
	stats    ReaderStats
}

// ReaderStats is a snapshot of a Reader (see Reader.Stats).
type ReaderStats struct {
	Key          string   // the store key (WithKey; default the stream's path): which consumer of the stream this is
	ContentType  string   // the stream's content type, known once a read has answered ("" before)
	Position     Position // just after the last message Next returned (before the first: where the Reader starts)
	Committed    Position // the last position saved (by Commit, the commit interval, or loaded from the store); zero when none
	UpToDate     bool     // the last answer reached the stream's tail as it was then (more may be appended)
	StreamClosed bool     // the server said the stream is closed: Next returns io.EOF after the last message (unrelated to the Reader's own Close)
	Live         LiveMode // the live mode in use: LiveLongPoll or LiveSSE (LiveAuto shows LiveLongPoll after falling back), or LiveNone

	Delivered int64 // messages returned by Next
	Requests  int64 // HTTP requests sent (an SSE connection counts once)
	Retries   int64 // waits of the retry schedule (failures and throttled empty answers)
	Stale     int64 // messages dropped because their position was not after the last delivered one
	Commits   int64 // successful saves to the store
}

// NewReader opens a Reader of stream (a name relative to the Client's base
// URL, or a full URL) decoding messages into T with codec: JSONCodec[T]{}
// for JSON values, BytesCodec{} for the bytes of each message as they are,
// or a codec of your own. It sends no request and does not touch the
// store: the first Next does. A nil Client or codec, and invalid options,
// are an error wrapping ErrInvalidArgument.
func NewReader[T any](c *Client, stream string, codec Codec[T], opts ...Option) (*Reader[T], error) {
	if c == nil || codec == nil {
		return nil, fmt.Errorf("%w: nil Client or Codec", ErrInvalidArgument)
	}
	u, err := c.streamURL(stream)
	if err != nil {
		return nil, &Error{Op: "read", URL: redactURL(stream), Err: err}
	}
	cfg := defaultReaderConfig()
	given, errs := applyOptions("NewReader", opts, func(o Option) func(*readerConfig) { return o.reader }, &cfg)
	cfg.errs = append(errs, cfg.errs...)
	if err := cfg.validate(given); err != nil {
		return nil, err
	}
	r := &Reader[T]{c: c, url: u, key: storeKey(u), cfg: cfg, codec: codec, log: c.log, mode: LiveLongPoll}
	r.cur.slot = new(T)
	_, r.cur.fastJSON = codec.(JSONCodec[T])
	_, r.cur.rawJSON = any(codec).(BytesCodec)
	if cfg.key != "" {
		r.key = cfg.key
	}
	if cfg.live == LiveSSE || cfg.live == LiveAuto {
		r.mode = LiveSSE
	}
	limit := cfg.maxChunk
	if limit == 0 {
		limit = c.cfg.maxResponse
	}
	r.saving = make(chan struct{}, 1)
	r.closeCtx, r.closeCancel = context.WithCancel(context.Background())
	r.tr = readerTransport{c: c, url: u, key: r.key, limit: limit, closeCtx: r.closeCtx, sseIdle: cfg.sseIdle}
	r.reading.sched = retry.NewSchedule(cfg.retry.internal())
	forever := cfg.retry.internal()
	forever.MaxAttempts, forever.MaxElapsed = 0, 0
	r.reading.throttle = retry.NewSchedule(forever)
	r.commit.lastSave = time.Now()
	// A Reader dropped without Close must not pin an SSE connection (and
	// net/http's goroutines for it) forever: once it is garbage, cancel
	// its context, which closes the connection.
	runtime.AddCleanup(r, func(cancel context.CancelFunc) { cancel() }, r.closeCancel)
	return r, nil
}

// Next returns the next message. It blocks until one is available, the
// stream ends (io.EOF), the Reader has caught up in live mode none
// (ErrCaughtUp), ctx ends, or a permanent failure occurs. Calling Next
// marks the message returned by the previous call as handled (see Reader).
func (r *Reader[T]) Next(ctx context.Context) (Message[T], error) {
	var zero Message[T]
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return zero, ErrClosed
	}
	if r.commit.hasPending {
		if r.commit.handledAhead {
			r.markHandledLocked(r.commit.pending)
		} else {
			// Delivered positions only grow, and nothing but a Commit puts
			// the handled position past the last delivered one.
			r.commit.handled, r.commit.hasHandled = Position{Offset: r.commit.pending.Offset, Skip: r.commit.pending.Skip}, true
		}
		r.commit.hasPending = false
	}
	r.mu.Unlock()
	if !r.reading.started {
		if err := r.start(ctx); err != nil {
			return zero, err
		}
	}
	if err := r.autoCommit(ctx, false); err != nil {
		return zero, err
	}
	fetched := false
	for {
		if r.reading.sticky != nil {
			return zero, r.reading.sticky
		}
		if msg, ok, err := r.take(); ok || err != nil {
			return msg, err
		}
		// The batch is drained: everything before the read position is handled.
		r.chunkDone()
		r.mu.Lock()
		if isRealOffset(Offset(r.reading.pos.Offset)) {
			r.markHandledLocked(r.reading.pos)
		}
		eof, upToDate := r.eof, r.upToDate
		r.mu.Unlock()
		switch {
		case eof:
			if err := r.autoCommit(ctx, true); err != nil {
				return zero, err
			}
			return zero, io.EOF
		case r.cfg.live == LiveNone && upToDate && fetched:
			if err := r.autoCommit(ctx, true); err != nil {
				return zero, err
			}
			return zero, ErrCaughtUp
		case upToDate:
			// About to wait for new data: save what was handled first.
			if err := r.autoCommit(ctx, true); err != nil {
				return zero, err
			}
		}
		if err := r.read(ctx); err != nil {
			if r.isClosed() {
				return zero, ErrClosed
			}
			if ctx.Err() != nil {
				return zero, r.c.interrupted(ctx, err)
			}
			// A transient failure that outlasted a bounded retry policy is
			// returned, not kept: a later Next starts a fresh episode.
			if ok, _ := classifier(true)(err); !ok {
				err = r.rejected(err)
				r.reading.sticky = err
			}
			return zero, err
		}
		r.reading.saved = false
		fetched = true
	}
}

// Messages returns an iterator over the Reader's messages: it calls Next
// until the stream ends (io.EOF) or, in live mode none, until the Reader
// has caught up (ErrCaughtUp), which both end the loop without an error.
//
// A message that does not decode into T is yielded as a *DecodeError with
// a zero Message, and the loop goes on when the caller continues: log it
// and continue to skip the message, or break. Any other error is yielded
// once and ends the loop: a permanent failure, a transient one that
// outlasted a bounded retry policy, or ctx's error. A service stopped by
// cancelling ctx (Ctrl-C) sees context.Canceled: not a failure. So a loop
// reads:
//
//	for m, err := range r.Messages(ctx) {
//		var de *durable.DecodeError
//		switch {
//		case errors.As(err, &de):
//			log.Print(err) // skip the message and go on
//			continue
//		case errors.Is(err, context.Canceled):
//			return nil // stopped
//		case err != nil:
//			return err
//		}
//		handle(m.Value)
//	}
//
// As with Next, a message counts as handled when the loop asks for the
// next one; after a break, Commit the last message if it was handled.
func (r *Reader[T]) Messages(ctx context.Context) iter.Seq2[Message[T], error] {
	return func(yield func(Message[T], error) bool) {
		for {
			m, err := r.Next(ctx)
			var de *DecodeError
			switch {
			case err == nil:
			case err == io.EOF || errors.Is(err, ErrCaughtUp):
				return
			case errors.As(err, &de):
				if !yield(m, err) {
					return
				}
				continue
			default:
				yield(m, err)
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}

func (r *Reader[T]) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Stats returns a snapshot of the Reader: where it is, what it knows of
// the stream, and what it has done. It is safe to call from any goroutine.
func (r *Reader[T]) Stats() ReaderStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Requests = r.tr.requests.Load()
	s.Key = r.key
	s.Position = Position{Offset: string(r.cfg.start)}
	if r.commit.hasLast {
		s.Position = r.commit.last
	}
	if r.commit.hasCommit {
		s.Committed = r.commit.committed
	}
	s.UpToDate, s.StreamClosed = r.upToDate, r.eof
	s.Live = LiveNone
	if r.cfg.live != LiveNone {
		s.Live = r.mode
	}
	return s
}
