package durable

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// WriterOption configures a Writer. Options are applied in order by
// NewWriter and validated once there: a value that makes no sense (a zero
// batch size, a negative linger) makes NewWriter fail with an error
// wrapping ErrInvalidArgument instead of being replaced by a default.
// A CodecOption (WithCodec) is also a WriterOption.
type WriterOption interface {
	applyWriter(*writerConfig)
}

// writerOptionFunc adapts a function to WriterOption.
type writerOptionFunc func(*writerConfig)

func (f writerOptionFunc) applyWriter(c *writerConfig) { f(c) }

// applyWriter makes a CodecOption usable as a WriterOption.
func (o CodecOption) applyWriter(c *writerConfig) { c.codec = o.codec }

// Writer defaults (see the With* options).
const (
	DefaultWriterMaxBatchMessages = 1000
	DefaultWriterMaxBatchBytes    = 1 << 20
	DefaultWriterLinger           = 5 * time.Millisecond
	DefaultWriterMaxInFlight      = 4
	DefaultWriterBufferMessages   = 8192
	DefaultWriterBufferBytes      = 8 << 20
)

// DefaultWriterRetryPolicy returns the retry policy of a Writer unless
// WithWriterRetry is given: 100 ms doubling to at most 5 s, ±20 % jitter,
// any number of attempts within 2 minutes. A writer's retries are bounded
// so that a lost batch is reported instead of blocking the writer forever.
func DefaultWriterRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Initial:    100 * time.Millisecond,
		Max:        5 * time.Second,
		Multiplier: 2,
		Jitter:     0.2,
		MaxElapsed: 2 * time.Minute,
	}
}

// WriterHooks receives metrics events from a Writer. Methods are called
// from the Writer's goroutines, possibly concurrently, and must not block.
type WriterHooks interface {
	// OnBatchSent is called once per batch when it has settled: messages
	// and bytes (request body size) of the batch, the time from its first
	// attempt to its settlement, and nil or the error that lost it.
	OnBatchSent(messages, bytes int, latency time.Duration, err error)
	// OnRetry is called before waiting to retry a batch: the attempt that
	// failed (1 = first), its error and the wait before the next attempt.
	OnRetry(attempt int, err error, wait time.Duration)
}

type writerConfig struct {
	producerID       string
	epoch            int64
	epochSet         bool
	epochStore       EpochStore
	autoClaim        bool
	contentType      string
	codec            any
	maxBatchMessages int
	maxBatchBytes    int
	linger           time.Duration
	maxInFlight      int
	bufferMessages   int
	bufferBytes      int
	retry            RetryPolicy
	hooks            WriterHooks
	errs             []error
}

func defaultWriterConfig() writerConfig {
	return writerConfig{
		maxBatchMessages: DefaultWriterMaxBatchMessages,
		maxBatchBytes:    DefaultWriterMaxBatchBytes,
		linger:           DefaultWriterLinger,
		maxInFlight:      DefaultWriterMaxInFlight,
		bufferMessages:   DefaultWriterBufferMessages,
		bufferBytes:      DefaultWriterBufferBytes,
		retry:            DefaultWriterRetryPolicy(),
	}
}

func (c *writerConfig) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *writerConfig) validate() error {
	if err := c.retry.Validate(); err != nil {
		c.errs = append(c.errs, err)
	}
	if c.bufferMessages < c.maxBatchMessages {
		c.fail("buffer of %d messages is smaller than a batch of %d", c.bufferMessages, c.maxBatchMessages)
	}
	if c.bufferBytes < c.maxBatchBytes {
		c.fail("buffer of %d bytes is smaller than a batch of %d", c.bufferBytes, c.maxBatchBytes)
	}
	if c.epochStore != nil && c.producerID == "" {
		c.fail("WithEpochStore needs WithProducerID: a random producer ID has no stored epoch")
	}
	if c.producerID != "" && (len(c.producerID) > 1024 || hasControl(c.producerID)) {
		c.fail("producer ID must be printable text of at most 1024 bytes")
	}
	if len(c.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidArgument, errors.Join(c.errs...))
}

// WithProducerID sets the idempotent producer's Producer-Id. Use a stable
// name (with WithEpochStore or WithAutoClaim) when a restarted worker must
// fence its predecessor. Default: a random 128-bit hex string, new for each
// Writer.
func WithProducerID(id string) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if id == "" {
			c.fail("WithProducerID: empty ID")
			return
		}
		c.producerID = id
	})
}

// WithEpoch sets the producer epoch the Writer starts with (in
// [0, 2^53-1]). With WithEpochStore the Writer uses the larger of this and
// the stored epoch + 1. Default: 0.
func WithEpoch(epoch int64) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if epoch < 0 || epoch > protocol.MaxProducerNumber {
			c.fail("WithEpoch: %d out of [0, 2^53-1]", epoch)
			return
		}
		c.epoch, c.epochSet = epoch, true
	})
}

