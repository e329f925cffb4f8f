package pgstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/durablego/durable/offsetstore"
)

// DefaultLeaseTTL is how long a lease lasts without renewal unless
// WithLeaseTTL says otherwise. It bounds the takeover time after a holder
// dies without releasing its lease.
const DefaultLeaseTTL = 10 * time.Second

// LeaseOption configures AcquireLease (and a Consumer's lease).
type LeaseOption func(*leaseConfig)

type leaseConfig struct {
	ttl    time.Duration
	holder string
	poll   time.Duration
	events func(LeaseEvent)
}

// WithLeaseTTL sets how long the lease lasts without renewal: the holder
// renews it every TTL/3, and another replica takes over at most TTL (plus
// one poll interval) after the holder died. Must be at least 100 ms.
// Default: DefaultLeaseTTL.
func WithLeaseTTL(ttl time.Duration) LeaseOption { return func(c *leaseConfig) { c.ttl = ttl } }

// WithLeasePoll sets how often a replica waiting for the lease tries to
// take it. Must be > 0. Default: TTL/10.
func WithLeasePoll(d time.Duration) LeaseOption { return func(c *leaseConfig) { c.poll = d } }

// WithHolder names the holder in the lease row (for operators; fencing
// uses the token only). Default: "hostname:pid".
func WithHolder(name string) LeaseOption { return func(c *leaseConfig) { c.holder = name } }

// WithLeaseEvents sets a function called (synchronously, from the
// goroutine that saw it) for every change of a lease: acquired, lost,
// released.
func WithLeaseEvents(fn func(LeaseEvent)) LeaseOption {
	return func(c *leaseConfig) { c.events = fn }
}

func newLeaseConfig(opts []LeaseOption) (leaseConfig, error) {
	host, _ := os.Hostname()
	c := leaseConfig{ttl: DefaultLeaseTTL, holder: host + ":" + strconv.Itoa(os.Getpid())}
	for _, o := range opts {
		if o == nil {
			return c, fmt.Errorf("%w: nil LeaseOption", errInvalid)
		}
		o(&c)
	}
	if c.ttl < 100*time.Millisecond {
		return c, fmt.Errorf("%w: lease TTL %v is under 100ms", errInvalid, c.ttl)
	}
	if c.poll == 0 {
		c.poll = c.ttl / 10
	}
	if c.poll < 0 {
		return c, fmt.Errorf("%w: negative lease poll interval", errInvalid)
	}
	if err := validateKey("holder", c.holder); err != nil {
		return c, err
	}
	return c, nil
}

// LeaseEventKind says what happened to a lease.
type LeaseEventKind int

// Lease event kinds.
const (
	LeaseAcquired LeaseEventKind = iota + 1 // the lease was taken with a new token
	LeaseLost                               // the lease expired or was taken over while held
	LeaseReleased                           // the holder released it (Release)
)

// String returns "acquired", "lost" or "released".
func (k LeaseEventKind) String() string {
	switch k {
	case LeaseAcquired:
		return "acquired"
	case LeaseLost:
		return "lost"
	case LeaseReleased:
		return "released"
	}
	return "LeaseEventKind(" + strconv.Itoa(int(k)) + ")"
}

// LeaseEvent is one change of a lease, for WithLeaseEvents.
type LeaseEvent struct {
	Kind   LeaseEventKind
	Key    string
	Holder string
	Token  int64
	Time   time.Time // LeaseAcquired: just after the database granted it; LeaseLost, LeaseReleased: when the holder stopped acting on it (for a lease that ran out, the end of its TTL)
	Err    error     // LeaseLost: why
}

// Fence names a lease by key and fencing token. A write fenced by it is
// applied only while the lease row still holds that token and has not
// expired.
type Fence struct {
	Key   string
	Token int64
}

// Lease is a held lease on a key: while it is held no other replica holds
// the same key, and every write fenced by it (CommitTx, Store) is rejected
// with ErrFenced once it is lost. A goroutine renews it every TTL/3 until
// Release; it is lost when a renewal finds it taken over or when no
// renewal succeeded within TTL of the last good one (the database down, for
// instance). The lease ends on the holder's side the moment the TTL runs
// out, before the row expires on the database's side, so the holder has
// stopped before anyone can take over.
//
// Renewals take a connection from the Store's pool: size the pool so that
// one is free for them while handlers hold theirs (a Consumer holds at most
// one at a time), or a renewal that waits for a connection past the TTL
// loses the lease.
type Lease struct {
	s        *Store
	cfg      leaseConfig
	key      string
	token    int64
	ctx      context.Context
	cancel   context.CancelCauseFunc
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu       sync.Mutex
	deadline time.Time // the lease is valid strictly before it (local monotonic clock)
	ended    bool
}

