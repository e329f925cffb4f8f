package durableotel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/testsupport/secrettest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// TestTargetHoldsNoSecret: a stream URL with credentials in its userinfo
// and query gives its path and server only.
func TestTargetHoldsNoSecret(t *testing.T) {
	u, err := secrettest.StreamURL("https://streams.example.com/v1/stream/", "orders")
	require.NoError(t, err)
	tg := newTarget(u)
	require.Equal(t, "/v1/stream/orders", tg.path)
	require.Equal(t, "streams.example.com", tg.host)
	require.Equal(t, 443, tg.port)
	var texts []string
	for _, set := range []attribute.Set{tg.dest, tg.send, tg.receive, tg.settle, tg.sendFailed("503"), tg.receiveFailed("timeout")} {
		texts = append(texts, set.Encoded(attribute.DefaultEncoder()))
	}
	require.Empty(t, secrettest.Find(texts...))

	// And through every recording method and span.
	r := newRecorder(t)
	ctx := context.Background()
	r.in.request(ctx, tg, "append", "POST", 503, "503", time.Millisecond, 1)
	r.in.retry(ctx, tg, "append", "503")
	r.in.batchStarted(ctx, tg)
	r.in.batchSettled(ctx, tg, 1, 1, time.Millisecond, "503")
	r.in.consumed(ctx, tg, 1, 1)
	r.in.read(ctx, tg, time.Millisecond, "")
	r.in.commit(ctx, tg, time.Millisecond, "")
	r.in.registry.writerBuffer(tg, writerKey{"s", "p"}, 1, 1)
	r.in.registry.reader(tg, readerKey{"s", "/v1/stream/orders"}, time.Now(), func(*readerState) {})
	_, span := r.startBatch(ctx, tg, batchSpan{producerID: "p", messages: 1})
	endBatch(span, 0, 1, "", &durable.Error{Op: "append", URL: "https://streams.example.com/v1/stream/orders?token=REDACTED", Status: 503, Err: durable.ErrServer}, false, 0)
	_, span = r.startRead(ctx, tg, readSpan{offset: "-1", live: "catch-up", consumer: "/v1/stream/orders"})
	endRead(span, 1, 1, "1", true, false, nil)
	out := r.exported(t)
	require.Contains(t, out, "messaging.destination.name=/v1/stream/orders")
	require.Empty(t, secrettest.Find(out...))

	require.Equal(t, 8080, newTarget("http://h:8080/s").port)
	require.Equal(t, 80, newTarget("http://h/s").port)
	bad := newTarget("http://" + secrettest.User + "@[::1/s?token=" + secrettest.QueryToken)
	require.Empty(t, bad.path)
	require.Empty(t, secrettest.Find(bad.dest.Encoded(attribute.DefaultEncoder())))
}

func TestOffsetBytes(t *testing.T) {
	for off, want := range map[durable.Offset]int64{
		"0000000000000000_0000000000000123": 123,
		"0000000000000002_0000000000004096": 4096,
		"42":                                42,
	} {
		n, ok := offsetBytes(off)
		require.True(t, ok, off)
		require.Equal(t, want, n, off)
	}
	for _, off := range []durable.Offset{"", "-1", "now", "abc", "1_x", "12a", "_"} {
		_, ok := offsetBytes(off)
		require.False(t, ok, off)
	}
}

func TestErrorType(t *testing.T) {
	timeout := &net.DNSError{Err: "timed out", IsTimeout: true}
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{&durable.Error{Op: "append", Status: 503, Err: durable.ErrServer}, "503"},
		{fmt.Errorf("wrapped: %w", &durable.Error{Op: "append", Status: 403, Err: durable.ErrStaleEpoch}), "403"},
		{&durable.Error{Op: "read", Err: context.Canceled}, errorTypeCanceled},
		{context.DeadlineExceeded, errorTypeTimeout},
		{&durable.Error{Op: "read", Err: timeout}, errorTypeTimeout},
		{&durable.Error{Op: "read", Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, errorTypeConnection},
		{&durable.Error{Op: "read", Err: io.ErrUnexpectedEOF}, errorTypeTruncated},
		{&durable.Error{Op: "append", Err: io.EOF}, errorTypeConnection},
		{&durable.Error{Op: "read", Err: durable.ErrProtocol}, errorTypeProtocol},
		{&durable.Error{Op: "read", Err: durable.ErrResponseTooLarge}, errorTypeTooLarge},
		{&durable.Error{Op: "sse", Err: durable.ErrDisconnected}, errorTypeDisconnected},
		{errors.New("something else"), errorTypeOther},
	} {
		require.Equal(t, c.want, errorType(c.err), "%v", c.err)
	}
}

