package durableotel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The spans: one per batch a Writer sends (kind producer, named
// "append {stream path}") and one per read of a Reader (kind client,
// "read {stream path}"), as the messaging conventions name a send and a
// receive.

// batchSpan describes one batch of a Writer, for its span.
type batchSpan struct {
	producerID string
	epoch, seq int64
	messages   int
}

// startBatch starts the span of a batch on t's stream.
func (tel *Telemetry) startBatch(ctx context.Context, t *target, b batchSpan) (context.Context, trace.Span) {
	kv := t.spanAttrs(operationAppend, semconv.MessagingOperationTypeSend,
		semconv.MessagingBatchMessageCount(b.messages),
		semconv.MessagingClientID(b.producerID),
		attrProducerEpoch.Int64(b.epoch),
		attrProducerSeq.Int64(b.seq),
	)
	return tel.tracer.Start(ctx, operationAppend+" "+t.path,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(kv...))
}

// spanAttrs returns the attributes of a span of operation op (of type
// opType) on t's stream, followed by more.
func (t *target) spanAttrs(op string, opType attribute.KeyValue, more ...attribute.KeyValue) []attribute.KeyValue {
	kv := make([]attribute.KeyValue, 0, len(t.kv)+2+len(more)+2)
	kv = append(kv, t.kv...)
	kv = append(kv, semconv.MessagingOperationName(op), opType)
	return append(kv, more...)
}

// endBatch ends a batch's span: its epoch (which a claim may have
// raised), the requests it took, the offset after it when it landed, else
// its error (a lost batch, and a fenced writer, are events too).
func endBatch(span trace.Span, epoch int64, attempts int, nextOffset string, err error, fenced bool, serverEpoch int64) {
	if err == nil {
		span.SetAttributes(attrProducerEpoch.Int64(epoch), attrAttempts.Int(attempts), attrNextOffset.String(nextOffset))
		span.End()
		return
	}
	span.SetAttributes(attrProducerEpoch.Int64(epoch), attrAttempts.Int(attempts))
	et := errorType(err)
	if fenced {
		span.AddEvent(spanEventFenced, trace.WithAttributes(attrServerEpoch.Int64(serverEpoch)))
	}
	span.AddEvent(spanEventLostBatch, trace.WithAttributes(semconv.ErrorTypeKey.String(et)))
	failed(span, et, err)
	span.End()
}

// readSpan describes one read of a Reader, for its span.
type readSpan struct {
	offset   string // the offset the read starts from
	live     string // live mode of the read: catch-up, long-poll or sse
	consumer string // the Reader's store key
}

// startRead starts the span of a read on t's stream.
func (tel *Telemetry) startRead(ctx context.Context, t *target, r readSpan) (context.Context, trace.Span) {
	kv := t.spanAttrs(operationRead, semconv.MessagingOperationTypeReceive, attrOffset.String(r.offset),
		attrLive.String(r.live), semconv.MessagingConsumerGroupName(r.consumer))
	return tel.tracer.Start(ctx, operationRead+" "+t.path,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(kv...))
}

// endRead ends a read's span: its attempt (2 for the first retry), the
// bytes it brought, the offset after them and whether it reached the tail
// (or the end of a closed stream); or its error.
func endRead(span trace.Span, attempt, bytes int, nextOffset string, upToDate, closed bool, err error) {
	span.SetAttributes(attrAttempt.Int(attempt))
	if err != nil {
		failed(span, errorType(err), err)
		span.End()
		return
	}
	span.SetAttributes(
		attrBytes.Int(bytes),
		attrNextOffset.String(nextOffset),
		attrUpToDate.Bool(upToDate),
	)
	if closed {
		span.SetAttributes(attrClosed.Bool(true))
	}
	span.End()
}

// retried adds the event of a failed attempt that will be retried after
// wait to span.
func retried(span trace.Span, attempt int, errType string, wait time.Duration) {
	span.AddEvent(spanEventRetry, trace.WithAttributes(
		attrAttempt.Int(attempt),
		semconv.ErrorTypeKey.String(errType),
		attrRetryWait.Float64(wait.Seconds()),
	))
}

// failed marks span as failed with err (whose text the SDK has already
// cleared of credentials).
func failed(span trace.Span, errType string, err error) {
	span.SetAttributes(semconv.ErrorTypeKey.String(errType))
	span.RecordError(err)
	span.SetStatus(codes.Error, err.Error())
}
