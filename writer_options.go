package durable

import (
	"fmt"
	"strings"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// writerOption makes an Option of NewWriter only.
func writerOption(name string, f func(*writerConfig)) Option { return Option{name: name, writer: f} }

// Writer defaults (the options' documentation says each).
const (
	defaultWriterMaxBatchMessages = 1000
	defaultWriterMaxBatchBytes    = 1 << 20
	defaultWriterLinger           = 5 * time.Millisecond
	defaultWriterMaxInFlight      = 4
	defaultWriterBufferMessages   = 8192
	defaultWriterBufferBytes      = 8 << 20
)

// defaultWriterRetryPolicy is the retry policy of a Writer unless WithRetry
// is given: 100 ms doubling to at most 5 s, ±20 % jitter, any number of
// attempts within 2 minutes. A writer's retries are bounded so that a lost
// batch is reported instead of blocking the writer forever.
func defaultWriterRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Initial:    100 * time.Millisecond,
		Max:        5 * time.Second,
		Multiplier: 2,
		Jitter:     0.2,
		MaxElapsed: 2 * time.Minute,
	}
}

type writerConfig struct {
	producerID       string
	epoch            int64
	epochSet         bool
	epochStore       EpochStore
	autoClaim        bool
	contentType      string
	maxBatchMessages int
	maxBatchBytes    int
	linger           time.Duration
	maxInFlight      int
	bufferMessages   int
	bufferBytes      int
	retry            RetryPolicy
	errs             []error
}

func defaultWriterConfig() writerConfig {
	return writerConfig{
		maxBatchMessages: defaultWriterMaxBatchMessages,
		maxBatchBytes:    defaultWriterMaxBatchBytes,
		linger:           defaultWriterLinger,
		maxInFlight:      defaultWriterMaxInFlight,
		bufferMessages:   defaultWriterBufferMessages,
		bufferBytes:      defaultWriterBufferBytes,
		retry:            defaultWriterRetryPolicy(),
	}
}

func (c *writerConfig) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *writerConfig) validate() error {
	if err := c.retry.validate(); err != nil {
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
	return invalid(c.errs)
}

// WithProducerID sets the idempotent producer's Producer-Id. Use a stable
// name (with WithEpochStore or WithAutoClaim) when a restarted worker must
// fence its predecessor. Default: a random 128-bit hex string, new for each
// Writer.
//
// NewWriter only.
func WithProducerID(id string) Option {
	return writerOption("WithProducerID", func(c *writerConfig) {
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
//
// NewWriter only.
func WithEpoch(epoch int64) Option {
	return writerOption("WithEpoch", func(c *writerConfig) {
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
//
// NewWriter only.
func WithEpochStore(s EpochStore) Option {
	return writerOption("WithEpochStore", func(c *writerConfig) {
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
// each other. Default: off.
//
// NewWriter only.
func WithAutoClaim() Option {
	return writerOption("WithAutoClaim", func(c *writerConfig) { c.autoClaim = true })
}

// WithContentType sets the Content-Type of appends; it must match the
// stream's. For application/json each message is one JSON value and a
// batch is a JSON array; for any other type a batch is the concatenation of
// its messages. Default: application/json, or application/octet-stream
// when T is []byte.
//
// NewWriter only.
func WithContentType(ct string) Option {
	return writerOption("WithContentType", func(c *writerConfig) {
		if strings.TrimSpace(ct) == "" || strings.ContainsAny(ct, "\r\n\x00") {
			c.fail("WithContentType: invalid content type %q", ct)
			return
		}
		c.contentType = ct
	})
}

// WithMaxBatch bounds one batch (one request): at most messages messages
// and bytes bytes of body, JSON array brackets and commas included. A
// message that cannot fit in a batch on its own is rejected by Write with
// ErrMessageTooLarge. messages must be > 0 and bytes ≥ 16. NewWriter only.
// Default: 1000 messages, 1 MiB.
func WithMaxBatch(messages, bytes int) Option {
	return writerOption("WithMaxBatch", func(c *writerConfig) {
		if messages <= 0 || bytes < 16 {
			c.fail("WithMaxBatch: need messages > 0 and bytes ≥ 16, got %d, %d", messages, bytes)
			return
		}
		c.maxBatchMessages, c.maxBatchBytes = messages, bytes
	})
}

// WithLinger sets how long a batch waits for more messages after its first
// one before it is sent. While every in-flight slot is busy a batch keeps
// growing regardless; WriteSync, Flush and Close skip the linger. 0 sends
// as soon as a slot is free. Must be ≥ 0. Default: 5 ms.
//
// NewWriter only.
func WithLinger(d time.Duration) Option {
	return writerOption("WithLinger", func(c *writerConfig) {
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
//
// NewWriter only.
func WithMaxInFlight(n int) Option {
	return writerOption("WithMaxInFlight", func(c *writerConfig) {
		if n <= 0 {
			c.fail("WithMaxInFlight: must be > 0, got %d", n)
			return
		}
		c.maxInFlight = n
	})
}

// WithBuffer bounds what the Writer holds (waiting, in a batch, or in
// flight): at most messages messages and bytes encoded bytes; beyond either
// Write blocks and TryWrite fails with ErrBufferFull. Each must be at least
// the batch's bound of WithMaxBatch. NewWriter only. Default: 8192
// messages, 8 MiB.
func WithBuffer(messages, bytes int) Option {
	return writerOption("WithBuffer", func(c *writerConfig) {
		if messages <= 0 || bytes <= 0 {
			c.fail("WithBuffer: need messages > 0 and bytes > 0, got %d, %d", messages, bytes)
			return
		}
		c.bufferMessages, c.bufferBytes = messages, bytes
	})
}
