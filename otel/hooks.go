package durableotel

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/durablego/durable"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The Telemetry is a durable hook: it implements every Hook interface of
// the root package, and records each event.
var (
	_ durable.HookRequest  = (*Telemetry)(nil)
	_ durable.HookRetry    = (*Telemetry)(nil)
	_ durable.HookRead     = (*Telemetry)(nil)
	_ durable.HookBatch    = (*Telemetry)(nil)
	_ durable.HookCommit   = (*Telemetry)(nil)
	_ durable.HookUpToDate = (*Telemetry)(nil)
	_ durable.HookStart    = (*Telemetry)(nil)
	_ durable.HookFetch    = (*Telemetry)(nil)
)

// spanKey is the context key of the span a Telemetry started for a batch
// or a read: the events that follow find it there (and only spans of its
// own, never the caller's).
type spanKey struct{}

// ownSpan returns the span a Telemetry started for the batch or read of
// ctx, or nil.
func ownSpan(ctx context.Context) trace.Span {
	if ctx == nil {
		return nil
	}
	s, _ := ctx.Value(spanKey{}).(trace.Span)
	return s
}

// targets caches the attributes of each stream (events name a stream by
// its redacted URL).
type targets struct{ m sync.Map }

func (ts *targets) of(stream string) *target {
	if t, ok := ts.m.Load(stream); ok {
		return t.(*target)
	}
	t, _ := ts.m.LoadOrStore(stream, newTarget(stream))
	return t.(*target)
}

// OnStart starts the span of a Writer's batch or a Reader's read, and
// counts a batch in flight. With WithPropagator, the span's trace context
// goes into the headers of the batch's or read's requests.
func (t *Telemetry) OnStart(ctx context.Context, ev durable.StartEvent) context.Context {
	tg := t.targets.of(ev.Stream)
	var span trace.Span
	switch ev.Op {
	case "write":
		t.in.batchStarted(ctx, tg)
		t.in.registry.writerBuffer(tg, writerKey{ev.Stream, ev.Producer.ID}, ev.Buffered, ev.BufferedBytes)
		ctx, span = t.startBatch(ctx, tg, batchSpan{producerID: ev.Producer.ID, epoch: ev.Producer.Epoch, seq: ev.Producer.Seq, messages: ev.Messages})
	case "read":
		ctx, span = t.startRead(ctx, tg, readSpan{offset: string(ev.Offset), live: liveName(ev.Live), consumer: ev.Key})
	default:
		return ctx
	}
	if ev.Header != nil {
		t.inject(ctx, ev.Header)
	}
	return context.WithValue(ctx, spanKey{}, span)
}

// liveName is the durable.live attribute of a read's mode.
func liveName(m durable.LiveMode) string {
	if m == durable.LiveNone {
		return "catch-up"
	}
	return string(m)
}

// OnRequest records an HTTP request (http.client.request.duration and
// .body.size), and its status on the span of its batch or read.
func (t *Telemetry) OnRequest(ev durable.RequestEvent) {
	ctx := ctxOf(ev.Context)
	t.in.request(ctx, t.targets.of(ev.Stream), ev.Op, ev.Method, ev.Status, errorType(ev.Err), ev.Latency, ev.Bytes)
	if span := ownSpan(ev.Context); span != nil && ev.Status > 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(ev.Status))
	}
}

// OnRetry counts a retry by operation and cause, and adds it to the span
// of its batch or read as an event (the end of an outage is neither).
func (t *Telemetry) OnRetry(ev durable.RetryEvent) {
	if ev.Recovered {
		return // the end of an outage, not a retry
	}
	et := errorType(ev.Err)
	if et == "" {
		et = errorTypeOther
	}
	t.in.retry(ctxOf(ev.Context), t.targets.of(ev.Stream), ev.Op, et)
	if span := ownSpan(ev.Context); span != nil {
		retried(span, ev.Attempt, et, ev.Wait)
	}
}

// OnBatch records a settled batch (sent messages and bytes, its duration,
// its size; a loss and a fencing) and ends its span.
func (t *Telemetry) OnBatch(ev durable.BatchEvent) {
	ctx := ctxOf(ev.Context)
	tg := t.targets.of(ev.Stream)
	t.in.batchSettled(ctx, tg, ev.Messages, ev.Bytes, ev.Latency, errorType(ev.Err))
	t.in.registry.writerBuffer(tg, writerKey{ev.Stream, ev.Producer.ID}, ev.Buffered, ev.BufferedBytes)
	var serverEpoch int64
	fenced := errors.Is(ev.Err, durable.ErrStaleEpoch)
	if fenced {
		t.in.fencedWriter(ctx, tg)
		var e *durable.Error
		if errors.As(ev.Err, &e) {
			serverEpoch = e.ServerEpoch
		}
	}
	if span := ownSpan(ev.Context); span != nil {
		endBatch(span, ev.Producer.Epoch, ev.Attempts, string(ev.Offset), ev.Err, fenced, serverEpoch)
	}
}

// OnFetch records a read of a Reader (its duration), what it learnt of the
// stream's tail, and ends its span.
func (t *Telemetry) OnFetch(ev durable.FetchEvent) {
	tg := t.targets.of(ev.Stream)
	t.in.read(ctxOf(ev.Context), tg, ev.Latency, errorType(ev.Err))
	if ev.Err == nil {
		t.in.registry.reader(tg, readerKey{ev.Stream, ev.Key}, time.Now(), func(r *readerState) {
			if r.delivered < 0 {
				// The first read starts where the Reader stands.
				if n, ok := offsetBytes(ev.Offset); ok {
					r.delivered = n
				}
			}
			r.seen(ev.NextOffset)
		})
	}
	if span := ownSpan(ev.Context); span != nil {
		endRead(span, ev.Attempt, ev.Bytes, string(ev.NextOffset), ev.UpToDate, ev.Closed, ev.Err)
	}
}

// OnRead records the messages and bytes of a chunk a Reader delivered.
func (t *Telemetry) OnRead(ev durable.ReadEvent) {
	tg := t.targets.of(ev.Stream)
	t.in.consumed(context.Background(), tg, ev.Messages, ev.Bytes)
	if n, ok := offsetBytes(ev.NextOffset); ok {
		t.in.registry.reader(tg, readerKey{ev.Stream, ev.Key}, time.Now(), func(r *readerState) {
			r.delivered = n
			r.seen(ev.NextOffset)
		})
	}
}

// OnCommit records a save of a Reader's position and how long it took.
func (t *Telemetry) OnCommit(ev durable.CommitEvent) {
	t.in.commit(context.Background(), t.targets.of(ev.Stream), ev.Latency, errorType(ev.Err))
}

// OnUpToDate records a Reader reaching the tail or falling behind it; a
// closed Reader is no longer observed.
func (t *Telemetry) OnUpToDate(ev durable.UpToDateEvent) {
	k := readerKey{ev.Stream, ev.Key}
	if ev.Closed {
		t.in.registry.closeReader(k)
		return
	}
	now := time.Now()
	t.in.registry.reader(t.targets.of(ev.Stream), k, now, func(r *readerState) {
		r.setUpToDate(ev.UpToDate, now)
		if ev.UpToDate {
			r.seen(ev.Offset)
		}
	})
}

// ctxOf is an event's context, or the background one when it has none.
func ctxOf(ctx context.Context) context.Context {
	if ctx == nil {
		return context.Background()
	}
	return ctx
}