// AcquireLease waits until it holds the lease on key and returns it. It
// tries at once, then every poll interval (WithLeasePoll) while another
// replica holds it, and retries transient database errors at the same
// pace; it fails on ctx's end or a permanent error (ErrSchema,
// ErrPermission).
func (s *Store) AcquireLease(ctx context.Context, key string, opts ...LeaseOption) (*Lease, error) {
	cfg, err := newLeaseConfig(opts)
	if err == nil {
		err = validateKey("key", key)
	}
	if err != nil {
		return nil, &Error{Op: "acquire lease", Key: key, Err: err}
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, &Error{Op: "acquire lease", Key: key, Err: context.Cause(ctx)}
		case <-t.C:
		}
		l, err := s.tryAcquire(ctx, key, cfg)
		if l != nil {
			return l, nil
		}
		if err != nil && !IsTransient(err) {
			return nil, err
		}
		t.Reset(cfg.poll)
	}
}

// TryAcquireLease takes the lease on key if nobody holds it; it returns a
// nil Lease (and a nil error) when another replica holds it.
func (s *Store) TryAcquireLease(ctx context.Context, key string, opts ...LeaseOption) (*Lease, error) {
	cfg, err := newLeaseConfig(opts)
	if err == nil {
		err = validateKey("key", key)
	}
	if err != nil {
		return nil, &Error{Op: "acquire lease", Key: key, Err: err}
	}
	return s.tryAcquire(ctx, key, cfg)
}

func (s *Store) tryAcquire(ctx context.Context, key string, cfg leaseConfig) (*Lease, error) {
	start := time.Now()
	var token int64
	err := s.pool.QueryRow(ctx, s.sql.acquire, key, cfg.holder, cfg.ttl.Seconds()).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("acquire lease", key, err)
	}
	l := &Lease{s: s, cfg: cfg, key: key, token: token, deadline: start.Add(cfg.ttl),
		stop: make(chan struct{}), done: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	l.event(LeaseAcquired, time.Now(), nil)
	go l.renewLoop()
	return l, nil
}

func (l *Lease) event(kind LeaseEventKind, at time.Time, err error) {
	if l.cfg.events != nil {
		l.cfg.events(LeaseEvent{Kind: kind, Key: l.key, Holder: l.cfg.holder, Token: l.token, Time: at, Err: err})
	}
}

// Key returns the leased key.
func (l *Lease) Key() string { return l.key }

// Token returns the fencing token: every acquisition of a key gets a
// greater one than the acquisition before.
func (l *Lease) Token() int64 { return l.token }

// Fence returns the lease's key and token.
func (l *Lease) Fence() Fence { return Fence{Key: l.key, Token: l.token} }

// Context returns a context that is cancelled the moment the lease is lost
// or released; context.Cause then says which (an error wrapping
// ErrLeaseLost). Run the work done under the lease in it.
func (l *Lease) Context() context.Context { return l.ctx }

// Held reports whether the lease is still held: not released, not found
// lost, and its TTL not run out on the local clock.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.ended && time.Now().Before(l.deadline)
}

// Err returns nil while the lease is held, and why it ended after.
func (l *Lease) Err() error {
	if l.Held() {
		return nil
	}
	if err := context.Cause(l.ctx); err != nil {
		return err
	}
	return &Error{Op: "renew lease", Key: l.key, Err: fmt.Errorf("%w: TTL ran out (token %d)", ErrLeaseLost, l.token)}
}

// renewLoop renews the lease every TTL/3, retries failed renewals every
// TTL/10, and ends the lease when the TTL runs out without a good renewal
// or when a renewal finds the lease taken over.
func (l *Lease) renewLoop() {
	defer close(l.done)
	every, retry := l.cfg.ttl/3, l.cfg.ttl/10
	next := time.NewTimer(every)
	defer next.Stop()
	for {
		l.mu.Lock()
		deadline := l.deadline
		l.mu.Unlock()
		expire := time.NewTimer(time.Until(deadline))
		select {
		case <-l.stop:
			expire.Stop()
			return
		case <-expire.C:
			l.lose(deadline, fmt.Errorf("%w: not renewed within its TTL of %v (token %d)", ErrLeaseLost, l.cfg.ttl, l.token))
			return
		case <-next.C:
			expire.Stop()
		}
		start := time.Now()
		ctx, cancel := context.WithDeadline(l.ctx, deadline)
		var one int
		err := l.s.pool.QueryRow(ctx, l.s.sql.renew, l.key, l.token, l.cfg.ttl.Seconds()).Scan(&one)
		cancel()
		switch {
		case err == nil:
			l.mu.Lock()
			l.deadline = start.Add(l.cfg.ttl)
			l.mu.Unlock()
			next.Reset(every)
		case errors.Is(err, pgx.ErrNoRows):
			l.lose(time.Now(), fmt.Errorf("%w: taken over or expired (token %d)", ErrLeaseLost, l.token))
			return
		default:
			next.Reset(retry)
		}
	}
}

