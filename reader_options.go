package durable

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// ReaderOption configures a Reader; pass options to NewReader. A
// CodecOption (WithCodec) is a ReaderOption too. Options are validated once,
// by NewReader: a value that makes no sense is an error wrapping
// ErrInvalidArgument, never silently replaced by a default.
type ReaderOption interface{ applyReader(*readerConfig) }

type readerOptionFunc func(*readerConfig)

func (f readerOptionFunc) applyReader(c *readerConfig) { f(c) }

func (o CodecOption) applyReader(c *readerConfig) { c.codec = o.codec }

// Reader defaults.
const (
	DefaultCommitInterval = time.Second     // WithCommitInterval
	DefaultSSEFallbackN   = 3               // WithSSEFallback: failed connections in a row
	DefaultSSEMinLife     = time.Second     // WithSSEFallback: a connection shorter than this failed
	minQuickPoll          = 1 * time.Second // a live answer with nothing new faster than this is throttled
)

// DefaultReaderRetryPolicy is the Reader's retry schedule unless
// WithReaderRetry is given: 100 ms doubling to at most 10 s, ±20 % jitter,
// and no limit: a reader is meant to tail forever, so only the caller's
// context (or Close) ends its retries.
func DefaultReaderRetryPolicy() RetryPolicy {
	return RetryPolicy{Initial: 100 * time.Millisecond, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.2}
}

// RetryInfo describes one retry of a Reader, for WithRetryHook.
type RetryInfo struct {
	Attempt int           // consecutive failures so far (1 for the first retry)
	Err     error         // the failure being retried, or nil when throttling answers that brought nothing new
	Wait    time.Duration // how long the Reader waits before the next request (Retry-After is a floor)
	Offset  Offset        // the offset the next request reads from
}

type readerConfig struct {
	store          Store
	key            string
	start          Offset
	live           LiveMode
	commitInterval time.Duration // 0 = manual
	retry          RetryPolicy
	retryHook      func(RetryInfo)
	dedupeKey      any // func(T) string, checked in NewReader
	dedupeWindow   int
	codec          any
	maxChunk       int64 // 0 = the Client's WithMaxResponseSize
	sseFallbackN   int
	sseMinLife     time.Duration
	sseIdle        time.Duration
	decodeWorkers  int // goroutines decoding a read-ahead chunk; 0 = decode in Next
	errs           []error
}

func defaultReaderConfig() readerConfig {
	return readerConfig{
		start:          OffsetStart,
		live:           LiveLongPoll,
		commitInterval: DefaultCommitInterval,
		retry:          DefaultReaderRetryPolicy(),
		sseFallbackN:   DefaultSSEFallbackN,
		sseMinLife:     DefaultSSEMinLife,
		sseIdle:        DefaultSSEIdleTimeout,
		decodeWorkers:  defaultDecodeWorkers(),
	}
}

// defaultDecodeWorkers is GOMAXPROCS, at most maxDecodeWorkers.
func defaultDecodeWorkers() int { return min(runtime.GOMAXPROCS(0), maxDecodeWorkers) }

// maxDecodeWorkers caps the default of WithDecodeAhead: beyond a few
// goroutines a 1 MiB chunk is split too thin to gain more.
const maxDecodeWorkers = 4

func (c *readerConfig) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *readerConfig) validate() error {
	if err := c.retry.Validate(); err != nil {
		c.errs = append(c.errs, err)
	}
	if len(c.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidArgument, errors.Join(c.errs...))
}

// WithStore makes the Reader load its starting position from s (under the
// key of WithKey) and save committed positions there. Default: no store;
// Commit then only records the position in memory (see Reader.Committed).
func WithStore(s Store) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		if s == nil {
			c.fail("WithStore: nil store")
			return
		}
		c.store = s
	})
}

// WithKey sets the key under which the position is saved in the store.
// Default: the stream's path on its server, such as "/v1/stream/orders"
// (no scheme, host, port, user info or query), so that a service resumes
// whatever name it reaches the server by. Give each consumer of one stream
// its own key, and a stream of another server that shares a store with the
// same path its own key too.
func WithKey(key string) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		if key == "" {
			c.fail("WithKey: empty key")
			return
		}
		c.key = key
	})
}

// WithStart sets where a Reader starts when the store holds no position for
// its key: OffsetStart (the default, the whole stream), OffsetNow (only
// data appended from now on) or an offset returned by the server.
func WithStart(o Offset) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		if o == "" || len(o) > maxOffsetLen || hasControl(string(o)) {
			c.fail("WithStart: invalid offset %q", o)
			return
		}
		c.start = o
	})
}

// WithLive sets how the Reader waits for new data once it has caught up
// (catch-up itself always uses plain, cacheable GETs):
//
//   - LiveLongPoll (default): long-poll GETs, echoing the server's cursor.
//   - LiveSSE: one Server-Sent Events connection, reopened from the last
//     control event's offset (with its cursor) when it ends. SSE carries
//     text/* streams as text lines, so a CR or CRLF in such a stream
//     arrives as LF; use long-poll where text bytes must be exact (binary
//     and JSON streams are exact either way).
//   - LiveAuto: SSE, falling back to long-poll for the rest of the Reader's
//     life when SSE connections keep failing quickly (see WithSSEFallback),
//     as they do behind proxies that buffer or cut streaming responses.
//   - LiveNone: no live mode: Next returns ErrCaughtUp when the Reader has
//     caught up (and io.EOF if the stream is closed).
func WithLive(m LiveMode) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		switch m {
		case LiveNone, LiveLongPoll, LiveSSE, LiveAuto:
			c.live = m
		default:
			c.fail("WithLive: unknown live mode %q", m)
		}
	})
}

