package testserver

import (
	"net/http"
	"sync"
	"time"
)

// Pipelined producer requests.
//
// A producer may have several appends in flight (Producer-Seq n, n+1, ...),
// each on its own connection. They are handled concurrently, so request
// n+1 can reach validation before request n even though n was sent first,
// and a strict server answers it with a sequence gap (409) that the client
// must resend. PROTOCOL.md §5.2 asks servers to serialize each producer's
// validation and append so that requests arriving out of order do not cause
// false gaps. This server does that for requests it is already handling:
// a request whose sequence number is ahead of the producer's state waits
// for the request carrying the expected number, if one is in progress on
// the server, and is then validated as usual. Requests before it that
// have not reached the server yet (sent on another connection a moment
// earlier) are given a short grace (WithProducerOrdering's grace, default
// DefaultOrderGrace) to land. A gap that is still there after that, or
// whose predecessor takes longer than orderWait, is answered with 409.

// orderWait bounds how long a request waits for one predecessor being
// handled, and maxOrderWaits how many times in a row a request waits (each
// wait ends when a predecessor is answered, the stream changes, or the
// grace ends; the request is validated again after each).
const (
	orderWait     = 5 * time.Second
	maxOrderWaits = 1024
)

// seqKey identifies one producer request.
type seqKey struct {
	path, id   string
	epoch, seq int64
}

// seqTracker records the producer requests being handled.
type seqTracker struct {
	mu     sync.Mutex
	active map[seqKey]chan struct{} // closed when that request has been answered
}

// arrive registers a request; the returned func unregisters it. A second
// request with the same key (a retry while the first is still handled) is
// not registered.
func (t *seqTracker) arrive(k seqKey) func() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, dup := t.active[k]; dup {
		return func() {}
	}
	if t.active == nil {
		t.active = map[seqKey]chan struct{}{}
	}
	ch := make(chan struct{})
	t.active[k] = ch
	return func() {
		t.mu.Lock()
		if t.active[k] == ch {
			delete(t.active, k)
		}
		t.mu.Unlock()
		close(ch)
	}
}

// inProgress returns the done channel of the request with key k, or nil.
func (t *seqTracker) inProgress(k seqKey) chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active[k]
}

// awaitPredecessor waits, outside s.mu, until the request before this
// one has been answered (ch, if it is being handled: up to orderWait), or
// else until the stream changes (wake) or graceEnd passes. It reports false
// if the client went away or the server is closing.
func (s *Server) awaitPredecessor(r *http.Request, ch, wake chan struct{}, graceEnd time.Time) bool {
	d := time.Until(graceEnd)
	if ch != nil {
		d = orderWait
	}
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ch: // nil: never
	case <-wake:
	case <-t.C:
	case <-r.Context().Done():
		return false
	case <-s.baseCtx.Done():
		return false
	}
	return true
}
