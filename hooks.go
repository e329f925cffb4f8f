package durable

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Hooks report what a Client, and every Reader and Writer opened on it, do:
// for metrics and traces (an OpenTelemetry plugin is built from these
// alone) or logs of your own. A hook is any value implementing one or more
// of the Hook interfaces below, each with a single method; give hooks to
// NewClient with WithHooks. Adding a Hook interface in a later release
// breaks no implementer.
//
// Hooks are called synchronously, from the goroutine doing the work (a
// caller of Next or Write, a Writer's sender, ...), possibly from several
// goroutines at once: they must be safe for concurrent use and return
// quickly. The events carry redacted URLs only.

// HookRequest is called after every HTTP request the Client sends (every
// attempt of every operation, a Reader's reads and a Writer's appends
// included), once the response's headers arrived or the request failed.
type HookRequest interface {
	OnRequest(RequestEvent)
}

// RequestEvent describes one HTTP request.
type RequestEvent struct {
	Context context.Context // the request's context: that of its batch or read (see HookStart), or the caller's
	Op      string          // the operation, as in Error.Op
	Stream  string          // the stream's URL, redacted, without its query
	Method  string          // the HTTP method
	Status  int             // the response's status; 0 when none was received
	Attempt int             // 1 for the first attempt of an operation (or of a retry episode), 2 for the first retry, ...
	Latency time.Duration   // from sending the request to the response's headers, or to the failure
	Err     error           // nil when the request succeeded (a 2xx or 304)
	Bytes   int             // bytes of the request body
}

// HookRetry is called before every wait of a retry (an operation, a
// Reader's read or a Writer's batch failed transiently and will be tried
// again after Wait), and once more, with Recovered set, when an attempt
// succeeds after failures: the end of the outage.
type HookRetry interface {
	OnRetry(RetryEvent)
}

// RetryEvent describes one retry, or the end of an outage.
type RetryEvent struct {
	Context   context.Context // the context of the retried operation, batch or read (see HookStart)
	Op        string          // the operation, as in Error.Op
	Stream    string          // the stream's URL, redacted, without its query
	Attempt   int             // the attempt that failed (1 = the first of this outage); with Recovered, the failures the outage had
	Wait      time.Duration   // the wait before the next attempt (the server's Retry-After is a floor); zero with Recovered
	Err       error           // the failure, the cause of the retry; nil with Recovered
	Recovered bool            // the outage is over: an attempt succeeded after Attempt failures
	Elapsed   time.Duration   // with Recovered: the time from the outage's first failure to the success
}

// HookRead is called by a Reader for every chunk of the stream it has
// handed out in full (every message of it returned by Next).
type HookRead interface {
	OnRead(ReadEvent)
}

// ReadEvent describes one chunk a Reader has delivered.
type ReadEvent struct {
	Stream     string // the stream's URL, redacted
	Key        string // the Reader's store key: which consumer of the stream
	Messages   int    // messages of the chunk returned by Next (decode errors and dropped duplicates not counted)
	Bytes      int    // bytes of the chunk
	Offset     Offset // the offset the chunk was read from
	NextOffset Offset // where the next read starts
}

// HookBatch is called by a Writer when a batch has settled: landed on the
// stream, or lost. A lost batch has Err set (errors.Is(Err,
// ErrStaleEpoch) when the Writer was fenced by a newer one).
type HookBatch interface {
	OnBatch(BatchEvent)
}

// BatchEvent describes one settled batch of a Writer.
type BatchEvent struct {
	Context  context.Context // the batch's context (see HookStart)
	Attempts int             // requests the batch took (1 when it landed at once)
	Stream   string          // the stream's URL, redacted
	Producer Producer        // the producer ID, epoch and sequence number of the batch
	Messages int             // messages in the batch
	Bytes    int             // bytes of the request body
	Latency  time.Duration   // from the batch's first attempt to its settlement
	Err      error           // nil when the batch landed; else why it was lost
	Offset   Offset          // when it landed: the offset after it (Stream-Next-Offset)

	// The Writer's buffer once the batch settled: messages and bytes
	// written and not yet landed (sealed or not, in flight or not). A
	// Writer's events that report its buffer (StartEvent, BatchEvent) come
	// one at a time, in the order their figures were taken: the last one
	// is the latest.
	Buffered, BufferedBytes int
}

