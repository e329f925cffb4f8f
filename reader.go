package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"sync"
	"time"

	"github.com/durablego/durable/internal/jsonframe"
	"github.com/durablego/durable/internal/protocol"
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
// WithReaderRetry bounds it; WithRetryHook sees each retry. A live answer
// that brings nothing new and comes back in less than a second (a server
// that repeats the same offset) is throttled by the same backoff, so the
// Reader never spins. Permanent failures (404, 410, 400, 401, 403, a
// response that breaks the protocol or exceeds WithMaxChunkBytes) are
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
	c      *Client
	url    string
	key    string
	cfg    readerConfig
	codec  Codec[T]
	dedupe func(T) string
	log    *slog.Logger
	tr     readerTransport

	closeCtx    context.Context
	closeCancel context.CancelFunc

	// Read state, owned by the goroutine in Next.
	started  bool
	saved    bool     // readPos was loaded from the store and not read from yet
	readPos  Position // the next request reads from readPos.Offset and drops readPos.Skip items
	cursor   string
	ctype    string
	ctypeSet bool
	isJSON   bool
	live     bool // caught up once: later reads wait for data (unless LiveNone)
	mode     LiveMode
	sseFails int
	etagOff  Offset
	etag     string
	etagUp   bool
	sched    *retry.Schedule // failures: one episode from the first failure to the next success
	throttle *retry.Schedule // answers with nothing new, until the next progress
	sticky   error
	chunk    ReadEvent // the chunk being handed out, for HookRead
	dkeys    []string  // dedupe ring
	dpos     int
	dfill    int
	dset     map[string]struct{}

	// Decoding. slot is reused for every message (no allocation per
	// message for the value itself). For the default JSONCodec one
	// json.Decoder walks a GET's array: its decode state is reused
	// (json.Unmarshal per message costs several allocations) and the
	// array is scanned once, not split first.
	slot     *T
	fastJSON bool
	rawJSON  bool          // BytesCodec: JSON batches are validated before they are split
	dec      *json.Decoder // walks a lazy batch
	br       bytes.Reader
	lazy     bool // the batch is read by dec, element by element (r.n unknown)
	lazyDone bool

	pf          *prefetched[T] // the catch-up read of the next chunk, started early
	pfBuf       []byte         // spare read buffer for the next prefetch
	pfDec       *decoded[T]    // spare slabs for the next chunk decoded ahead
	ahead       *decoded[T]    // the current batch's values, decoded ahead (nil: decode in take)
	aheadChunks int            // batches decoded ahead (tests)
	noPrefetch  bool           // benchmarks: read one chunk at a time, as before prefetching

	// Current batch.
	data       []byte
	spans      []jsonframe.Span
	idx, n     int
	batchOff   Offset
	batchNext  Offset
	jsonBatch  bool
	batchFresh bool // every position left in the batch is after the last delivered one (see freshBatch)

	bg     sync.WaitGroup // goroutines the Reader started (the read ahead); Close waits for them
	saving chan struct{}  // a one-slot semaphore held during a store save (saves are ordered; r.mu is not held)

	mu           sync.Mutex // guards what follows; never held during I/O
	closed       bool
	last         Position // last delivered position
	hasLast      bool
	pending      Position // last position returned by Next, not yet handled
	hasPending   bool
	handled      Position
	hasHandled   bool
	handledAhead bool // a Commit put handled past the last delivered position
	committed    Position
	hasCommit    bool
	meta         string
	lastSave     time.Time
	upToDate     bool
	eof          bool
	stats        ReaderStats
}

// ReaderStats counts what a Reader did.
type ReaderStats struct {
	Delivered  int64 // messages returned by Next
	Requests   int64 // HTTP requests sent (an SSE connection counts once)
	Retries    int64 // waits of the retry schedule (failures and throttled empty answers)
	Stale      int64 // messages dropped because their position was not after the last delivered one
	Duplicates int64 // messages dropped by WithDedupe
	Commits    int64 // successful saves to the store
}

