package durableotel

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
)

// durationBuckets are the histogram boundaries, in seconds, of the
// conventions' duration metrics (those of http.client.request.duration,
// which messaging.client.operation.duration is advised to use as well).
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// batchBuckets are the boundaries of durable.writer.batch.size, in
// messages (a Writer's batch holds up to 1000 by default).
var batchBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}

// instruments is every metric instrument of a Telemetry, made once from its
// Meter, with the methods that record the events of Clients, Readers and
// Writers. Each method takes plain values, so that the hooks stay thin.
type instruments struct {
	reqDuration   httpconv.ClientRequestDuration
	reqBody       httpconv.ClientRequestBodySize
	opDuration    messagingconv.ClientOperationDuration
	sentMsgs      messagingconv.ClientSentMessages
	consumedMsgs  messagingconv.ClientConsumedMessages
	sentBytes     metric.Int64Counter
	consumedBytes metric.Int64Counter
	retries       metric.Int64Counter
	batchSize     metric.Int64Histogram
	inFlight      metric.Int64UpDownCounter
	lost          metric.Int64Counter
	fenced        metric.Int64Counter

	// The gauges of Writers' buffers and of Readers are observed from
	// the state of each one open (registry).
	bufMsgs, bufBytes metric.Int64ObservableGauge
	upToDate, lag     metric.Int64ObservableGauge
	sinceUpToDate     metric.Float64ObservableGauge
	reg               metric.Registration
	registry          registry

	httpSets sync.Map // httpKey → attribute.Set
}

// newInstruments makes the instruments on m. An error of the Meter (an
// invalid name, a conflicting registration) is returned with the
// instruments that could be made; the others record nothing.
func newInstruments(m metric.Meter) (*instruments, error) {
	in := &instruments{}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var err error
	in.reqDuration, err = httpconv.NewClientRequestDuration(m)
	add(err)
	in.reqBody, err = httpconv.NewClientRequestBodySize(m)
	add(err)
	in.opDuration, err = messagingconv.NewClientOperationDuration(m, metric.WithExplicitBucketBoundaries(durationBuckets...))
	add(err)
	in.sentMsgs, err = messagingconv.NewClientSentMessages(m)
	add(err)
	in.consumedMsgs, err = messagingconv.NewClientConsumedMessages(m)
	add(err)
	in.sentBytes, err = m.Int64Counter(metricSentBytes, metric.WithUnit("By"),
		metric.WithDescription("Message bytes a Writer sent, counted once per batch when it settles."))
	add(err)
	in.consumedBytes, err = m.Int64Counter(metricConsumedBytes, metric.WithUnit("By"),
		metric.WithDescription("Message bytes a Reader delivered to the application."))
	add(err)
	in.retries, err = m.Int64Counter(metricRetries, metric.WithUnit("{retry}"),
		metric.WithDescription("Retries of failed requests, by operation and cause (error.type)."))
	add(err)
	in.batchSize, err = m.Int64Histogram(metricBatchSize, metric.WithUnit("{message}"),
		metric.WithDescription("Messages per batch a Writer sent."), metric.WithExplicitBucketBoundaries(batchBuckets...))
	add(err)
	in.inFlight, err = m.Int64UpDownCounter(metricInFlight, metric.WithUnit("{batch}"),
		metric.WithDescription("Batches a Writer has sent and not yet settled."))
	add(err)
	in.lost, err = m.Int64Counter(metricLostBatches, metric.WithUnit("{batch}"),
		metric.WithDescription("Batches a Writer could not deliver (their messages are lost)."))
	add(err)
	in.fenced, err = m.Int64Counter(metricFenced, metric.WithUnit("{event}"),
		metric.WithDescription("Writers fenced by a newer producer epoch."))
	add(err)
	in.bufMsgs, err = m.Int64ObservableGauge(metricBufferMessages, metric.WithUnit("{message}"),
		metric.WithDescription("Messages held in a Writer's buffer, sent or not, until their batch settles."))
	add(err)
	in.bufBytes, err = m.Int64ObservableGauge(metricBufferBytes, metric.WithUnit("By"),
		metric.WithDescription("Bytes held in a Writer's buffer, sent or not, until their batch settles."))
	add(err)
	in.upToDate, err = m.Int64ObservableGauge(metricUpToDate, metric.WithUnit("1"),
		metric.WithDescription("1 when a Reader has read up to the tail of its stream, else 0."))
	add(err)
	in.sinceUpToDate, err = m.Float64ObservableGauge(metricSinceUpToDate, metric.WithUnit("s"),
		metric.WithDescription("Time since a Reader was last up to date (0 while it is)."))
	add(err)
	in.lag, err = m.Int64ObservableGauge(metricLag, metric.WithUnit("By"),
		metric.WithDescription("Bytes between what a Reader delivered and the furthest offset the server has shown it, when the server's offsets count bytes: at least this far behind."))
	add(err)
	reg, err := m.RegisterCallback(in.observe, in.bufMsgs, in.bufBytes, in.upToDate, in.sinceUpToDate, in.lag)
	add(err)
	in.reg = reg
	return in, errors.Join(errs...)
}