// HookCommit is called by a Reader after every save of its position to
// its store (Commit, the interval commit, Close).
type HookCommit interface {
	OnCommit(CommitEvent)
}

// CommitEvent describes one save to a Reader's store.
type CommitEvent struct {
	Stream   string        // the stream's URL, redacted
	Key      string        // the store key
	Position Position      // the position saved (or not, with Err)
	Latency  time.Duration // how long the store took
	Err      error         // nil when the position was saved
}

// HookUpToDate is called by a Reader when it reaches the stream's tail
// (UpToDate true), when it falls behind it again (new data arrived
// faster than it reads, or it resumed from an older position), and when it
// is closed (Closed true).
type HookUpToDate interface {
	OnUpToDate(UpToDateEvent)
}

// UpToDateEvent describes a Reader's transition to or from the tail.
type UpToDateEvent struct {
	Stream   string // the stream's URL, redacted
	Key      string // the Reader's store key (WithKey; by default the stream's path): which consumer of the stream
	UpToDate bool   // true: at the tail now; false: behind it
	Offset   Offset // the offset read up to
	Closed   bool   // the Reader has been closed (UpToDate false): it reads no more
}

// hookSet holds the hooks of a Client by kind.
type hookSet struct {
	request  []HookRequest
	retry    []HookRetry
	read     []HookRead
	batch    []HookBatch
	commit   []HookCommit
	upToDate []HookUpToDate
	starts   []HookStart
	fetches  []HookFetch
}

// add sorts h into the set; a value implementing no Hook interface is an
// error.
func (s *hookSet) add(h any) error {
	n := 0
	if v, ok := h.(HookRequest); ok {
		s.request, n = append(s.request, v), n+1
	}
	if v, ok := h.(HookRetry); ok {
		s.retry, n = append(s.retry, v), n+1
	}
	if v, ok := h.(HookRead); ok {
		s.read, n = append(s.read, v), n+1
	}
	if v, ok := h.(HookBatch); ok {
		s.batch, n = append(s.batch, v), n+1
	}
	if v, ok := h.(HookCommit); ok {
		s.commit, n = append(s.commit, v), n+1
	}
	if v, ok := h.(HookUpToDate); ok {
		s.upToDate, n = append(s.upToDate, v), n+1
	}
	if v, ok := h.(HookStart); ok {
		s.starts, n = append(s.starts, v), n+1
	}
	if v, ok := h.(HookFetch); ok {
		s.fetches, n = append(s.fetches, v), n+1
	}
	if n == 0 {
		return fmt.Errorf("WithHooks: %T implements no Hook interface", h)
	}
	return nil
}

func (s *hookSet) onRequest(ev RequestEvent) {
	for _, h := range s.request {
		h.OnRequest(ev)
	}
}

func (s *hookSet) onRetry(ev RetryEvent) {
	for _, h := range s.retry {
		h.OnRetry(ev)
	}
}

func (s *hookSet) onRead(ev ReadEvent) {
	for _, h := range s.read {
		h.OnRead(ev)
	}
}

func (s *hookSet) onBatch(ev BatchEvent) {
	for _, h := range s.batch {
		h.OnBatch(ev)
	}
}

func (s *hookSet) onCommit(ev CommitEvent) {
	for _, h := range s.commit {
		h.OnCommit(ev)
	}
}

func (s *hookSet) onUpToDate(ev UpToDateEvent) {
	for _, h := range s.upToDate {
		h.OnUpToDate(ev)
	}
}

// streamOf is the stream URL of a request URL for events: redacted, its
// query dropped.
func streamOf(rawURL string) string {
	u := redactURL(rawURL)
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	return u
}