// WithEpochStore persists the producer epoch: before its first request the
// Writer loads the last epoch e saved for its producer ID, uses e+1 (or
// WithEpoch, if larger) and saves it, so a restarted worker fences the
// previous incarnation (a zombie still running gets ErrStaleEpoch).
// Requires WithProducerID. Default: none (epoch from WithEpoch).
func WithEpochStore(s EpochStore) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if s == nil {
			c.fail("WithEpochStore: nil store")
			return
		}
		c.epochStore = s
	})
}

// WithAutoClaim makes the Writer claim its producer ID when the server
// answers its first request with a stale epoch (403): it retries with the
// server's epoch + 1 (saved to the EpochStore, if any). Only the first
// batch of the Writer's epoch is ever claimed this way: a stale epoch later
// means another writer took the ID over while this one was running, and is
// reported as ErrStaleEpoch. Use it for ephemeral producers without a
// persisted epoch; two live writers with the same ID and auto-claim fence
// each other. Default: false.
func WithAutoClaim(on bool) WriterOption {
	return writerOptionFunc(func(c *writerConfig) { c.autoClaim = on })
}

// WithContentType sets the Content-Type of appends; it must match the
// stream's. For application/json each message is one JSON value and a
// batch is a JSON array; for any other type a batch is the concatenation of
// its messages. Default: application/json, or application/octet-stream
// when T is []byte.
func WithContentType(ct string) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if strings.TrimSpace(ct) == "" || strings.ContainsAny(ct, "\r\n\x00") {
			c.fail("WithContentType: invalid content type %q", ct)
			return
		}
		c.contentType = ct
	})
}

// WithMaxBatchMessages bounds the messages of one batch (one request).
// Must be > 0. Default: 1000.
func WithMaxBatchMessages(n int) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if n <= 0 {
			c.fail("WithMaxBatchMessages: must be > 0, got %d", n)
			return
		}
		c.maxBatchMessages = n
	})
}

// WithMaxBatchBytes bounds the body of one batch (one request), JSON array
// brackets and commas included. A message that cannot fit in a batch on its
// own is rejected by Write with ErrMessageTooLarge. Must be ≥ 16.
// Default: 1 MiB.
func WithMaxBatchBytes(n int) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if n < 16 {
			c.fail("WithMaxBatchBytes: must be ≥ 16, got %d", n)
			return
		}
		c.maxBatchBytes = n
	})
}

// WithLinger sets how long a batch waits for more messages after its first
// one before it is sent. While every in-flight slot is busy a batch keeps
// growing regardless; WriteSync, Flush and Close skip the linger. 0 sends
// as soon as a slot is free. Must be ≥ 0. Default: 5 ms.
func WithLinger(d time.Duration) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if d < 0 {
			c.fail("WithLinger: must be ≥ 0, got %v", d)
			return
		}
		c.linger = d
	})
}

// WithMaxInFlight bounds the batches sent concurrently (pipelining). Order
// is kept whatever the value: a batch that overtakes an earlier one is
// answered with a sequence gap and resent after it. To keep such resends
// rare, a batch is started only once the previous batch's request has been
// sent, and each gap halves the number of batches in flight (it grows back
// by one after 16 × that many batches without a gap, a count that doubles,
// up to 1024 ×, while gaps keep shrinking it). The first batch of a
// producer epoch always goes alone: a new epoch must start at sequence 0.
// Must be > 0. Default: 4.
func WithMaxInFlight(n int) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if n <= 0 {
			c.fail("WithMaxInFlight: must be > 0, got %d", n)
			return
		}
		c.maxInFlight = n
	})
}

// WithBufferMessages bounds the messages held by the Writer (waiting, in a
// batch, or in flight); Write blocks and TryWrite fails with ErrBufferFull
// beyond it. Must be ≥ the max batch messages. Default: 8192.
func WithBufferMessages(n int) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if n <= 0 {
			c.fail("WithBufferMessages: must be > 0, got %d", n)
			return
		}
		c.bufferMessages = n
	})
}

// WithBufferBytes bounds the encoded bytes held by the Writer (waiting, in a
// batch, or in flight); Write blocks and TryWrite fails with ErrBufferFull
// beyond it. Must be ≥ the max batch bytes. Default: 8 MiB.
func WithBufferBytes(n int) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if n <= 0 {
			c.fail("WithBufferBytes: must be > 0, got %d", n)
			return
		}
		c.bufferBytes = n
	})
}

// WithWriterRetry sets the retry schedule of a batch (network errors, 5xx,
// 429 with Retry-After as a floor). When it gives up, the batch is lost and
// the Writer fails. Default: DefaultWriterRetryPolicy().
func WithWriterRetry(p RetryPolicy) WriterOption {
	return writerOptionFunc(func(c *writerConfig) { c.retry = p })
}

// WithWriterHooks sets a receiver of batch and retry events (metrics).
// Default: none.
func WithWriterHooks(h WriterHooks) WriterOption {
	return writerOptionFunc(func(c *writerConfig) {
		if h == nil {
			c.fail("WithWriterHooks: nil hooks")
			return
		}
		c.hooks = h
	})
}