// close stops the observation of the gauges.
func (in *instruments) close() error {
	if in.reg == nil {
		return nil
	}
	return in.reg.Unregister()
}

// httpKey identifies the attribute set of one kind of HTTP request outcome.
type httpKey struct {
	op, method, host, errType string
	port, status              int
}

// httpAttrs returns the attribute set of an HTTP request's metrics, made
// once per kind of outcome.
func (in *instruments) httpAttrs(k httpKey) attribute.Set {
	if s, ok := in.httpSets.Load(k); ok {
		return s.(attribute.Set)
	}
	kv := []attribute.KeyValue{
		semconv.HTTPRequestMethodKey.String(k.method),
		semconv.ServerAddress(k.host),
		semconv.ServerPort(k.port),
		attrOperation.String(k.op),
	}
	if k.status > 0 {
		kv = append(kv, semconv.HTTPResponseStatusCode(k.status))
	}
	if k.errType != "" {
		kv = append(kv, semconv.ErrorTypeKey.String(k.errType))
	}
	s := attribute.NewSet(kv...)
	in.httpSets.Store(k, s)
	return s
}

// request records one HTTP request of a Client operation (op): its
// status (0 when no answer came), error type ("" on success), duration
// and the size of its request body.
func (in *instruments) request(ctx context.Context, t *target, op, method string, status int, errType string, d time.Duration, bodyBytes int) {
	set := in.httpAttrs(httpKey{op: op, method: method, host: t.host, port: t.port, status: status, errType: errType})
	in.reqDuration.RecordSet(ctx, d.Seconds(), set)
	in.reqBody.RecordSet(ctx, int64(bodyBytes), set)
}

// retry records a retry of a request of op on t's stream, by cause.
func (in *instruments) retry(ctx context.Context, t *target, op, errType string) {
	in.retries.Add(ctx, 1, metric.WithAttributeSet(t.with(attrOperation.String(op), semconv.ErrorTypeKey.String(errType))))
}

// batchStarted records that a Writer sent a batch's first request.
func (in *instruments) batchStarted(ctx context.Context, t *target) {
	in.inFlight.Add(ctx, 1, metric.WithAttributeSet(t.dest))
}

// batchSettled records a batch of a Writer that settled after d: acknowledged
// (errType "") or lost.
func (in *instruments) batchSettled(ctx context.Context, t *target, messages, bytes int, d time.Duration, errType string) {
	in.inFlight.Add(ctx, -1, metric.WithAttributeSet(t.dest))
	send := t.send
	if errType != "" {
		send = t.sendFailed(errType)
		in.lost.Add(ctx, 1, metric.WithAttributeSet(t.with(semconv.ErrorTypeKey.String(errType))))
	}
	in.opDuration.RecordSet(ctx, d.Seconds(), send)
	in.sentMsgs.AddSet(ctx, int64(messages), send)
	in.sentBytes.Add(ctx, int64(bytes), metric.WithAttributeSet(send))
	in.batchSize.Record(ctx, int64(messages), metric.WithAttributeSet(t.dest))
}

// fencedWriter records a Writer fenced by a newer producer epoch.
func (in *instruments) fencedWriter(ctx context.Context, t *target) {
	in.fenced.Add(ctx, 1, metric.WithAttributeSet(t.dest))
}

// read records one read of a Reader that ended after d (errType "" when
// it succeeded).
func (in *instruments) read(ctx context.Context, t *target, d time.Duration, errType string) {
	set := t.receive
	if errType != "" {
		set = t.receiveFailed(errType)
	}
	in.opDuration.RecordSet(ctx, d.Seconds(), set)
}

// consumed records messages (and their bytes) a Reader delivered.
func (in *instruments) consumed(ctx context.Context, t *target, messages, bytes int) {
	in.consumedMsgs.AddSet(ctx, int64(messages), t.receive)
	in.consumedBytes.Add(ctx, int64(bytes), metric.WithAttributeSet(t.receive))
}

// commit records a Reader's commit (a save of its position) that took d.
func (in *instruments) commit(ctx context.Context, t *target, d time.Duration, errType string) {
	set := t.settle
	if errType != "" {
		set = t.with(semconv.MessagingOperationName(operationCommit), semconv.MessagingOperationTypeSettle, semconv.ErrorTypeKey.String(errType))
	}
	in.opDuration.RecordSet(ctx, d.Seconds(), set)
}

// observe is the callback of the gauges: the buffers of the Writers and
// the state of the Readers heard of.
func (in *instruments) observe(_ context.Context, o metric.Observer) error {
	now := time.Now()
	in.registry.each(func(t *target, msgs, bytes int64) {
		set := metric.WithAttributeSet(t.dest)
		o.ObserveInt64(in.bufMsgs, msgs, set)
		o.ObserveInt64(in.bufBytes, bytes, set)
	}, func(r *readerState) {
		set := metric.WithAttributeSet(r.set)
		o.ObserveInt64(in.upToDate, boolInt(r.upToDate), set)
		o.ObserveFloat64(in.sinceUpToDate, r.since(now).Seconds(), set)
		if lag, ok := r.lag(); ok {
			o.ObserveInt64(in.lag, lag, set)
		}
	})
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
