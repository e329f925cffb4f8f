package subscription

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/durablego/durable"
)

// errLeaseExpired is the local end of a lease: no ack renewed it within
// its TTL (the process stalled, or the server was unreachable), so the
// server may have handed the wake to another worker. The holder stops
// calling handlers; its final ack tells whether the server agrees.
var errLeaseExpired = errors.New("lease expired before it could be renewed")

// keeper holds one wake's lease: it records the progress of each stream,
// sends it (acks renew the lease), sends heartbeats while nothing
// progresses, and knows when the lease ends on this side (a renewal sent
// at t keeps it until t + TTL on the server, so this side's deadline is
// never later than the server's).
type keeper struct {
	s        *Subscription
	w        *Wake
	ttl      time.Duration
	interval time.Duration // ack interval; 0 = as soon as progress is made
	obs      observer

	ctx    context.Context // ends when the wake is lost, or with the run
	cancel context.CancelFunc
	kick   chan struct{}
	done   chan struct{} // closed when keep returns

	mu       sync.Mutex
	handled  map[string]durable.Offset // last ackable offset handled per stream
	acked    map[string]durable.Offset // last offset the server accepted per stream
	deadline time.Time                 // the lease's end on this side
	lastSend time.Time
	lost     error // the server's verdict (ErrFenced, ...) or errLeaseExpired
	stopping bool
}

func newKeeper(ctx context.Context, s *Subscription, w *Wake, ttl, interval time.Duration, obs observer, start time.Time) *keeper {
	k := &keeper{
		s: s, w: w, ttl: ttl, interval: interval, obs: obs,
		kick: make(chan struct{}, 1), done: make(chan struct{}),
		handled: map[string]durable.Offset{}, acked: map[string]durable.Offset{},
		deadline: start.Add(ttl), lastSend: start,
	}
	for _, l := range w.Links {
		k.acked[l.Path] = l.Acked
	}
	k.ctx, k.cancel = context.WithCancel(ctx)
	return k
}

// alive reports whether handlers may still be called: the server has not
// refused the wake and the lease has not run out on this side.
func (k *keeper) alive() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.checkDeadlineLocked()
	return k.lost == nil
}

// checkDeadlineLocked marks the lease lost once its deadline passed on
// this side, and ends the keeper's context so that reads and handlers
// stop. The final ack still goes out and tells whether the server agrees.
func (k *keeper) checkDeadlineLocked() {
	if k.lost == nil && !time.Now().Before(k.deadline) {
		k.lost = errLeaseExpired
		k.cancel()
		k.obs.expired(k.w)
	}
}

// progress records that stream was handled up to pos. Only a server
// offset can be acked: pos.Offset, the end of the last whole read (Skip 0)
// or the start of the read a message came from (Skip > 0), which is at or
// after the acked offset the stream was read from.
func (k *keeper) progress(stream string, pos durable.Position) {
	off := durable.Offset(pos.Offset)
	if off == durable.OffsetStart || off == "" {
		return
	}
	k.mu.Lock()
	if k.handled[stream] == off || k.acked[stream] == off {
		k.mu.Unlock()
		return
	}
	k.handled[stream] = off
	k.mu.Unlock()
	if k.interval == 0 {
		select {
		case k.kick <- struct{}{}:
		default:
		}
	}
}

// pending returns the progress not acked yet.
func (k *keeper) pending() []Ack {
	k.mu.Lock()
	defer k.mu.Unlock()
	var acks []Ack
	for p, off := range k.handled {
		if off != k.acked[p] {
			acks = append(acks, Ack{Stream: p, Offset: off})
		}
	}
	return acks
}

// keep acks progress every interval (at once with interval 0) and sends a
// heartbeat when a third of the TTL passed without an ack, until stop is
// called or the wake is lost. Each ack is retried on transient failures
// until the lease's deadline; one that still failed is tried again at the
// next beat, as long as the lease lasts.
func (k *keeper) keep() {
	defer close(k.done)
	beat := max(k.ttl/3, 10*time.Millisecond)
	k.mu.Lock()
	first := beat - time.Since(k.lastSend) // the lease may have begun a while ago (webhook)
	k.mu.Unlock()
	t := time.NewTimer(max(first, 0))
	defer t.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-k.kick:
		case <-t.C:
		}
		k.mu.Lock()
		k.checkDeadlineLocked()
		stopping, since := k.stopping || k.lost != nil, time.Since(k.lastSend)
		k.mu.Unlock()
		if stopping {
			return
		}
		acks := k.pending()
		if len(acks) > 0 && since >= k.interval || since >= beat {
			// Transient failures are retried (the Client's policy) while
			// the lease lasts, no longer.
			k.mu.Lock()
			ctx, cancel := context.WithDeadline(k.ctx, k.deadline)
			k.mu.Unlock()
			k.send(ctx, false, acks)
			cancel()
		}
		k.mu.Lock()
		next := min(beat-time.Since(k.lastSend), time.Until(k.deadline))
		if len(k.handled) > 0 && k.interval > 0 {
			next = min(next, k.interval-time.Since(k.lastSend))
		}
		k.mu.Unlock()
		t.Reset(max(next, time.Millisecond))
	}
}

// send sends one ack (a heartbeat when acks is empty) and applies the
// answer: a success moves the acked offsets and the deadline; a verdict
// that the wake is gone marks it lost and ends the keeper's context.
func (k *keeper) send(ctx context.Context, done bool, acks []Ack) (bool, error) {
	k.mu.Lock()
	if k.lost != nil && k.lost != errLeaseExpired {
		err := k.lost
		k.mu.Unlock()
		return false, err
	}
	k.mu.Unlock()
	sent := time.Now()
	next, err := k.s.Ack(ctx, k.w, done, acks...)
	for _, a := range acks { // an ack is the subscription's commit: the Client's commit hooks see it
		k.s.l.Commit(a.Stream, k.s.id, string(a.Offset), time.Since(sent), err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lastSend = sent
	if err != nil {
		if IsLost(err) {
			k.lost = err
			k.cancel()
			k.obs.lost(k.w, err)
		}
		return false, err
	}
	for _, a := range acks {
		k.acked[a.Stream] = a.Offset
	}
	if k.lost == nil {
		k.deadline = sent.Add(k.ttl)
	}
	k.obs.acked(k.w, acks, done)
	return next, nil
}

// stop ends the keep loop and waits for it.
func (k *keeper) stop() {
	k.mu.Lock()
	k.stopping = true
	k.mu.Unlock()
	select {
	case k.kick <- struct{}{}:
	default:
	}
	<-k.done
}

// lostErr returns why the wake was lost, or nil.
func (k *keeper) lostErr() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lost
}