// NewReader opens a Reader of stream (a name relative to the Client's base
// URL, or a full URL) decoding messages into T. It sends no request and
// does not touch the store: the first Next does. Invalid options are an
// error wrapping ErrInvalidArgument.
func NewReader[T any](c *Client, stream string, opts ...Option) (*Reader[T], error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil Client", ErrInvalidArgument)
	}
	u, err := c.streamURL(stream)
	if err != nil {
		return nil, &Error{Op: "reader", URL: redactURL(stream), Err: err}
	}
	cfg := defaultReaderConfig()
	given, errs := applyOptions("NewReader", opts, func(o Option) func(*readerConfig) { return o.reader }, &cfg)
	cfg.errs = append(errs, cfg.errs...)
	if err := cfg.validate(given); err != nil {
		return nil, err
	}
	codec, err := codecFor[T](cfg.codec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	r := &Reader[T]{c: c, url: u, key: storeKey(u), cfg: cfg, codec: codec, log: c.log, mode: LiveLongPoll, slot: new(T)}
	_, r.fastJSON = codec.(JSONCodec[T])
	_, r.rawJSON = any(codec).(BytesCodec)
	if cfg.dedupeKey != nil {
		f, ok := cfg.dedupeKey.(func(T) string)
		if !ok {
			var zero T
			return nil, fmt.Errorf("%w: WithDedupe key %T does not take the Reader's %T", ErrInvalidArgument, cfg.dedupeKey, zero)
		}
		r.dedupe = f
		r.dkeys = make([]string, cfg.dedupeWindow)
		r.dset = make(map[string]struct{}, cfg.dedupeWindow)
	}
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
	r.sched = retry.NewSchedule(cfg.retry.internal())
	forever := cfg.retry.internal()
	forever.MaxAttempts, forever.MaxElapsed = 0, 0
	r.throttle = retry.NewSchedule(forever)
	r.lastSave = time.Now()
	// A Reader dropped without Close must not pin an SSE connection (and
	// net/http's goroutines for it) forever: once it is garbage, cancel
	// its context, which closes the connection.
	runtime.AddCleanup(r, func(cancel context.CancelFunc) { cancel() }, r.closeCancel)
	return r, nil
}

// start loads the position to start from.
func (r *Reader[T]) start(ctx context.Context) error {
	if r.cfg.store != nil {
		pos, ok, err := r.loadPosition(ctx)
		if err != nil {
			return fmt.Errorf("%w: load position %q: %w", ErrCommit, r.key, err)
		}
		if ok {
			r.readPos = Position{Offset: pos.Offset, Skip: pos.Skip}
			r.mu.Lock()
			r.last, r.hasLast = pos, true
			r.handled, r.hasHandled = pos, true
			r.committed, r.hasCommit = pos, true
			r.meta = pos.Meta
			r.mu.Unlock()
			r.saved = true
			r.started = true
			return nil
		}
	}
	r.readPos = Position{Offset: string(r.cfg.start)}
	r.started = true
	return nil
}

// loadPosition reads the saved position: under the Reader's key or, when the key
// is the default and nothing is saved under it, under the stream's full URL
// (the default key of earlier releases), so that an upgrade resumes instead
// of reading the stream again. Saves go to the Reader's key.
func (r *Reader[T]) loadPosition(ctx context.Context) (Position, bool, error) {
	pos, ok, err := r.cfg.store.Load(ctx, r.key)
	if err != nil || ok || r.cfg.key != "" {
		return pos, ok, err
	}
	return r.cfg.store.Load(ctx, r.url)
}

// storeKey is the default key of a Reader's position: the stream's path on
// its server, without scheme, host, port, user info or query, so that the
// same service resumes when it reaches the server by another name.
func storeKey(streamURL string) string {
	u, err := url.Parse(streamURL)
	if err != nil {
		return streamURL
	}
	return u.EscapedPath()
}

