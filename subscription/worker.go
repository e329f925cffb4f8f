package subscription

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/durablego/durable"
)

// Worker defaults.
const (
	// DefaultAckInterval is how long handled progress may wait before it
	// is acked (WithAckInterval), as the Reader's commit interval.
	DefaultAckInterval = time.Second
	// DefaultPollInterval is how often a Worker tries to claim without a
	// wake event (WithPollInterval), for servers that drop wake events.
	DefaultPollInterval = 10 * time.Second
	// DefaultBatchSize is the most messages one BatchHandler call gets.
	DefaultBatchSize = 100
	// finalBudget bounds the final ack and release of a wake when the
	// Worker stops.
	finalBudget = 5 * time.Second
)

// Worker works one pull-wake subscription (or a set of shards, see
// WithShards) in this process, alongside any number of Workers of the same
// subscription in other processes: the server hands the lease to one of
// them at a time.
//
// Run follows the subscription's wake stream (and polls every
// WithPollInterval, for a server that drops wake events), claims the lease
// when there is work, and reads each stream with pending work from its
// acked offset with a durable.Reader, handing its messages to the handler
// in order. Progress is acked as the handler returns (within
// WithAckInterval); acks renew the lease, and while a handler takes long a
// heartbeat every third of the lease keeps it. When every pending stream
// is caught up the Worker acks with done and claims again at once if the
// server has more.
//
// A handler error (or a message that does not decode) acks the progress
// before it, releases the lease and waits a backoff before claiming the
// subscription again: the message is delivered again, to this worker or
// another. When the server refuses the wake (ErrFenced: the lease ran out
// and another worker has it; a token refused; the subscription deleted),
// the Worker stops touching its streams at once: handlers' contexts end,
// no more reads, acks or releases. If the lease runs out on this side
// before a renewal succeeded (the process stalled), handlers stop too and
// the final ack tells whether the server agrees.
//
// Delivery is at-least-once and in order per stream: messages handled but
// not yet acked when a worker dies, stalls past its lease or fails are
// delivered again from the acked offset; an acked message is never
// delivered again.
type Worker[T any] struct {
	c    *durable.Client
	subs []*Subscription
	cfg  workerConfig
	eng  *engine[T]
	st   stats

	mu      sync.Mutex
	running bool
}

type workerConfig struct {
	name        string
	concurrency int
	shards      int
	ackInterval time.Duration
	poll        time.Duration
	batch       int
	followWakes bool
	readerOpts  []durable.ReaderOption
	obs         observer
	errs        []error
}

// WorkerOption configures a Worker (and a Receiver where it applies).
type WorkerOption func(*workerConfig)

// WithName sets the worker name sent with claims (ALREADY_CLAIMED answers
// name the holder). Default: host name, process id and a random suffix.
func WithName(name string) WorkerOption {
	return func(c *workerConfig) {
		if name == "" {
			c.errs = append(c.errs, errors.New("WithName: empty name"))
		}
		c.name = name
	}
}

// WithConcurrency sets how many streams are handled at once (default 1),
// across the wakes this Worker holds. Each stream's messages are still
// handled one at a time and in order; with more than one, the handler is
// called from several goroutines at once.
func WithConcurrency(n int) WorkerOption {
	return func(c *workerConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithConcurrency(%d): must be at least 1", n))
		}
		c.concurrency = n
	}
}

// WithShards makes the Worker work n subscriptions, id-0 … id-(n-1) (see
// Sharding), each with its own lease: up to n workers, in this process or
// others, work at once. Default: the subscription id alone.
func WithShards(n int) WorkerOption {
	return func(c *workerConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithShards(%d): must be at least 1", n))
		}
		c.shards = n
	}
}

// WithAckInterval sets how long handled progress may wait before it is
// acked (default DefaultAckInterval); 0 acks as soon as a handler returns
// (one ack in flight at a time, later progress coalesced into the next).
// Progress is also acked when a wake ends. Messages handled but not acked
// are delivered again after a crash.
func WithAckInterval(d time.Duration) WorkerOption {
	return func(c *workerConfig) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithAckInterval(%v): negative", d))
		}
		c.ackInterval = d
	}
}

