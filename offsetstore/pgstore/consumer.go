package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
)

// Handler handles one message inside tx. Its writes commit together with
// the message's position, or not at all. It must use ctx, which is
// cancelled when the Consumer's lease is lost, and must not commit or roll
// back tx itself.
type Handler[T any] func(ctx context.Context, tx pgx.Tx, msg durable.Message[T]) error

// ConsumerOption configures NewConsumer.
type ConsumerOption func(*consumerConfig)

type consumerConfig struct {
	readerOpts []durable.Option
	exclusive  bool
	leaseOpts  []LeaseOption
}

// WithReaderOptions passes options to the Consumer's Readers. Messages are
// decoded as JSON into T (for T []byte: the bytes of each message as they
// are). The Consumer sets the store, the key and manual commit itself: do
// not pass WithStore, WithKey, WithCommitInterval or WithManualCommit.
func WithReaderOptions(opts ...durable.Option) ConsumerOption {
	return func(c *consumerConfig) { c.readerOpts = append(c.readerOpts, opts...) }
}

// WithExclusive makes the Consumer hold the lease on its key while it
// reads: of all Consumers with the same key (on any machine) exactly one
// reads at a time, and its commits are fenced by the lease. opts configure
// the lease (TTL, holder name, events).
func WithExclusive(opts ...LeaseOption) ConsumerOption {
	return func(c *consumerConfig) { c.exclusive, c.leaseOpts = true, append(c.leaseOpts, opts...) }
}

// Consumer tails a stream and handles each message in a Postgres
// transaction that also writes the message's position, so the handler's
// writes and the position commit together: a message whose transaction
// committed is never delivered again, one whose transaction rolled back is
// delivered again. Its Reader learns of a commit only once the
// transaction has committed.
//
// With WithExclusive it first waits for the lease on its key, opens a
// Reader on the position the table holds then, and stops delivering the
// moment the lease is lost: the context given to the handler is
// cancelled, the transaction's position write is rejected with ErrFenced,
// and the next Handle waits for the lease again and reopens the Reader
// from the table. Without it, run one Consumer per key: two Consumers on
// one key without the lease may both apply a message (positions of two
// Readers need not compare).
//
// Handle, Run and Close must be called from one goroutine at a time (to
// stop a Run from elsewhere, cancel its context, then Close); Committed
// may be called from any. Close a Consumer you are done with: its lease
// is renewed (and other replicas kept waiting) until Close or the end of
// the process.
type Consumer[T any] struct {
	s      *Store
	client *durable.Client
	stream string
	key    string
	cfg    consumerConfig

	r     *durable.Reader[T]
	lease *Lease
	held  *durable.Message[T] // delivered, its transaction not committed: delivered again

	mu        sync.Mutex
	committed offsetstore.Position // the last position committed in a transaction
	hasCommit bool
	closed    bool
}

// NewConsumer returns a Consumer of stream (as durable.NewReader takes it)
// that keeps its position in s under key. It sends no request: the first
// Handle does.
func NewConsumer[T any](s *Store, client *durable.Client, stream, key string, opts ...ConsumerOption) (*Consumer[T], error) {
	if s == nil || client == nil {
		return nil, &Error{Op: "consumer", Key: key, Err: fmt.Errorf("%w: nil Store or Client", errInvalid)}
	}
	if err := validateKey("key", key); err != nil {
		return nil, &Error{Op: "consumer", Key: key, Err: err}
	}
	c := &Consumer[T]{s: s, client: client, stream: stream, key: key}
	for _, o := range opts {
		if o == nil {
			return nil, &Error{Op: "consumer", Key: key, Err: fmt.Errorf("%w: nil ConsumerOption", errInvalid)}
		}
		o(&c.cfg)
	}
	if c.cfg.exclusive {
		if _, err := newLeaseConfig(c.cfg.leaseOpts); err != nil {
			return nil, &Error{Op: "consumer", Key: key, Err: err}
		}
	}
	// Check the Reader options now rather than at the first Handle.
	r, err := c.newReader()
	if err != nil {
		return nil, err
	}
	_ = r.Close(context.Background())
	return c, nil
}

