package hostile

import (
	"net/http"
	"sync"
	"sync/atomic"
)

// Request is one request as a hostile server received it.
type Request struct {
	Method string
	URL    string      // path and query as sent (RequestURI)
	Host   string      // the Host header
	Header http.Header // a copy of the request headers
}

// Recorder keeps the most recent requests a server received, up to a fixed
// limit, and counts all of them. It is safe for concurrent use.
type Recorder struct {
	sent atomic.Int64 // body bytes written by handlers (hijacked connections excepted)

	mu    sync.Mutex
	limit int
	ring  []Request // oldest first once trimmed
	total int
}

func newRecorder(limit int) *Recorder {
	return &Recorder{limit: max(limit, 1)}
}

func (r *Recorder) record(req *http.Request) {
	rec := Request{
		Method: req.Method,
		URL:    req.URL.RequestURI(),
		Host:   req.Host,
		Header: req.Header.Clone(),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.total++
	if len(r.ring) == r.limit {
		copy(r.ring, r.ring[1:])
		r.ring = r.ring[:len(r.ring)-1]
	}
	r.ring = append(r.ring, rec)
}

// Requests returns the retained requests, oldest first (at most the
// history limit given with WithHistory).
func (r *Recorder) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Request, len(r.ring))
	copy(out, r.ring)
	return out
}

// Sent returns how many body bytes the server's handlers have written so
// far (through the ResponseWriter; not what a hijacked connection sends).
// A test can tell a slow read from a stuck one by watching it grow.
func (r *Recorder) Sent() int64 { return r.sent.Load() }

// Total returns how many requests were received, retained or not.
func (r *Recorder) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// Last returns the most recent request, if any.
func (r *Recorder) Last() (Request, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ring) == 0 {
		return Request{}, false
	}
	return r.ring[len(r.ring)-1], true
}

// HeaderSeen reports whether any retained request carried the header name
// (case-insensitive), whatever its value.
func (r *Recorder) HeaderSeen(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, req := range r.ring {
		if _, ok := req.Header[http.CanonicalHeaderKey(name)]; ok {
			return true
		}
	}
	return false
}
