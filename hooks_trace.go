package durable

import (
	"context"
	"net/http"
	"time"

	"github.com/durablego/durable/internal/retry"
)

// Hooks for tracing: a Writer's batch and a Reader's read each have a
// start (HookStart, which may put a span into the context the batch or
// read runs with, and add trace-context headers to its requests) and an
// end (HookBatch for a batch, HookFetch for a read) that carries that
// context back. RequestEvent and RetryEvent carry it too.

// HookStart is called when a Writer starts sending a batch (Op "write")
// and when a Reader sends a read (Op "read": one GET, or the wait for the
// next event of an SSE connection), before its first request. It returns
// the context the batch or read runs with: derived from ctx (nil keeps
// ctx), it is the Context of the events of its requests and retries and of
// the event that ends it (BatchEvent, FetchEvent). The requests of the
// batch or read carry ev.Header, to which a hook may add (the W3C trace
// context, for example).
type HookStart interface {
	OnStart(ctx context.Context, ev StartEvent) context.Context
}

// StartEvent describes a batch or a read about to be sent.
type StartEvent struct {
	Op       string      // "write" (a Writer's batch) or "read" (a Reader's read)
	Stream   string      // the stream's URL, redacted, without its query
	Producer Producer    // a batch's producer ID, epoch and sequence number
	Messages int         // messages in a batch
	Bytes    int         // bytes of a batch's request body
	Offset   Offset      // the offset a read starts from
	Live     LiveMode    // a read's mode: LiveNone (catch-up), LiveLongPoll or LiveSSE
	Key      string      // a read's Reader's store key: which consumer of the stream
	Header   http.Header // sent with every request of the batch or read; hooks may add to it

	// A batch's Writer's buffer: messages and bytes written and not yet
	// landed (this batch's included).
	Buffered, BufferedBytes int
}

// HookFetch is called by a Reader when a read ends: it brought a chunk of
// the stream (possibly empty: a long-poll that timed out, an unchanged
// 304) or failed.
type HookFetch interface {
	OnFetch(FetchEvent)
}

// FetchEvent describes one read of a Reader.
type FetchEvent struct {
	Context    context.Context // the read's context (see HookStart)
	Stream     string          // the stream's URL, redacted, without its query
	Live       LiveMode        // LiveNone (catch-up), LiveLongPoll or LiveSSE
	Key        string          // the Reader's store key: which consumer of the stream
	Offset     Offset          // the offset the read started from
	NextOffset Offset          // where the next read starts (empty when the read failed)
	Bytes      int             // bytes of stream data the read brought
	UpToDate   bool            // the read reached the stream's tail
	Closed     bool            // the stream is closed and the read reached its end
	Attempt    int             // 1, or the attempt of a read retried after failures (2 = the first retry)
	Latency    time.Duration   // from sending the read to its chunk (or failure)
	Err        error           // nil when the read succeeded
}

// opHeaderKey is the context key of the headers a HookStart added for the
// requests of its batch or read.
type opHeaderKey struct{}

// start calls the start hooks of a batch or read, and returns the context
// it runs with.
func (s *hookSet) start(ctx context.Context, ev StartEvent) context.Context {
	if len(s.starts) == 0 {
		return ctx
	}
	ev.Header = http.Header{}
	for _, h := range s.starts {
		if c := h.OnStart(ctx, ev); c != nil {
			ctx = c
		}
	}
	if len(ev.Header) > 0 {
		ctx = context.WithValue(ctx, opHeaderKey{}, ev.Header)
	}
	return ctx
}

// addOpHeader adds the headers the start hooks gave the batch or read of
// ctx to h.
func addOpHeader(ctx context.Context, h http.Header) {
	if oh, ok := ctx.Value(opHeaderKey{}).(http.Header); ok {
		for k, vs := range oh {
			h[k] = vs
		}
	}
}

func (s *hookSet) onFetch(ev FetchEvent) {
	for _, h := range s.fetches {
		h.OnFetch(ev)
	}
}

// startRead starts a read of the Reader's transport from off: the start
// hooks, when there are any.
func (t *readerTransport) startRead(ctx context.Context, off Offset, live LiveMode) (context.Context, time.Time) {
	h := &t.c.cfg.hooks
	if len(h.starts) == 0 && len(h.fetches) == 0 {
		return ctx, time.Time{}
	}
	return h.start(ctx, StartEvent{Op: "read", Stream: streamOf(t.url), Key: t.key, Offset: off, Live: live}), time.Now()
}

// endRead reports the end of a read started by startRead (at start) to the
// fetch hooks.
func (t *readerTransport) endRead(ctx context.Context, start time.Time, off Offset, live LiveMode, ch rawChunk, err error) {
	h := &t.c.cfg.hooks
	if len(h.fetches) == 0 {
		return
	}
	ev := FetchEvent{Context: ctx, Stream: streamOf(t.url), Key: t.key, Live: live, Offset: off, Attempt: retry.Attempt(ctx),
		Latency: time.Since(start), Err: err}
	if err == nil {
		ev.NextOffset, ev.Bytes, ev.UpToDate, ev.Closed = ch.next, len(ch.data), ch.upToDate, ch.closed
		if ch.notModified {
			ev.NextOffset = off
		}
	}
	h.onFetch(ev)
}