func (c *Consumer[T]) newReader() (*durable.Reader[T], error) {
	opts := append(append([]durable.Option(nil), c.cfg.readerOpts...),
		durable.WithStore(consumerStore[T]{c}), durable.WithKey(c.key), durable.WithManualCommit())
	return durable.NewReader(c.client, c.stream, codecOf[T](), opts...)
}

// codecOf is the codec of the Consumer's Readers: the bytes of each
// message as they are for T []byte, JSON for any other T.
func codecOf[T any]() durable.Codec[T] {
	if c, ok := any(durable.BytesCodec{}).(durable.Codec[T]); ok {
		return c
	}
	return durable.JSONCodec[T]{}
}

// consumerStore is the Reader's store: it loads from the table and takes
// a save of a position already committed in a transaction as done, so
// that telling the Reader of a commit (Commit) costs no query. A
// later position (which the Consumer never asks for) is saved, fenced by
// the lease if there is one.
type consumerStore[T any] struct{ c *Consumer[T] }

func (cs consumerStore[T]) Load(ctx context.Context, key string) (offsetstore.Position, bool, error) {
	return cs.c.s.Load(ctx, key)
}

func (cs consumerStore[T]) Save(ctx context.Context, key string, pos offsetstore.Position) error {
	if p, ok := cs.c.Committed(); ok && key == cs.c.key && pos.Compare(p) <= 0 {
		return nil
	}
	if l := cs.c.lease; l != nil {
		return l.Store().Save(ctx, key, pos)
	}
	return cs.c.s.Save(ctx, key, pos)
}

// Committed returns the last position committed by a handler's
// transaction; ok is false before the first.
func (c *Consumer[T]) Committed() (pos offsetstore.Position, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.committed, c.hasCommit
}

// Lease returns the lease the Consumer holds (WithExclusive), or nil.
func (c *Consumer[T]) Lease() *Lease { return c.lease }

// Handle waits for the next message (for WithExclusive, first for the
// lease), runs h with it in a new transaction, writes the message's
// position in that transaction and commits it. It returns nil once the
// transaction committed, or when it finds the message was committed
// before (a commit whose acknowledgement was lost: the handler's second
// transaction is rolled back). When h fails, or the commit does, the
// transaction is rolled back, the error returned, and the next Handle
// delivers the same message again. With WithExclusive a lost lease ends
// Handle with an error wrapping ErrLeaseLost or ErrFenced; the next Handle
// waits for the lease again. The end of the stream is io.EOF and, in live
// mode none, durable.ErrCaughtUp, as from Reader.Next.
func (c *Consumer[T]) Handle(ctx context.Context, h Handler[T]) error {
	if c.isClosed() {
		return durable.ErrClosed
	}
	if err := c.ready(ctx); err != nil {
		return err
	}
	work, stop := ctx, func() bool { return false }
	if c.lease != nil {
		var cancel context.CancelFunc
		work, cancel = context.WithCancel(ctx)
		defer cancel()
		stop = context.AfterFunc(c.lease.Context(), cancel)
	}
	defer stop()
	if c.held == nil {
		msg, err := c.r.Next(work)
		if err != nil {
			return c.failed(err)
		}
		c.held = &msg
	}
	if c.lease != nil && !c.lease.Held() {
		// The lease ran out while Next waited: not a message more.
		return c.failed(nil)
	}
	return c.handleTx(ctx, work, h, *c.held)
}

// failed returns err, the error of a step of Handle. When the lease was
// lost meanwhile, that is the error to report whatever the step's own was
// (a query cancelled with the lease's context, a database gone): it is
// joined to err so that Run waits for the lease again, and the Consumer
// drops its Reader and the lost lease. A nil err with the lease lost
// returns the lease's error alone.
func (c *Consumer[T]) failed(err error) error {
	if c.lease == nil || c.lease.Held() {
		return err
	}
	lost := c.leaseErr()
	c.teardown()
	if err == nil {
		return lost
	}
	return errors.Join(err, lost)
}