// TestInstruments drives every recording method and checks each value
// under its name, unit and attributes.
func TestInstruments(t *testing.T) {
	r := newRecorder(t)
	ctx := context.Background()
	in := r.in
	tg := newTarget("http://127.0.0.1:8787/v1/stream/orders")
	dest := semconv.MessagingDestinationName("/v1/stream/orders")

	in.request(ctx, tg, "append", "POST", 200, "", 20*time.Millisecond, 100)
	in.request(ctx, tg, "append", "POST", 503, "503", 10*time.Millisecond, 100)
	in.request(ctx, tg, "read", "GET", 0, errorTypeConnection, time.Millisecond, 0)
	in.retry(ctx, tg, "append", "503")
	in.batchStarted(ctx, tg)
	in.batchStarted(ctx, tg)
	in.batchSettled(ctx, tg, 10, 1000, 30*time.Millisecond, "")
	in.batchSettled(ctx, tg, 5, 500, time.Second, "403")
	in.fencedWriter(ctx, tg)
	in.read(ctx, tg, 5*time.Millisecond, "")
	in.read(ctx, tg, 5*time.Millisecond, "404")
	in.consumed(ctx, tg, 7, 700)
	in.commit(ctx, tg, 2*time.Millisecond, "")
	in.commit(ctx, tg, 2*time.Millisecond, errorTypeOther)

	in.registry.writerBuffer(tg, writerKey{"s", "p1"}, 1, 100)
	in.registry.writerBuffer(tg, writerKey{"s", "p2"}, 2, 200)
	rk := readerKey{"s", "consumer"}
	in.registry.reader(tg, rk, time.Now().Add(-time.Hour), func(r *readerState) {
		r.delivered = 100
		r.seen("0000000000000000_0000000000000142")
		r.seen("0000000000000000_0000000000000120") // not further: the tail stays
	})
	consumer := semconv.MessagingConsumerGroupName("consumer")

	ms := r.collect(t)
	post := attribute.String("http.request.method", "POST")
	n, secs := hist[float64](t, ms, "http.client.request.duration", post)
	require.Equal(t, uint64(2), n)
	require.InDelta(t, 0.03, secs, 1e-9)
	n, _ = hist[float64](t, ms, "http.client.request.duration", attrOperation.String("append"), semconv.HTTPResponseStatusCode(503), semconv.ErrorTypeKey.String("503"))
	require.Equal(t, uint64(1), n)
	n, _ = hist[float64](t, ms, "http.client.request.duration", attrOperation.String("read"), semconv.ErrorTypeKey.String(errorTypeConnection), semconv.ServerAddress("127.0.0.1"), semconv.ServerPort(8787))
	require.Equal(t, uint64(1), n)
	n, bytes := hist[int64](t, ms, "http.client.request.body.size")
	require.Equal(t, uint64(3), n)
	require.Equal(t, int64(200), bytes)

	require.Equal(t, int64(1), sum(t, ms, metricRetries, attrOperation.String("append"), semconv.ErrorTypeKey.String("503"), dest))
	require.Equal(t, int64(0), sum(t, ms, metricInFlight, dest), "two batches started, two settled")
	require.Equal(t, int64(15), sum(t, ms, "messaging.client.sent.messages", dest, semconv.MessagingOperationName(operationAppend)))
	require.Equal(t, int64(5), sum(t, ms, "messaging.client.sent.messages", semconv.ErrorTypeKey.String("403")))
	require.Equal(t, int64(1500), sum(t, ms, metricSentBytes, semconv.MessagingSystemKey.String(messagingSystem)))
	require.Equal(t, int64(1), sum(t, ms, metricLostBatches, semconv.ErrorTypeKey.String("403")))
	require.Equal(t, int64(1), sum(t, ms, metricFenced, dest))
	n, msgs := hist[int64](t, ms, metricBatchSize, dest)
	require.Equal(t, uint64(2), n)
	require.Equal(t, int64(15), msgs)

	send := semconv.MessagingOperationTypeSend
	n, _ = hist[float64](t, ms, "messaging.client.operation.duration", send)
	require.Equal(t, uint64(2), n)
	n, _ = hist[float64](t, ms, "messaging.client.operation.duration", semconv.MessagingOperationTypeReceive)
	require.Equal(t, uint64(2), n)
	n, secs = hist[float64](t, ms, "messaging.client.operation.duration", semconv.MessagingOperationName(operationCommit), semconv.MessagingOperationTypeSettle)
	require.Equal(t, uint64(2), n)
	require.InDelta(t, 0.004, secs, 1e-9)
	require.Equal(t, int64(7), sum(t, ms, "messaging.client.consumed.messages", dest))
	require.Equal(t, int64(700), sum(t, ms, metricConsumedBytes, dest))

	require.Equal(t, []int64{3}, gauge[int64](t, ms, metricBufferMessages, dest), "the Writers of a stream, summed")
	require.Equal(t, []int64{300}, gauge[int64](t, ms, metricBufferBytes, dest))
	require.Equal(t, []int64{0}, gauge[int64](t, ms, metricUpToDate, dest, consumer))
	require.Equal(t, []int64{42}, gauge[int64](t, ms, metricLag, dest, consumer))
	since := gauge[float64](t, ms, metricSinceUpToDate, dest, consumer)
	require.Len(t, since, 1)
	require.GreaterOrEqual(t, since[0], time.Hour.Seconds(), "never up to date: since it was first heard of")

	in.registry.reader(tg, rk, time.Now(), func(r *readerState) { r.setUpToDate(true, time.Now()) })
	ms = r.collect(t)
	require.Equal(t, []int64{1}, gauge[int64](t, ms, metricUpToDate, dest))
	require.Equal(t, []float64{0}, gauge[float64](t, ms, metricSinceUpToDate, dest))
	in.registry.reader(tg, rk, time.Now(), func(r *readerState) { r.setUpToDate(false, time.Now().Add(-time.Minute)) })
	since = gauge[float64](t, r.collect(t), metricSinceUpToDate, dest)
	require.Len(t, since, 1)
	require.GreaterOrEqual(t, since[0], time.Minute.Seconds())
	require.Less(t, since[0], time.Hour.Seconds(), "counted from when it stopped being up to date")

	in.registry.writerBuffer(tg, writerKey{"s", "p1"}, 0, 0)
	require.Equal(t, []int64{2}, gauge[int64](t, r.collect(t), metricBufferMessages, dest), "an empty buffer adds nothing")
	in.registry.writerBuffer(tg, writerKey{"s", "p2"}, 0, 0)
	in.registry.closeReader(rk)
	ms = r.collect(t)
	require.Empty(t, gauge[int64](t, ms, metricBufferMessages, dest), "Writers with empty buffers are not observed")
	require.Empty(t, gauge[int64](t, ms, metricUpToDate, dest), "a closed Reader is no longer observed")
}