// WithCommitInterval makes the Reader save its handled position
// automatically: when at least d has passed since the last save, and
// whenever it is about to wait for new data, to return ErrCaughtUp or
// io.EOF, and on Close. Must be > 0. Default: 1 s. See Reader for what
// "handled" means.
func WithCommitInterval(d time.Duration) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		if d <= 0 {
			c.fail("WithCommitInterval: must be > 0, got %v (use WithManualCommit)", d)
			return
		}
		c.commitInterval = d
	})
}

// WithManualCommit turns automatic commits off: positions are saved only by
// Reader.Commit.
func WithManualCommit() ReaderOption {
	return readerOptionFunc(func(c *readerConfig) { c.commitInterval = 0 })
}

// WithReaderRetry sets the schedule of the Reader's retries of transient
// failures. Default: DefaultReaderRetryPolicy() (retry forever). With a
// bounded policy, Next returns the last failure once it is exhausted; a
// later Next starts a fresh schedule.
func WithReaderRetry(p RetryPolicy) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) { c.retry = p })
}

// WithRetryHook sets a function called (synchronously, from Next) before
// every wait of the Reader's retry schedule.
func WithRetryHook(fn func(RetryInfo)) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		if fn == nil {
			c.fail("WithRetryHook: nil function")
			return
		}
		c.retryHook = fn
	})
}

// WithDedupe drops a message whose key(value) equals the key of one of the
// last window delivered messages: duplicates that a restarted writer sent
// again without idempotent producer headers. The window lives in memory and
// starts empty when a Reader is opened. A dropped message counts as handled.
// T must be the Reader's T (NewReader checks); window must be > 0.
func WithDedupe[T any](key func(T) string, window int) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		if key == nil || window <= 0 {
			c.fail("WithDedupe: need a key function and a window > 0, got window %d", window)
			return
		}
		c.dedupeKey, c.dedupeWindow = key, window
	})
}

// WithMaxChunkBytes bounds the bytes the Reader holds for one read: a
// response body, the data between two SSE control events, and one SSE line.
// A larger read fails with ErrResponseTooLarge (permanent). Must be > 0.
// Default: the Client's WithMaxResponseSize (64 MiB). The Reader's heap is
// bounded by a small multiple of this (during catch-up it holds the read
// being handed out and reads the next one ahead, with their decoded values
// when decoding ahead), whatever the stream's length.
func WithMaxChunkBytes(n int64) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		if n <= 0 {
			c.fail("WithMaxChunkBytes: must be > 0, got %d", n)
			return
		}
		c.maxChunk = n
	})
}

// WithSSEFallback tunes LiveAuto: after n SSE connections in a row that
// ended within minLife of opening without delivering a control event, the
// Reader switches to long-poll. Defaults: 3 and 1 s.
func WithSSEFallback(n int, minLife time.Duration) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		if n <= 0 || minLife <= 0 {
			c.fail("WithSSEFallback: need n > 0 and minLife > 0, got %d, %v", n, minLife)
			return
		}
		c.sseFallbackN, c.sseMinLife = n, minLife
	})
}

// WithDecodeAhead sets how many goroutines decode the chunk read ahead
// during catch-up (see Reader) with the default JSONCodec: while Next hands
// out one chunk's messages, the next chunk is fetched and decoded into T in
// the background, its messages split evenly between the workers. Next then
// only hands values out, and catch-up of a long stream runs at the speed of
// workers × encoding/json instead of one. Decoding ahead changes nothing
// observable but speed: positions, order, dedupe, stale-answer checks and
// decode errors (a chunk that does not decode cleanly is decoded again in
// Next, message by message, to report its error at its position) are those
// of decoding in Next. It costs memory for one more chunk of decoded values,
// so the Reader's heap stays bounded by a small multiple of the chunk size.
// Live reads, SSE and other codecs decode in Next. 0 turns decoding ahead
// off; negative is an error. Default: GOMAXPROCS, at most 4.
func WithDecodeAhead(workers int) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		if workers < 0 {
			c.fail("WithDecodeAhead: must be >= 0, got %d", workers)
			return
		}
		c.decodeWorkers = workers
	})
}

// DefaultSSEIdleTimeout is how long an SSE connection may stay silent
// before the Reader takes it for dead (see WithSSEIdleTimeout).
const DefaultSSEIdleTimeout = 2 * time.Minute

// WithSSEIdleTimeout sets how long an open SSE connection may deliver no
// event before the Reader closes it and reconnects from its last position.
// It catches connections that died without a word (a NAT or load balancer
// dropping the flow, a half-open TCP connection), which would otherwise
// keep Next waiting forever. Servers close SSE connections about every 60
// seconds (PROTOCOL.md §5.8), so the default of 2 minutes never cuts a
// healthy one. Must be > 0.
func WithSSEIdleTimeout(d time.Duration) ReaderOption {
	return readerOptionFunc(func(c *readerConfig) {
		if d <= 0 {
			c.fail("WithSSEIdleTimeout: must be > 0, got %v", d)
			return
		}
		c.sseIdle = d
	})
}