// ready makes sure the Consumer holds its lease (WithExclusive) and has a
// Reader opened after the lease was taken.
func (c *Consumer[T]) ready(ctx context.Context) error {
	if c.cfg.exclusive && (c.lease == nil || !c.lease.Held()) {
		c.teardown()
		l, err := c.s.AcquireLease(ctx, c.key, c.cfg.leaseOpts...)
		if err != nil {
			return err
		}
		c.lease = l
	}
	if c.r == nil {
		r, err := c.newReader()
		if err != nil {
			return err
		}
		c.r = r
	}
	return nil
}

// handleTx runs h and the position write in one transaction. The
// handler and the position write run in work (cancelled when the lease is
// lost); the commit runs in ctx, as the lease row is locked by then.
func (c *Consumer[T]) handleTx(ctx, work context.Context, h Handler[T], msg durable.Message[T]) error {
	tx, err := c.s.pool.Begin(work)
	if err != nil {
		return c.failed(wrap("commit", c.key, err))
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := h(work, tx, msg); err != nil {
		return c.failed(err)
	}
	if c.lease != nil {
		err = c.lease.commitTx(work, tx, c.key, msg.Position)
	} else {
		err = c.s.CommitTx(work, tx, c.key, msg.Position)
	}
	switch {
	case errors.Is(err, ErrAlreadyCommitted):
		// Committed before (its acknowledgement was lost): this transaction
		// rolls back and the message counts as handled.
	case errors.Is(err, ErrFenced):
		// The database says the lease is gone, whatever the local clock
		// says: stop acting on it.
		if c.lease != nil {
			c.lease.lose(time.Now(), err)
		}
		c.teardown()
		return err
	case err != nil:
		return c.failed(err)
	default:
		if err := tx.Commit(ctx); err != nil {
			return c.failed(wrap("commit", c.key, err))
		}
	}
	c.mu.Lock()
	c.committed, c.hasCommit = msg.Position, true
	c.mu.Unlock()
	c.held = nil
	// Tell the Reader: consumerStore takes the save as done.
	return c.r.Commit(ctx, msg.Position)
}

func (c *Consumer[T]) leaseErr() error {
	if c.lease == nil {
		return &Error{Op: "consume", Key: c.key, Err: ErrLeaseLost}
	}
	return c.lease.Err()
}

// teardown closes the Reader and forgets the held message (a new Reader
// delivers it again from the table's position) and the lost lease.
func (c *Consumer[T]) teardown() {
	if c.r != nil {
		_ = c.r.Close(context.Background()) // manual commit: Close saves nothing
		c.r = nil
	}
	c.held = nil
	if c.lease != nil && !c.lease.Held() {
		_ = c.lease.Release(context.Background()) // stops its goroutine; expires nothing it no longer holds
		c.lease = nil
	}
}

// Run calls Handle until ctx ends (it returns ctx's error), the stream ends
// (nil) or an error that waiting cannot cure. A lost lease is waited for
// again, and transient database errors (IsTransient: the database down or
// restarting, a serialisation failure) are retried with exponential
// backoff (up to 5 s between tries), for the handler's errors too; any
// other handler error ends Run (the message is delivered again by the next
// Run). A message that does not decode ends Run with its *durable.DecodeError;
// a later Run passes over it, as Reader.Next does.
func (c *Consumer[T]) Run(ctx context.Context, h Handler[T]) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = 50*time.Millisecond, 5*time.Second, 0
	for {
		err := c.Handle(ctx, h)
		switch {
		case err == nil:
			bo.Reset()
			continue
		case errors.Is(err, io.EOF) || errors.Is(err, durable.ErrCaughtUp):
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrFenced):
			continue
		case !IsTransient(err):
			return err
		}
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes the Reader and releases the lease (so that another replica
// takes over within its poll interval). A message delivered but not
// committed is delivered again by the next holder.
func (c *Consumer[T]) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	var err error
	if c.r != nil {
		err = c.r.Close(ctx)
		c.r = nil
	}
	if c.lease != nil {
		err = errors.Join(err, c.lease.Release(ctx))
		c.lease = nil
	}
	return err
}

func (c *Consumer[T]) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
