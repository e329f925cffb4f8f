package durable

import (
	"fmt"
	"runtime"
	"time"

	"github.com/durablego/durable/internal/retry"
)

// readerOption makes an Option of NewReader only.
func readerOption(name string, f func(*readerConfig)) Option { return Option{name: name, reader: f} }

// Reader defaults (the options' documentation says each).
const (
	defaultCommitInterval = time.Second     // WithCommitInterval
	defaultSSEFallbackN   = 3               // WithSSEFallback: failed connections in a row
	defaultSSEMinLife     = time.Second     // WithSSEFallback: a connection shorter than this failed
	defaultSSEIdleTimeout = 2 * time.Minute // WithSSEIdleTimeout
	minQuickPoll          = 1 * time.Second // a live answer with nothing new faster than this is throttled
)

// defaultReaderRetryPolicy is the Reader's retry schedule unless WithRetry
// is given: 100 ms doubling to at most 10 s, ±20 % jitter, and no limit: a
// reader is meant to tail forever, so only the caller's context (or Close)
// ends its retries.
func defaultReaderRetryPolicy() RetryPolicy { return RetryPolicy(retry.Tail) }

type readerConfig struct {
	store          Store
	key            string
	start          Offset
	live           LiveMode
	commitInterval time.Duration // 0 = manual
	retry          RetryPolicy
	maxChunk       int64 // 0 = the Client's WithMaxResponseBytes
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
		commitInterval: defaultCommitInterval,
		retry:          defaultReaderRetryPolicy(),
		sseFallbackN:   defaultSSEFallbackN,
		sseMinLife:     defaultSSEMinLife,
		sseIdle:        defaultSSEIdleTimeout,
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

// validate checks the options given (their names in given) together.
func (c *readerConfig) validate(given map[string]bool) error {
	if err := c.retry.validate(); err != nil {
		c.errs = append(c.errs, err)
	}
	if given["WithManualCommit"] && given["WithCommitInterval"] {
		c.fail("WithManualCommit and WithCommitInterval contradict each other")
	}
	if given["WithKey"] && !given["WithStore"] {
		c.fail("WithKey without WithStore: the key names a position in a store")
	}
	return invalid(c.errs)
}

// WithStore makes the Reader load its starting position from s (under the
// key of WithKey) and save committed positions there. Default: no store;
// Commit then only records the position in memory (see ReaderStats.Committed).
//
// NewReader only.
func WithStore(s Store) Option {
	return readerOption("WithStore", func(c *readerConfig) {
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
//
// NewReader only.
func WithKey(key string) Option {
	return readerOption("WithKey", func(c *readerConfig) {
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
//
// NewReader only.
func WithStart(o Offset) Option {
	return readerOption("WithStart", func(c *readerConfig) {
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
//
// NewReader only.
func WithLive(m LiveMode) Option {
	return readerOption("WithLive", func(c *readerConfig) {
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
//
// NewReader only.
func WithCommitInterval(d time.Duration) Option {
	return readerOption("WithCommitInterval", func(c *readerConfig) {
		if d <= 0 {
			c.fail("WithCommitInterval: must be > 0, got %v (use WithManualCommit)", d)
			return
		}
		c.commitInterval = d
	})
}

// WithManualCommit turns automatic commits off: positions are saved only by
// Reader.Commit.
//
// NewReader only.
func WithManualCommit() Option {
	return readerOption("WithManualCommit", func(c *readerConfig) { c.commitInterval = 0 })
}

// WithSSEFallback tunes LiveAuto: after n SSE connections in a row that
// ended within minLife of opening without delivering a control event, the
// Reader switches to long-poll. Defaults: 3 and 1 s.
//
// NewReader only.
func WithSSEFallback(n int, minLife time.Duration) Option {
	return readerOption("WithSSEFallback", func(c *readerConfig) {
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
// observable but speed: positions, order, stale-answer checks and
// decode errors (a chunk that does not decode cleanly is decoded again in
// Next, message by message, to report its error at its position) are those
// of decoding in Next. It costs memory for one more chunk of decoded values,
// so the Reader's heap stays bounded by a small multiple of the chunk size.
// Live reads, SSE and other codecs decode in Next. 0 turns decoding ahead
// off; negative is an error. Default: GOMAXPROCS, at most 4.
//
// NewReader only.
func WithDecodeAhead(workers int) Option {
	return readerOption("WithDecodeAhead", func(c *readerConfig) {
		if workers < 0 {
			c.fail("WithDecodeAhead: must be >= 0, got %d", workers)
			return
		}
		c.decodeWorkers = workers
	})
}

// WithSSEIdleTimeout sets how long an open SSE connection may deliver no
// event before the Reader closes it and reconnects from its last position.
// It catches connections that died without a word (a NAT or load balancer
// dropping the flow, a half-open TCP connection), which would otherwise
// keep Next waiting forever. Servers end SSE connections about every 60
// seconds (the protocol asks them to, so that caches and proxies are not
// held forever), so the default of 2 minutes never cuts a healthy one.
// Must be > 0.
//
// NewReader only.
func WithSSEIdleTimeout(d time.Duration) Option {
	return readerOption("WithSSEIdleTimeout", func(c *readerConfig) {
		if d <= 0 {
			c.fail("WithSSEIdleTimeout: must be > 0, got %v", d)
			return
		}
		c.sseIdle = d
	})
}
