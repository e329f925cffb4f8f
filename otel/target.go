package durableotel

import (
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/durablego/durable"

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

// writerKey identifies one Writer: its stream and producer ID.
type writerKey struct{ stream, producer string }

// writerState is what the gauges observe of one Writer: its buffer, as its
// last event said.
type writerState struct {
	t           *target
	msgs, bytes int64
}

// readerKey identifies one consumer of a stream: its stream and store key.
type readerKey struct{ stream, key string }

// readerState is what the gauges observe of one Reader.
type readerState struct {
	t         *target
	set       attribute.Set // t's attributes and the consumer (messaging.consumer.group.name)
	opened    time.Time     // when it was first heard of
	upToDate  bool
	lastUp    time.Time // when it was last up to date (zero: never)
	tail      int64     // the furthest offset the server has shown it, in bytes (-1: unknown)
	delivered int64     // the offset after what it has delivered, in bytes (-1: unknown)
}

// setUpToDate records whether the Reader is up to date at now.
func (r *readerState) setUpToDate(up bool, now time.Time) {
	if up || r.upToDate {
		// It is, or was until now.
		r.lastUp = now
	}
	r.upToDate = up
}

// since is how long the Reader has not been up to date at now (0 while it
// is): since it last was, or since it was first heard of.
func (r *readerState) since(now time.Time) time.Duration {
	switch {
	case r.upToDate:
		return 0
	case !r.lastUp.IsZero():
		return now.Sub(r.lastUp)
	}
	return now.Sub(r.opened)
}

// lag is how far behind the furthest offset the server has shown it the
// Reader is, in bytes, and whether that is known.
func (r *readerState) lag() (int64, bool) {
	if r.tail < 0 || r.delivered < 0 {
		return 0, false
	}
	return max(r.tail-r.delivered, 0), true
}

// seen records an offset the server has shown the Reader.
func (r *readerState) seen(off durable.Offset) {
	if n, ok := offsetBytes(off); ok && n > r.tail {
		r.tail = n
	}
}

// offsetBytes is the position in bytes an offset stands for, when the
// server's offsets say: a decimal number, or the form
// "<read sequence>_<byte offset>" of the reference server and testserver.
func offsetBytes(off durable.Offset) (int64, bool) {
	s := string(off)
	if i := strings.LastIndexByte(s, '_'); i >= 0 {
		s = s[i+1:]
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// registry holds the state of the Writers and Readers heard of, for the
// gauges.
type registry struct {
	mu      sync.Mutex
	writers map[writerKey]*writerState
	readers map[readerKey]*readerState
}

// writerBuffer records the buffer of Writer k on t. A Writer whose buffer
// is empty is forgotten until it writes again.
func (g *registry) writerBuffer(t *target, k writerKey, msgs, bytes int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if msgs == 0 && bytes == 0 {
		delete(g.writers, k)
		return
	}
	if w := g.writers[k]; w != nil {
		w.msgs, w.bytes = int64(msgs), int64(bytes)
		return
	}
	if g.writers == nil {
		g.writers = map[writerKey]*writerState{}
	}
	g.writers[k] = &writerState{t: t, msgs: int64(msgs), bytes: int64(bytes)}
}

// reader calls f with the state of consumer k of t (made at now if it is
// new), under the registry's lock.
func (g *registry) reader(t *target, k readerKey, now time.Time, f func(*readerState)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.readers[k]
	if r == nil {
		if g.readers == nil {
			g.readers = map[readerKey]*readerState{}
		}
		r = &readerState{t: t, set: t.with(semconv.MessagingConsumerGroupName(k.key)), opened: now, tail: -1, delivered: -1}
		g.readers[k] = r
	}
	f(r)
}

// closeReader forgets consumer k.
func (g *registry) closeReader(k readerKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.readers, k)
}

// each calls fw with every stream's Writers' buffers (summed) and fr with
// every Reader's state.
func (g *registry) each(fw func(t *target, msgs, bytes int64), fr func(*readerState)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	type sum struct{ msgs, bytes int64 }
	sums := map[*target]sum{}
	for _, w := range g.writers {
		s := sums[w.t]
		sums[w.t] = sum{s.msgs + w.msgs, s.bytes + w.bytes}
	}
	for t, s := range sums {
		fw(t, s.msgs, s.bytes)
	}
	for _, r := range g.readers {
		fr(r)
	}
}
