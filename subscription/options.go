package subscription

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/retry"
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

// config is the configuration of a Worker, a Receiver or a Verifier; each
// reads the options that apply to it.
type config struct {
	name        string
	concurrency int
	shards      int
	maxLeases   int
	ackInterval time.Duration
	poll        time.Duration
	batch       int
	followWakes bool
	readerOpts  []durable.Option
	obs         observer
	retry       retry.Policy    // the Worker's waits after failed claims and handler errors
	async       bool            // Receiver: answer at once, work in the background
	accept      map[string]bool // Receiver: subscription ids accepted; nil = any
	skew        time.Duration   // Verifier
	keyRefresh  time.Duration   // Verifier
	now         func() time.Time
	errs        []error
}

// Option configures a Worker, a Receiver or a Verifier. Each reads the
// options that apply to it and ignores the others: WithName, WithShards,
// WithPollInterval and WithoutWakeStream are the Worker's; WithAsync and
// WithAcceptSubscriptions the Receiver's; WithMaxSkew and WithKeyRefresh
// the Verifier's (and so the Receiver's); the rest apply to both the
// Worker and the Receiver. Invalid values are an error wrapping
// durable.ErrInvalidArgument at construction.
type Option func(*config)

// WithName sets the worker name sent with claims (ALREADY_CLAIMED answers
// name the holder). Default: host name, process id and a random suffix.
func WithName(name string) Option {
	return func(c *config) {
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
func WithConcurrency(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithConcurrency(%d): must be at least 1", n))
		}
		c.concurrency = n
	}
}

// WithShards makes the Worker work n subscriptions, id-0 … id-(n-1) (see
// Sharding), each with its own lease: up to n workers, in this process or
// others, work at once. Default: the subscription id alone.
func WithShards(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithShards(%d): must be at least 1", n))
		}
		c.shards = n
	}
}

// WithMaxLeases sets how many leases (of different shards, see
// WithShards) a Worker holds at once (default 1). The default spreads the
// shards over the workers: each holds one, works its streams
// (WithConcurrency at a time), and claims another when it is done. Raise
// it when one process alone serves several shards; a Worker never claims
// without a free WithConcurrency slot either way.
func WithMaxLeases(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxLeases(%d): must be at least 1", n))
		}
		c.maxLeases = n
	}
}

// WithAckInterval sets how long handled progress may wait before it is
// acked (default DefaultAckInterval); 0 acks as soon as a handler returns
// (one ack in flight at a time, later progress coalesced into the next).
// Progress is also acked when a wake ends. Messages handled but not acked
// are delivered again after a crash.
func WithAckInterval(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithAckInterval(%v): negative", d))
		}
		c.ackInterval = d
	}
}

// WithPollInterval sets how often the Worker tries to claim without a
// wake event (default DefaultPollInterval).
func WithPollInterval(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithPollInterval(%v): must be positive", d))
		}
		c.poll = d
	}
}

// WithBatchSize sets the most messages one BatchHandler call gets
// (default DefaultBatchSize). Per-message handlers ignore it.
func WithBatchSize(n int) Option {
	return func(c *config) {
		if n < 1 {
			c.errs = append(c.errs, fmt.Errorf("WithBatchSize(%d): must be at least 1", n))
		}
		c.batch = n
	}
}

// WithoutWakeStream makes the Worker only poll (WithPollInterval) instead
// of following the wake stream.
func WithoutWakeStream() Option { return func(c *config) { c.followWakes = false } }

// WithReaderOptions passes options to the Readers of the subscription's
// streams: decoding and transport knobs such as durable.WithDecodeAhead,
// WithMaxResponseBytes or WithRetry. Messages are decoded as JSON into T
// (for T []byte: the bytes of each message as they are). The Worker sets
// each Reader's start (the acked offset) and live mode itself; do not pass
// WithStart, WithLive, WithStore or WithKey.
func WithReaderOptions(opts ...durable.Option) Option {
	return func(c *config) { c.readerOpts = append(c.readerOpts, opts...) }
}

// withObserver sets the worker's observer (tests).
func withObserver(o observer) Option { return func(c *config) { c.obs = o } }

func defaultConfig() config {
	return config{
		concurrency: 1, maxLeases: 1, ackInterval: DefaultAckInterval, poll: DefaultPollInterval,
		batch: DefaultBatchSize, followWakes: true, obs: nopObserver{},
		skew: DefaultMaxSkew, keyRefresh: DefaultKeyRefresh, now: time.Now,
		retry: retry.Tail,
	}
}

// policy converts a RetryPolicy for the retry engine.
func policy(p durable.RetryPolicy) retry.Policy {
	return retry.Policy{Initial: p.Initial, Max: p.Max, Multiplier: p.Multiplier, Jitter: p.Jitter,
		MaxAttempts: p.MaxAttempts, MaxElapsed: p.MaxElapsed}
}

// WithRetry sets the schedule of a Worker's waits after a claim failed
// for a transient reason (each request is already retried with the
// Client's policy) and after a handler error: by default
// 100 ms doubling to at most 10 s, ±20 % jitter and no limit (a Reader's
// default: it never gives up). A
// bounded policy makes Run return the last error once it is spent.
func WithRetry(p durable.RetryPolicy) Option {
	return func(c *config) {
		if err := policy(p).Validate(); err != nil {
			c.errs = append(c.errs, fmt.Errorf("WithRetry: %w", err))
		}
		c.retry = policy(p)
	}
}

// newConfig applies opts to the defaults and validates the result.
func newConfig(opts []Option) (config, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o == nil {
			cfg.errs = append(cfg.errs, errors.New("nil Option"))
			continue
		}
		o(&cfg)
	}
	if len(cfg.errs) > 0 {
		return cfg, fmt.Errorf("%w: %w", durable.ErrInvalidArgument, errors.Join(cfg.errs...))
	}
	if cfg.name == "" {
		cfg.name = defaultName()
	}
	return cfg, nil
}

// WithAsync makes a Receiver answer each verified delivery at once (202)
// and work the wake in the background, acking through callbacks; by
// default it works the wake before answering and answers {"done":true}.
// Use it when handling may take longer than the server waits for an
// answer (10 s for durable serve).
func WithAsync() Option { return func(c *config) { c.async = true } }

// WithAcceptSubscriptions makes a Receiver refuse (403) verified
// deliveries of any other subscription, for a webhook URL that should
// serve only these. Default: any subscription of the server.
func WithAcceptSubscriptions(ids ...string) Option {
	return func(c *config) {
		if len(ids) == 0 {
			c.errs = append(c.errs, errors.New("WithAcceptSubscriptions: no ids"))
		}
		if c.accept == nil {
			c.accept = map[string]bool{}
		}
		for _, id := range ids {
			c.accept[id] = true
		}
	}
}

// WithMaxSkew sets how far a webhook signature's timestamp may be from
// the receiver's clock, either way (default DefaultMaxSkew). It is also
// how long a delivery is remembered to refuse its replay.
func WithMaxSkew(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.errs = append(c.errs, fmt.Errorf("WithMaxSkew(%v): must be positive", d))
		}
		c.skew = d
	}
}

// WithKeyRefresh sets the least time between two fetches of the server's
// key set caused by unknown key ids (default DefaultKeyRefresh); 0 fetches
// on every unknown key id.
func WithKeyRefresh(d time.Duration) Option {
	return func(c *config) {
		if d < 0 {
			c.errs = append(c.errs, fmt.Errorf("WithKeyRefresh(%v): negative", d))
		}
		c.keyRefresh = d
	}
}

// withClock sets the clock of signature checks (tests).
func withClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

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