// rejected explains a 400 or 410 answer to the first read from a saved
// position: the server does not know the position (it is for another
// stream, or before the stream's retention). The Reader does not start
// over on its own: that would read the whole stream again.
func (r *Reader[T]) rejected(err error) error {
	var e *Error
	if !r.saved || !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Status != http.StatusGone) {
		return err
	}
	cp := *e
	cp.Err = fmt.Errorf("%w (offset %s under key %q): %w", ErrPositionRejected, r.readPos.Offset, r.key, e.Err)
	cp.hint = "remove the key from the store, or use another key, to read from the start"
	return &cp
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
		return zero, ErrReaderClosed
	}
	if r.hasPending {
		if r.handledAhead {
			r.markHandledLocked(r.pending)
		} else {
			// Delivered positions only grow, and nothing but a Commit puts
			// the handled position past the last delivered one.
			r.handled, r.hasHandled = Position{Offset: r.pending.Offset, Skip: r.pending.Skip}, true
		}
		r.hasPending = false
	}
	r.mu.Unlock()
	if !r.started {
		if err := r.start(ctx); err != nil {
			return zero, err
		}
	}
	if err := r.autoCommit(ctx, false); err != nil {
		return zero, err
	}
	fetched := false
	for {
		if r.sticky != nil {
			return zero, r.sticky
		}
		if msg, ok, err := r.take(); ok || err != nil {
			return msg, err
		}
		// The batch is drained: everything before readPos is handled.
		r.chunkDone()
		r.mu.Lock()
		if isRealOffset(Offset(r.readPos.Offset)) {
			r.markHandledLocked(r.readPos)
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
				return zero, ErrReaderClosed
			}
			if ctx.Err() != nil {
				return zero, r.c.interrupted(ctx, err)
			}
			// A transient failure that outlasted a bounded retry policy is
			// returned, not kept: a later Next starts a fresh episode.
			if ok, _ := classifier(true)(err); !ok {
				err = r.rejected(err)
				r.sticky = err
			}
			return zero, err
		}
		r.saved = false
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

// Position returns the position just after the last message delivered by
// Next (or the position the Reader started from).
func (r *Reader[T]) Position() Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hasLast {
		return r.last
	}
	return Position{Offset: string(r.cfg.start)}
}

// Committed returns the last position saved (by Commit, the interval
// commit, or loaded from the store); ok is false when there is none.
func (r *Reader[T]) Committed() (pos Position, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.committed, r.hasCommit
}

// UpToDate reports whether the last response reached the stream's tail as
// it was then. More data may arrive later.
func (r *Reader[T]) UpToDate() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.upToDate
}

// Closed reports whether the server said the stream is closed; Next
// returns io.EOF once the messages before the end are delivered.
func (r *Reader[T]) Closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.eof
}