// WithPollInterval sets how often the Worker tries to claim without a
// wake event (default DefaultPollInterval).
func WithPollInterval(d time.Duration) WorkerOption {
	return func(c *workerConfig) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithPollInterval(%v): must be positive", d))
		}
		c.poll = d
	}
}

// WithBatchSize sets the most messages one BatchHandler call gets
// (default DefaultBatchSize). Per-message handlers ignore it.
func WithBatchSize(n int) WorkerOption {
	return func(c *workerConfig) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithBatchSize(%d): must be at least 1", n))
		}
		c.batch = n
	}
}

// WithoutWakeStream makes the Worker only poll (WithPollInterval) instead
// of following the wake stream.
func WithoutWakeStream() WorkerOption { return func(c *workerConfig) { c.followWakes = false } }

// WithReaderOptions passes options to the Readers of the subscription's
// streams: decoding and transport knobs such as durable.WithCodec,
// WithDecodeAhead, WithMaxChunkBytes or WithReaderRetry. The Worker sets
// each Reader's start (the acked offset) and live mode itself; do not pass
// WithStore or WithKey.
func WithReaderOptions(opts ...durable.ReaderOption) WorkerOption {
	return func(c *workerConfig) { c.readerOpts = append(c.readerOpts, opts...) }
}

// withObserver sets the worker's observer (tests).
func withObserver(o observer) WorkerOption { return func(c *workerConfig) { c.obs = o } }

func defaultWorkerConfig() workerConfig {
	return workerConfig{
		concurrency: 1, ackInterval: DefaultAckInterval, poll: DefaultPollInterval,
		batch: DefaultBatchSize, followWakes: true, obs: nopObserver{},
	}
}

// NewWorker returns a Worker of subscription id (a pull-wake
// subscription) calling h with each message. It sends no request: Run
// does. Invalid options are an error wrapping durable.ErrInvalidArgument.
func NewWorker[T any](c *durable.Client, id string, h Handler[T], opts ...WorkerOption) (*Worker[T], error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", durable.ErrInvalidArgument)
	}
	w, err := newWorker[T](c, id, opts)
	if err != nil {
		return nil, err
	}
	w.eng.batch = 1
	w.eng.handle = func(ctx context.Context, b []Message[T]) error { return h(ctx, b[0]) }
	return w, nil
}

// NewBatchWorker is NewWorker with a handler of several messages of one
// stream at a time (WithBatchSize).
func NewBatchWorker[T any](c *durable.Client, id string, h BatchHandler[T], opts ...WorkerOption) (*Worker[T], error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil BatchHandler", durable.ErrInvalidArgument)
	}
	w, err := newWorker[T](c, id, opts)
	if err != nil {
		return nil, err
	}
	w.eng.copyData = true
	w.eng.handle = h
	return w, nil
}

func newWorker[T any](c *durable.Client, id string, opts []WorkerOption) (*Worker[T], error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil Client", durable.ErrInvalidArgument)
	}
	cfg := defaultWorkerConfig()
	for _, o := range opts {
		if o == nil {
			cfg.errs = append(cfg.errs, errors.New("nil WorkerOption"))
			continue
		}
		o(&cfg)
	}
	if len(cfg.errs) > 0 {
		return nil, fmt.Errorf("%w: %w", durable.ErrInvalidArgument, errors.Join(cfg.errs...))
	}
	if cfg.name == "" {
		cfg.name = defaultName()
	}
	ids := []string{id}
	if cfg.shards > 0 {
		ids = Sharding{ID: id, N: cfg.shards}.IDs()
	}
	w := &Worker[T]{c: c, cfg: cfg}
	for _, id := range ids {
		s, err := Open(c, id)
		if err != nil {
			return nil, err
		}
		w.subs = append(w.subs, s)
	}
	w.eng = &engine[T]{
		c: c, batch: cfg.batch, interval: cfg.ackInterval, slots: make(chan struct{}, cfg.concurrency),
		readerOpts: cfg.readerOpts, obs: counting{next: cfg.obs, stats: &w.st}, stats: &w.st, finalBudget: finalBudget,
	}
	return w, nil
}

// defaultName is host-pid-random.
func defaultName() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "worker"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Name returns the worker name sent with claims.
func (w *Worker[T]) Name() string { return w.cfg.name }

// Stats returns what the Worker did so far.
func (w *Worker[T]) Stats() WorkerStats { return w.st.snapshot() }
