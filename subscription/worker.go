package subscription

import (
	"context"
	"fmt"
	"sync"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/link"
)

// Worker works one pull-wake subscription (or a set of shards, see
// WithShards) in this process, alongside any number of Workers of the same
// subscription in other processes: the server hands the lease to one of
// them at a time. A Worker holds WithMaxLeases leases at once (one by
// default, so that shards spread over the workers) and claims only with a
// free WithConcurrency slot.
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
	l    link.Client
	subs []*Subscription
	cfg  config
	eng  *engine[T]
	st   stats
	// leases bounds the leases held at once (WithMaxLeases).
	leases *capacity

	mu      sync.Mutex
	running bool
}

// NewWorker returns a Worker of subscription id (a pull-wake
// subscription) calling h with each message. It sends no request: Run
// does. Invalid options are an error wrapping durable.ErrInvalidArgument.
func NewWorker[T any](c *durable.Client, id string, h Handler[T], opts ...Option) (*Worker[T], error) {
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
func NewBatchWorker[T any](c *durable.Client, id string, h BatchHandler[T], opts ...Option) (*Worker[T], error) {
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

func newWorker[T any](c *durable.Client, id string, opts []Option) (*Worker[T], error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil Client", durable.ErrInvalidArgument)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	ids := []string{id}
	if cfg.shards > 0 {
		ids = Sharding{ID: id, N: cfg.shards}.IDs()
	}
	l, err := clientLink(c)
	if err != nil {
		return nil, err
	}
	w := &Worker[T]{c: c, l: l, cfg: cfg, leases: newCapacity(cfg.maxLeases)}
	for _, id := range ids {
		s, err := Open(c, id)
		if err != nil {
			return nil, err
		}
		w.subs = append(w.subs, s)
	}
	w.eng = newEngine[T](c, l, &cfg, &w.st)
	w.eng.releaseOnError = true
	return w, nil
}

// Name returns the worker name sent with claims.
func (w *Worker[T]) Name() string { return w.cfg.name }

// Stats returns what the Worker did so far.
func (w *Worker[T]) Stats() WorkerStats { return w.st.snapshot() }