// Transport returns the live transport in use: LiveLongPoll or LiveSSE
// (LiveAuto reports LiveLongPoll after falling back), or LiveNone.
func (r *Reader[T]) Transport() LiveMode {
	if r.cfg.live == LiveNone {
		return LiveNone
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mode
}

// Stats returns the Reader's counters.
func (r *Reader[T]) Stats() ReaderStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Requests = r.tr.requests.Load()
	return s
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
	return retry.Do(ctx, r.sched, r.fetch, classifier(true), func(ev retry.Event) {
		logRetry(ev)
		if !ev.Recovered {
			r.retried()
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

// load makes ch the current batch, dropping the readPos.Skip items already
// handled, and moves readPos past it.
func (r *Reader[T]) load(off Offset, ch rawChunk, ahead *decoded[T]) error {
	k := r.readPos.Skip
	r.batchOff, r.batchNext = off, ch.next
	r.idx, r.n = 0, 0
	r.lazy, r.lazyDone = false, false
	if r.ahead != nil {
		if r.pfDec == nil {
			r.pfDec = r.ahead
		}
		r.ahead = nil
	}
	r.data = ch.data
	r.jsonBatch = r.isJSON
	var items int64
	switch {
	case r.isJSON && ahead != nil:
		// Decoded ahead (see WithDecodeAhead): take hands the values out.
		r.ahead = ahead
		r.aheadChunks++
		r.spans, ahead.spans = ahead.spans, r.spans
		items = int64(len(r.spans))
		r.n = len(r.spans)
		if k < items {
			r.idx = int(k)
		}
	case r.isJSON && r.fastJSON && ch.parts == nil && len(bytes.TrimSpace(ch.data)) > 0:
		// One json.Decoder walks the array: no separate split pass.
		if err := r.startLazy(ch.data); err != nil {
			return err
		}
		for int64(r.idx) < k && !r.lazyDone {
			var skip json.RawMessage
			if err := r.dec.Decode(&skip); err != nil {
				return r.batchError(err)
			}
			r.idx++
			if r.lazyDone = !r.dec.More(); r.lazyDone {
				if err := r.finishLazy(); err != nil {
					return err
				}
			}
		}
		if !r.lazyDone {
			r.readPos = Position{Offset: string(ch.next)}
			return nil
		}
		items = int64(r.idx)
		r.lazy = false
	case r.isJSON:
		r.spans = r.spans[:0]
		start := 0
		parts := ch.parts
		if parts == nil {
			parts = []int{len(ch.data)}
		}
		for _, end := range parts {
			part := ch.data[start:end]
			if len(bytes.TrimSpace(part)) > 0 {
				if r.rawJSON && !json.Valid(part) {
					// Raw readers hand the bytes on: check them here (a
					// decoding codec checks its own input).
					return r.batchError(errors.New("invalid JSON"))
				}
				before := len(r.spans)
				var err error
				r.spans, err = jsonframe.Split(r.spans, part)
				if err != nil {
					return r.batchError(err)
				}
				for j := before; j < len(r.spans); j++ {
					r.spans[j].Start += start
					r.spans[j].End += start
				}
			}
			start = end
		}
		items = int64(len(r.spans))
		r.n = len(r.spans)
		if k < items {
			r.idx = int(k)
		}
	default:
		items = int64(len(ch.data))
		if k < items {
			r.data = ch.data[k:]
			r.n = 1
		}
	}
	if k >= items {
		r.readPos = Position{Offset: string(ch.next), Skip: k - items}
		r.n, r.idx = 0, 0
	} else {
		r.readPos = Position{Offset: string(ch.next)}
	}
	r.batchFresh = r.freshBatch()
	return nil
}

// freshBatch reports whether every position left in a split (or decoded
// ahead) batch is after the last delivered one, so that take and deliver
// need not compare each message's position: true when the first one is,
// and the batch's positions increase (its next offset is after its own).
func (r *Reader[T]) freshBatch() bool {
	if r.lazy || !r.jsonBatch || r.idx >= r.n {
		return false
	}
	if (Position{Offset: string(r.batchNext)}).Compare(Position{Offset: string(r.batchOff), Skip: int64(r.n)}) <= 0 {
		return false
	}
	if !r.hasLast {
		return true
	}
	first := Position{Offset: string(r.batchOff), Skip: int64(r.idx + 1)}
	if r.idx == r.n-1 {
		first = Position{Offset: string(r.batchNext)}
	}
	return first.Compare(r.last) > 0
}

// prefetched is a catch-up read started ahead of need.
type prefetched[T any] struct {
	off    Offset
	done   chan struct{} // closed when ch, buf, dec, decOK and err are set
	cancel context.CancelFunc
	ch     rawChunk
	buf    []byte
	dec    *decoded[T] // the chunk decoded ahead (with decOK), or spare slabs
	decOK  bool
	err    error
}

// prefetch starts the catch-up GET of off in the background, into the
// spare buffer, so that the request and the transfer of the next chunk
// overlap with the decoding and handling of this one. It is consumed (its
// outcome, error included, taken as that of the read) by the next fetch
// of off, or cancelled by a fetch of anything else and by Close. The
// request keeps the caller's context values, not its cancellation. Its
// answer is as of when it was sent: if it turns out to be the tail, data
// appended (or a close) since then is seen by the read after it, as if it
// had happened a moment later.
func (r *Reader[T]) prefetch(ctx context.Context, off Offset) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(r.closeCtx, cancel)
	pf := &prefetched[T]{off: off, done: make(chan struct{}), cancel: cancel, buf: r.pfBuf}
	r.pfBuf = nil
	r.pf = pf
	// Decode ahead only what take would decode with one json.Decoder: a
	// GET of a JSON stream read with the default JSONCodec.
	workers := r.cfg.decodeWorkers
	if !r.fastJSON || !r.isJSON {
		workers = 0
	}
	if workers > 0 {
		pf.dec = r.pfDec
		r.pfDec = nil
		if pf.dec == nil {
			pf.dec = new(decoded[T])
		}
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		defer close(pf.done)
		defer stop()
		defer cancel()
		pf.ch, pf.err = r.tr.catchUp(pctx, &pf.buf, off, "")
		if workers > 0 && pf.err == nil && !pf.ch.notModified && pf.ch.parts == nil && protocol.IsJSON(pf.ch.ctype) {
			pf.decOK = decodeAhead(pctx, pf.ch.data, pf.dec, workers)
		}
	}()
}

// dropPrefetch cancels a prefetch that is not wanted. Its buffer is left
// to it (and then to the garbage collector).
func (r *Reader[T]) dropPrefetch() {
	if r.pf != nil {
		r.pf.cancel()
		r.pf = nil
	}
}

// batchError reports a JSON batch that is not a well-formed array.
func (r *Reader[T]) batchError(err error) error {
	return &Error{Op: "read", URL: redactURL(r.url), Status: http.StatusOK,
		Err: fmt.Errorf("%w: JSON stream data is not a JSON array: %w", ErrProtocol, err)}
}

// startLazy points the Reader's json.Decoder at data, past its '['.
func (r *Reader[T]) startLazy(data []byte) error {
	r.br.Reset(data)
	if r.dec == nil {
		r.dec = json.NewDecoder(&r.br)
	} else {
		*r.dec = *json.NewDecoder(&r.br)
	}
	tok, err := r.dec.Token()
	if err != nil {
		return r.batchError(err)
	}
	if tok != json.Delim('[') {
		return r.batchError(fmt.Errorf("starts with %v", tok))
	}
	r.lazy = true
	if r.lazyDone = !r.dec.More(); r.lazyDone {
		return r.finishLazy()
	}
	return nil
}

// finishLazy checks that the array ends with ']' and nothing follows.
func (r *Reader[T]) finishLazy() error {
	tok, err := r.dec.Token()
	if err != nil {
		return r.batchError(err)
	}
	if tok != json.Delim(']') {
		return r.batchError(fmt.Errorf("unexpected %v", tok))
	}
	if _, err := r.dec.Token(); err != io.EOF {
		return r.batchError(fmt.Errorf("data after the array"))
	}
	return nil
}

// toSplit turns the lazy batch into a split one from element i on (after a
// decode error, when the Decoder may be out of step).
func (r *Reader[T]) toSplit(i int) error {
	var err error
	r.spans, err = jsonframe.Split(r.spans[:0], r.data)
	if err != nil {
		return r.batchError(err)
	}
	r.lazy, r.lazyDone = false, false
	r.n, r.idx = len(r.spans), i
	return nil
}

// batchPending reports whether the current batch has items left.
func (r *Reader[T]) batchPending() bool {
	if r.lazy {
		return !r.lazyDone
	}
	return r.idx < r.n
}

// takeLazy decodes the next element with the batch's json.Decoder.
func (r *Reader[T]) takeLazy() (Message[T], bool, error) {
	for r.lazy && !r.lazyDone {
		i := r.idx
		start := int(r.dec.InputOffset())
		var zero T
		*r.slot = zero
		if err := r.dec.Decode(r.slot); err != nil {
			if err := r.toSplit(i); err != nil {
				r.sticky = err
				return Message[T]{}, false, err
			}
			return r.take() // decode element i again, with the codec, for its error
		}
		r.idx++
		end := int(r.dec.InputOffset())
		for start < end && (isJSONSpace(r.data[start]) || r.data[start] == ',') {
			start++
		}
		pos := Position{Offset: string(r.batchOff), Skip: int64(i + 1)}
		if r.lazyDone = !r.dec.More(); r.lazyDone {
			if err := r.finishLazy(); err != nil {
				r.sticky = err
				return Message[T]{}, false, err
			}
			pos = Position{Offset: string(r.batchNext)}
		}
		if m, ok := r.deliver(pos, r.data[start:end], *r.slot, nil); ok {
			return m, true, nil
		}
	}
	return Message[T]{}, false, nil
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// take returns the next message of the current batch, if any.
func (r *Reader[T]) take() (Message[T], bool, error) {
	if r.lazy {
		return r.takeLazy()
	}
	for r.idx < r.n {
		i := r.idx
		r.idx++
		var raw []byte
		if r.jsonBatch {
			sp := r.spans[i]
			raw = r.data[sp.Start:sp.End]
		} else {
			raw = r.data
		}
		pos := Position{Offset: string(r.batchNext)}
		if i < r.n-1 {
			pos = Position{Offset: string(r.batchOff), Skip: int64(i + 1)}
		}
		// r.last is written only by this goroutine: read it unlocked.
		if !r.batchFresh && r.hasLast && pos.Compare(r.last) <= 0 {
			r.mu.Lock()
			r.stats.Stale++
			r.mu.Unlock()
			continue
		}
		var (
			v   T
			err error
		)
		if r.ahead != nil {
			v = r.ahead.vals[i]
			var zero T
			r.ahead.vals[i] = zero // the Reader keeps no reference to a value handed out
		} else {
			v, err = r.decode(raw)
		}
		if err != nil {
			r.deliver(pos, raw, v, err)
			ex := raw
			if len(ex) > 256 {
				ex = ex[:256]
			}
			return Message[T]{}, false, &DecodeError{Position: pos, Offset: r.batchOff, Index: i, Data: bytes.Clone(ex), Err: err}
		}
		if m, ok := r.deliver(pos, raw, v, nil); ok {
			return m, true, nil
		}
	}
	return Message[T]{}, false, nil
}

// deliver records a decoded message (or its decode error, returned as a
// *DecodeError in err's place) and reports whether it is to be returned:
// stale positions and dedupe hits are dropped.
func (r *Reader[T]) deliver(pos Position, raw []byte, v T, decErr error) (Message[T], bool) {
	if decErr == nil && !r.batchFresh && r.hasLast && pos.Compare(r.last) <= 0 {
		r.mu.Lock()
		r.stats.Stale++
		r.mu.Unlock()
		return Message[T]{}, false
	}
	if decErr == nil && r.dedupe != nil && r.seen(r.dedupe(v)) {
		r.mu.Lock()
		r.last, r.hasLast = pos, true
		r.stats.Duplicates++
		r.mu.Unlock()
		return Message[T]{}, false
	}
	r.mu.Lock()
	r.last, r.hasLast = pos, true
	r.pending, r.hasPending = pos, true
	if r.handledAhead && pos.Compare(r.handled) >= 0 {
		r.handledAhead = false
	}
	if decErr == nil {
		r.stats.Delivered++
		r.chunk.Messages++
	}
	r.mu.Unlock()
	return Message[T]{Value: v, Data: raw, Position: pos, Offset: r.batchOff}, true
}

// decode decodes one message with the codec into the reused slot.
func (r *Reader[T]) decode(raw []byte) (T, error) {
	var zero T
	*r.slot = zero
	if err := r.codec.Decode(raw, r.slot); err != nil {
		return zero, err
	}
	return *r.slot, nil
}

// seen reports whether key is in the dedupe window, and adds it if not.
func (r *Reader[T]) seen(key string) bool {
	if _, ok := r.dset[key]; ok {
		return true
	}
	if r.dfill == len(r.dkeys) {
		delete(r.dset, r.dkeys[r.dpos])
	} else {
		r.dfill++
	}
	r.dkeys[r.dpos] = key
	r.dset[key] = struct{}{}
	r.dpos = (r.dpos + 1) % len(r.dkeys)
	return false
}
