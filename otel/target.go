package durableotel

import (
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// target is the stream a Reader or a Writer works on, as attributes: its
// path (messaging.destination.name) and its server, never the URL's
// userinfo or query, which may hold credentials. The attribute sets of the
// common outcomes are made once.
type target struct {
	path string
	host string
	port int

	dest    attribute.Set // messaging.system, messaging.destination.name, server.address, server.port
	send    attribute.Set // dest + an append (messaging.operation.type send)
	receive attribute.Set // dest + a read (receive)
	settle  attribute.Set // dest + a commit (settle)
	kv      []attribute.KeyValue
}

// newTarget describes the stream at streamURL. A URL that does not parse
// gives an empty path and server.
func newTarget(streamURL string) *target {
	t := &target{}
	if u, err := url.Parse(streamURL); err == nil {
		t.path = u.Path
		t.host = u.Hostname()
		t.port = urlPort(u)
	}
	t.kv = []attribute.KeyValue{
		semconv.MessagingSystemKey.String(messagingSystem),
		semconv.MessagingDestinationName(t.path),
		semconv.ServerAddress(t.host),
		semconv.ServerPort(t.port),
	}
	t.dest = attribute.NewSet(t.kv...)
	t.send = t.with(semconv.MessagingOperationName(operationAppend), semconv.MessagingOperationTypeSend)
	t.receive = t.with(semconv.MessagingOperationName(operationRead), semconv.MessagingOperationTypeReceive)
	t.settle = t.with(semconv.MessagingOperationName(operationCommit), semconv.MessagingOperationTypeSettle)
	return t
}

// urlPort is the port of u, explicit or the scheme's (0 if unknown).
func urlPort(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	switch u.Scheme {
	case "http":
		return 80
	case "https":
		return 443
	}
	return 0
}

// with returns the target's attributes and kv as a set.
func (t *target) with(kv ...attribute.KeyValue) attribute.Set {
	all := make([]attribute.KeyValue, 0, len(t.kv)+len(kv))
	return attribute.NewSet(append(append(all, t.kv...), kv...)...)
}

// sendFailed is the attribute set of an append that failed with errType.
func (t *target) sendFailed(errType string) attribute.Set {
	return t.with(semconv.MessagingOperationName(operationAppend), semconv.MessagingOperationTypeSend, semconv.ErrorTypeKey.String(errType))
}

// receiveFailed is the attribute set of a read that failed with errType.
func (t *target) receiveFailed(errType string) attribute.Set {
	return t.with(semconv.MessagingOperationName(operationRead), semconv.MessagingOperationTypeReceive, semconv.ErrorTypeKey.String(errType))
}

// writerState is what the gauges observe of one open Writer.
type writerState struct {
	t                 *target
	bufMsgs, bufBytes atomic.Int64
}

// readerState is what the gauges observe of one open Reader.
type readerState struct {
	t        *target
	opened   time.Time
	upToDate atomic.Bool
	lastUp   atomic.Int64 // Unix nanoseconds of the last time it was up to date, 0 = never
	lag      atomic.Int64 // bytes behind the last known tail, -1 = unknown
}

func newReaderState(t *target, now time.Time) *readerState {
	r := &readerState{t: t, opened: now}
	r.lag.Store(-1)
	return r
}

// setUpToDate records whether the Reader is up to date at now.
func (r *readerState) setUpToDate(up bool, now time.Time) {
	if up {
		r.lastUp.Store(now.UnixNano())
	} else if r.upToDate.Load() {
		// It was up to date until now.
		r.lastUp.Store(now.UnixNano())
	}
	r.upToDate.Store(up)
}

// lastUpToDate is when the Reader was last up to date, or when it was
// opened if it never was.
func (r *readerState) lastUpToDate() time.Time {
	if ns := r.lastUp.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return r.opened
}

// registry holds the Writers and Readers open, for the gauges.
type registry struct {
	mu      sync.Mutex
	writers map[*writerState]struct{}
	readers map[*readerState]struct{}
}

func (g *registry) addWriter(w *writerState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.writers == nil {
		g.writers = map[*writerState]struct{}{}
	}
	g.writers[w] = struct{}{}
}

func (g *registry) removeWriter(w *writerState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.writers, w)
}

func (g *registry) addReader(r *readerState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.readers == nil {
		g.readers = map[*readerState]struct{}{}
	}
	g.readers[r] = struct{}{}
}

func (g *registry) removeReader(r *readerState) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.readers, r)
}

// each calls fw for every Writer and fr for every Reader registered.
func (g *registry) each(fw func(*writerState), fr func(*readerState)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for w := range g.writers {
		fw(w)
	}
	for r := range g.readers {
		fr(r)
	}
}
