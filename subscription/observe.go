package subscription

import (
	"log/slog"
	"sync/atomic"
)

// observer sees what a worker does with its wakes.
type observer interface {
	claimed(w *Wake)
	acked(w *Wake, acks []Ack, done bool)
	lost(w *Wake, err error)              // the server refused the wake (fenced, token, deleted)
	expired(w *Wake)                      // the lease ran out on this side
	failed(w *Wake, op string, err error) // a request or read failed; the wake goes on or ends
}

// nopObserver observes nothing.
type nopObserver struct{}

func (nopObserver) claimed(*Wake)               {}
func (nopObserver) acked(*Wake, []Ack, bool)    {}
func (nopObserver) lost(*Wake, error)           {}
func (nopObserver) expired(*Wake)               {}
func (nopObserver) failed(*Wake, string, error) {}

// stats are a worker's counters.
type stats struct {
	wakes, handled, acks, releases, fenced, expired, handlerErrors atomic.Int64
}

// WorkerStats counts what a Worker (or Receiver) did.
type WorkerStats struct {
	Wakes         int64 // wakes worked (claimed, or delivered by webhook)
	Handled       int64 // messages handled (the handler returned nil)
	Acks          int64 // acks and heartbeats the server accepted
	Releases      int64 // leases released after a handler error or on shutdown
	Fenced        int64 // wakes the server refused (fenced, token refused, deleted)
	Expired       int64 // leases that ran out on this side before a renewal
	HandlerErrors int64 // handler errors and messages that did not decode
}

func (s *stats) snapshot() WorkerStats {
	return WorkerStats{
		Wakes: s.wakes.Load(), Handled: s.handled.Load(), Acks: s.acks.Load(), Releases: s.releases.Load(),
		Fenced: s.fenced.Load(), Expired: s.expired.Load(), HandlerErrors: s.handlerErrors.Load(),
	}
}

// counting wraps an observer and counts into stats.
type counting struct {
	next  observer
	stats *stats
}

func (o counting) claimed(w *Wake) { o.stats.wakes.Add(1); o.next.claimed(w) }
func (o counting) acked(w *Wake, acks []Ack, done bool) {
	o.stats.acks.Add(1)
	o.next.acked(w, acks, done)
}
func (o counting) lost(w *Wake, err error) { o.stats.fenced.Add(1); o.next.lost(w, err) }
func (o counting) expired(w *Wake)         { o.stats.expired.Add(1); o.next.expired(w) }
func (o counting) failed(w *Wake, op string, err error) {
	o.next.failed(w, op, err)
}

// logging logs a worker's events through the Client's logger (silent
// unless the Client was given one). Wakes are named by subscription, id
// and generation; their token never appears.
type logging struct {
	next observer
	log  *slog.Logger
}

func wakeAttrs(w *Wake) []any {
	if w == nil {
		return nil
	}
	return []any{"subscription", w.Subscription, "wake", w.ID, "generation", w.Generation}
}

func (o logging) claimed(w *Wake) {
	o.log.Debug("subscription: wake", append(wakeAttrs(w), "pending", len(w.Pending()))...)
	o.next.claimed(w)
}

func (o logging) acked(w *Wake, acks []Ack, done bool) {
	o.log.Debug("subscription: acked", append(wakeAttrs(w), "streams", len(acks), "done", done)...)
	o.next.acked(w, acks, done)
}

func (o logging) lost(w *Wake, err error) {
	o.log.Info("subscription: wake lost, its streams are left alone", append(wakeAttrs(w), "error", err)...)
	o.next.lost(w, err)
}

func (o logging) expired(w *Wake) {
	o.log.Warn("subscription: lease ran out before it could be renewed", wakeAttrs(w)...)
	o.next.expired(w)
}

func (o logging) failed(w *Wake, op string, err error) {
	o.log.Warn("subscription: "+op+" failed", append(wakeAttrs(w), "error", err)...)
	o.next.failed(w, op, err)
}