// lose ends the lease as lost; at is when it stopped being held (the end
// of its TTL, when that is why). A lease is never held past its TTL, so a
// later at (a loss noticed late, by a commit that found the TTL run out)
// is reported as the end of the TTL.
func (l *Lease) lose(at time.Time, cause error) {
	l.mu.Lock()
	if l.ended {
		l.mu.Unlock()
		return
	}
	l.ended = true
	if at.After(l.deadline) {
		at = l.deadline
	}
	l.mu.Unlock()
	err := &Error{Op: "renew lease", Key: l.key, Err: cause}
	l.cancel(err)
	l.event(LeaseLost, at, err)
}

// Release stops renewing and expires the lease row at once, so that a
// waiting replica takes over within its poll interval. It is safe to call
// more than once and after the lease was lost. The row is expired only if
// it still holds this lease's token.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	was := l.ended
	l.ended = true
	l.mu.Unlock()
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	if was {
		return nil
	}
	l.cancel(&Error{Op: "release lease", Key: l.key, Err: fmt.Errorf("%w: released (token %d)", ErrLeaseLost, l.token)})
	// The holder has stopped: report it before another replica can start.
	l.event(LeaseReleased, time.Now(), nil)
	_, err := l.s.pool.Exec(ctx, l.s.sql.expire, l.key, l.token)
	return wrap("release lease", l.key, err)
}

// CommitTx is Store.CommitTx fenced by the lease: pos is written for the
// lease's key in tx only if the lease is still held, and the lease row
// stays locked (FOR SHARE) until tx ends, so no replica can take over
// between the check and the commit. It fails with ErrFenced when the lease
// was lost (roll tx back: nothing it did may be applied) and with
// ErrAlreadyCommitted as Store.CommitTx does.
func (l *Lease) CommitTx(ctx context.Context, tx pgx.Tx, pos offsetstore.Position) error {
	return l.commitTx(ctx, tx, l.key, pos)
}

func (l *Lease) commitTx(ctx context.Context, tx pgx.Tx, key string, pos offsetstore.Position) error {
	if !l.Held() {
		return &Error{Op: "commit", Key: key, Err: fmt.Errorf("%w: %w", ErrFenced, l.Err())}
	}
	f := l.Fence()
	_, err := l.s.save(ctx, tx, "commit", key, pos, &f, true)
	return err
}

// Store returns an offsetstore.Store whose saves are fenced by the lease
// (Save fails with ErrFenced once it is lost), for a Reader that commits
// on its own (durable.WithStore) while this replica holds the lease. Loads
// read the table as Store.Load does.
func (l *Lease) Store() offsetstore.Store { return fencedStore{l} }

type fencedStore struct{ l *Lease }

func (f fencedStore) Load(ctx context.Context, key string) (offsetstore.Position, bool, error) {
	return f.l.s.Load(ctx, key)
}

func (f fencedStore) Save(ctx context.Context, key string, pos offsetstore.Position) error {
	if !f.l.Held() {
		return &Error{Op: "save", Key: key, Err: fmt.Errorf("%w: %w", ErrFenced, f.l.Err())}
	}
	fence := f.l.Fence()
	_, err := f.l.s.save(ctx, f.l.s.pool, "save", key, pos, &fence, false)
	return err
}

// checkFence returns an error wrapping ErrFenced unless f is the current,
// unexpired lease.
func (s *Store) checkFence(ctx context.Context, db querier, f Fence) error {
	var token int64
	var valid bool
	err := db.QueryRow(ctx, s.sql.fence, f.Key).Scan(&token, &valid)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("%w: no lease row for %s", ErrFenced, quoteKey(f.Key))
	case err != nil:
		return err
	case token != f.Token:
		return fmt.Errorf("%w: token %d was taken over (the lease is at token %d)", ErrFenced, f.Token, token)
	case !valid:
		return fmt.Errorf("%w: lease with token %d expired", ErrFenced, f.Token)
	}
	return nil
}
