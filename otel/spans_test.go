package durableotel

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

func TestSpans(t *testing.T) {
	r := newRecorder(t)
	ctx := context.Background()
	tg := newTarget("http://127.0.0.1:8787/v1/stream/orders")

	_, ok := r.startBatch(ctx, tg, batchSpan{producerID: "p1", epoch: 2, seq: 7, messages: 10})
	retried(ok, 1, "503", 250*time.Millisecond)
	endBatch(ok, 2, 2, "0000000000000000_0000000000000100", nil, false, 0)
	_, lost := r.startBatch(ctx, tg, batchSpan{producerID: "p1", epoch: 2, seq: 8, messages: 3})
	stale := &durable.Error{Op: "append", Status: 403, Err: durable.ErrStaleEpoch, ServerEpoch: 3}
	endBatch(lost, 2, 1, "", stale, true, 3)

	_, rd := r.startRead(ctx, tg, readSpan{offset: "-1", live: "long-poll", consumer: "c"})
	endRead(rd, 1, 50, "0000000000000000_0000000000000050", true, true, nil)
	_, rf := r.startRead(ctx, tg, readSpan{offset: "-1", live: "catch-up", consumer: "c"})
	endRead(rf, 3, 0, "", false, false, &durable.Error{Op: "read", Status: 404, Err: durable.ErrNotFound})

	spans := r.ended("append /v1/stream/orders")
	require.Len(t, spans, 2, describe(r.spans.Ended()))
	s := spans[0]
	require.Equal(t, trace.SpanKindProducer, s.SpanKind())
	require.Equal(t, "send", attr(s, semconv.MessagingOperationTypeKey))
	require.Equal(t, "append", attr(s, semconv.MessagingOperationNameKey))
	require.Equal(t, "durable_streams", attr(s, semconv.MessagingSystemKey))
	require.Equal(t, "/v1/stream/orders", attr(s, semconv.MessagingDestinationNameKey))
	require.Equal(t, "10", attr(s, semconv.MessagingBatchMessageCountKey))
	require.Equal(t, "p1", attr(s, semconv.MessagingClientIDKey))
	require.Equal(t, "2", attr(s, attrProducerEpoch))
	require.Equal(t, "7", attr(s, attrProducerSeq))
	require.Equal(t, "2", attr(s, attrAttempts))
	require.Equal(t, "0000000000000000_0000000000000100", attr(s, attrNextOffset))
	require.Equal(t, []string{spanEventRetry}, eventNames(s))
	require.Equal(t, codes.Unset, s.Status().Code)

	s = spans[1]
	require.Equal(t, codes.Error, s.Status().Code)
	require.Equal(t, stale.Error(), s.Status().Description)
	require.Equal(t, "403", attr(s, semconv.ErrorTypeKey))
	require.Equal(t, []string{spanEventFenced, spanEventLostBatch, "exception"}, eventNames(s))

	spans = r.ended("read /v1/stream/orders")
	require.Len(t, spans, 2)
	s = spans[0]
	require.Equal(t, trace.SpanKindClient, s.SpanKind())
	require.Equal(t, "receive", attr(s, semconv.MessagingOperationTypeKey))
	require.Equal(t, "-1", attr(s, attrOffset))
	require.Equal(t, "long-poll", attr(s, attrLive))
	require.Equal(t, "50", attr(s, attrBytes))
	require.Equal(t, "c", attr(s, semconv.MessagingConsumerGroupNameKey))
	require.Equal(t, "true", attr(s, attrUpToDate))
	require.Equal(t, "true", attr(s, attrClosed))
	s = spans[1]
	require.Equal(t, codes.Error, s.Status().Code)
	require.Equal(t, "404", attr(s, semconv.ErrorTypeKey))
	require.Equal(t, "3", attr(s, attrAttempt))
}

// TestInject: the trace context goes into request headers only when a
// propagator was asked for.
func TestInject(t *testing.T) {
	ctx := context.Background()
	tg := newTarget("http://127.0.0.1:1/s")

	off := newRecorder(t)
	sctx, span := off.startBatch(ctx, tg, batchSpan{messages: 1})
	h := http.Header{}
	off.inject(sctx, h)
	span.End()
	require.Empty(t, h)

	on := newRecorder(t, withW3C)
	sctx, span = on.startBatch(ctx, tg, batchSpan{messages: 1})
	on.inject(sctx, h)
	span.End()
	tp := h.Get("Traceparent")
	require.Contains(t, tp, span.SpanContext().TraceID().String())
	require.Contains(t, tp, span.SpanContext().SpanID().String())
}