// recordAll records through every instrument and returns the unit of
// each metric recorded, by name.
func recordAll(t *testing.T) map[string]string {
	r := newRecorder(t)
	ctx := context.Background()
	tg := newTarget("http://127.0.0.1:1/s")
	r.in.request(ctx, tg, "read", "GET", 200, "", time.Millisecond, 0)
	r.in.retry(ctx, tg, "read", "503")
	r.in.batchStarted(ctx, tg)
	r.in.batchSettled(ctx, tg, 1, 1, time.Millisecond, "503")
	r.in.fencedWriter(ctx, tg)
	r.in.consumed(ctx, tg, 1, 1)
	r.in.read(ctx, tg, time.Millisecond, "")
	r.in.registry.writerBuffer(tg, writerKey{"s", "p"}, 1, 1)
	r.in.registry.reader(tg, readerKey{"s", "k"}, time.Now(), func(r *readerState) { r.delivered, r.tail = 0, 1 })
	units := map[string]string{}
	for _, m := range r.collect(t) {
		units[m.Name] = m.Unit
	}
	return units
}

// TestUnits: every instrument has the unit its conventions (or the
// README's table) give it.
func TestUnits(t *testing.T) {
	require.Equal(t, map[string]string{
		"http.client.request.duration":        "s",
		"http.client.request.body.size":       "By",
		"messaging.client.operation.duration": "s",
		"messaging.client.sent.messages":      "{message}",
		"messaging.client.consumed.messages":  "{message}",
		metricSentBytes:                       "By",
		metricConsumedBytes:                   "By",
		metricRetries:                         "{retry}",
		metricBatchSize:                       "{message}",
		metricInFlight:                        "{batch}",
		metricLostBatches:                     "{batch}",
		metricFenced:                          "{event}",
		metricBufferMessages:                  "{message}",
		metricBufferBytes:                     "By",
		metricUpToDate:                        "1",
		metricSinceUpToDate:                   "s",
		metricLag:                             "By",
	}, recordAll(t))
}
