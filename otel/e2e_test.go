package durableotel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/testsupport/secrettest"
	"github.com/durablego/durable/internal/testsupport/syncbuf"
	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// The plugin end to end: a Writer and a Reader of a Client carrying every
// credential of the secrets tests, through a testserver that injects
// faults; what the SDK's in-memory exporters recorded is checked against
// the server's own accounting.

// env is a testserver, a Client on it with the Telemetry as its hooks
// (and every secret attached), and what the server saw of each request.
type env struct {
	t      *testing.T
	srv    *testserver.Server
	rec    *recorder
	c      *durable.Client
	log    *syncbuf.Buffer
	heads  *headerLog
	stream string // the stream's URL, with userinfo and query secrets
}

// fast is the retry policy of the clients, Writers and Readers under test.
var fast = durable.RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2, MaxElapsed: 10 * time.Second}

func newEnv(t *testing.T, contentType string, opts ...Option) *env {
	t.Helper()
	e := &env{t: t, rec: newRecorder(t, opts...), log: &syncbuf.Buffer{}, heads: &headerLog{}}
	e.srv = testserver.New(testserver.WithMiddleware(e.heads.middleware), testserver.WithChunkLimit(4<<10))
	t.Cleanup(e.srv.Close)
	c, err := durable.NewClient(e.srv.URL(),
		durable.WithHooks(e.rec.Telemetry),
		durable.WithRetry(fast),
		durable.WithLogger(slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		durable.WithHeader("Authorization", "Bearer "+secrettest.StaticAuth),
		durable.WithHeader("X-Api-Key", secrettest.APIKey),
		durable.WithHeaderFunc(func(context.Context) (http.Header, error) {
			return http.Header{"Authorization": {"Bearer " + secrettest.FuncAuth}}, nil
		}),
	)
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	e.c = c
	e.stream, err = secrettest.StreamURL(e.srv.StreamURL(""), "s")
	require.NoError(t, err)
	_, err = c.Create(context.Background(), e.stream, durable.CreateOptions{ContentType: contentType})
	require.NoError(t, err)
	e.srv.ResetRequests()
	e.heads.reset()
	return e
}

// noSecrets checks that no exported name, attribute, event or status,
// and no log line, holds a credential.
func (e *env) noSecrets() {
	e.t.Helper()
	texts := append(e.rec.exported(e.t), e.log.String())
	require.NotEmpty(e.t, e.rec.spans.Ended())
	for _, leak := range secrettest.Find(texts...) {
		e.t.Errorf("secret exported: %s", leak)
	}
}

// tailBytes is the stream's size by the server's accounting: the byte
// position of its tail offset.
func (e *env) tailBytes() int64 {
	e.t.Helper()
	info, err := e.c.Head(context.Background(), e.stream)
	require.NoError(e.t, err)
	n, ok := offsetBytes(info.NextOffset)
	require.True(e.t, ok, info.NextOffset)
	return n
}

var (
	post = attribute.String("http.request.method", http.MethodPost)
	get  = attribute.String("http.request.method", http.MethodGet)
	dest = semconv.MessagingDestinationName("/v1/stream/s")
	ok   = func(set attribute.Set) bool { _, failed := set.Value(semconv.ErrorTypeKey); return !failed }
)

// TestWriterAndReaderRecorded drives a Writer and then a Reader through
// injected faults, on a byte stream (whose size the server accounts) and a
// JSON stream (whose messages it holds), and checks the recorded values
// against the server's accounting.
func TestWriterAndReaderRecorded(t *testing.T) {
	for _, ct := range []string{"application/octet-stream", "application/json"} {
		t.Run(ct, func(t *testing.T) {
			e := newEnv(t, ct, withW3C)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const n = 300

			// The Writer: two 503s and a response dropped after the append
			// was applied; small batches, two in flight.
			e.srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodPost, Status: 503, Count: 2})
			e.srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodPost, Drop: true, AfterApply: true, Count: 1})
			w, err := durable.NewWriter(e.c, e.stream, durable.BytesCodec{}, durable.WithContentType(ct), durable.WithRetry(fast),
				durable.WithMaxBatch(20, 1<<20), durable.WithMaxInFlight(2))
			require.NoError(t, err)
			var size int64
			for i := range n {
				msg := fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", i%17))
				size += int64(len(msg))
				require.NoError(t, w.Write(ctx, msg))
			}
			require.NoError(t, w.Close(ctx))
			posts := e.srv.Requests("s", http.MethodPost)

			ms := e.rec.collect(t)
			n1, _ := hist[float64](t, ms, "http.client.request.duration", post)
			require.Equal(t, uint64(posts), n1, "requests recorded = requests the server counted")
			require.Equal(t, int64(3), sum(t, ms, metricRetries, attrOperation.String("write")), "one retry per injected fault")
			require.Equal(t, int64(2), sum(t, ms, metricRetries, semconv.ErrorTypeKey.String("503")))
			require.Equal(t, int64(1), sum(t, ms, metricRetries, semconv.ErrorTypeKey.String(errorTypeConnection)), "the dropped response")
			require.Equal(t, int64(n), countIf(t, ms, "messaging.client.sent.messages", ok))
			require.Zero(t, sum(t, ms, metricLostBatches))
			sent := countIf(t, ms, metricSentBytes, ok)
			if ct == "application/octet-stream" {
				require.Equal(t, size, sent)
				require.Equal(t, e.tailBytes(), sent, "bytes recorded = the stream's size by the server")
			}
			batches, batched := hist[int64](t, ms, metricBatchSize, dest)
			require.Equal(t, int64(n), batched)
			require.Zero(t, sum(t, ms, metricInFlight), "every batch settled")
			require.Empty(t, gauge[int64](t, ms, metricBufferMessages), "every buffer emptied")

			spans := e.rec.ended("append /v1/stream/s")
			require.Len(t, spans, int(batches), "a span per batch")
			attempts, traceIDs := 0, map[string]bool{}
			for _, s := range spans {
				require.Equal(t, trace.SpanKindProducer, s.SpanKind())
				a := 0
				fmt.Sscan(attr(s, attrAttempts), &a)
				attempts += a
				require.NotEmpty(t, attr(s, attrNextOffset))
				require.Equal(t, w.Producer().ID, attr(s, semconv.MessagingClientIDKey))
				traceIDs[s.SpanContext().TraceID().String()+"-"+s.SpanContext().SpanID().String()] = true
			}
			require.Equal(t, posts, attempts, "the batches' attempts add up to the server's POSTs")
			retriedSpans := 0
			for _, s := range spans {
				for _, ev := range s.Events() {
					if ev.Name == spanEventRetry {
						retriedSpans++
					}
				}
			}
			require.Equal(t, 3, retriedSpans, "each retry is an event of its batch's span")
			parents := e.heads.get(http.MethodPost)
			require.Len(t, parents, posts)
			for _, tp := range parents {
				require.True(t, traceIDs[traceparentIDs(t, tp)], "traceparent %q names a batch's span", tp)
			}

			// The Reader: two 503s and a truncated body.
			e.srv.ResetRequests()
			e.heads.reset()
			e.srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: 503, Count: 2})
			e.srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Truncate: true, Count: 1})
			r, err := durable.NewReader(e.c, e.stream, durable.BytesCodec{}, durable.WithLive(durable.LiveNone), durable.WithRetry(fast), durable.WithManualCommit())
			require.NoError(t, err)
			got, gotBytes := 0, int64(0)
			for {
				m, err := r.Next(ctx)
				if errors.Is(err, durable.ErrCaughtUp) {
					break
				}
				require.NoError(t, err)
				got++
				gotBytes += int64(len(m.Value))
			}
			ms = e.rec.collect(t)
			require.Equal(t, []int64{1}, gauge[int64](t, ms, metricUpToDate, dest))
			require.Equal(t, []float64{0}, gauge[float64](t, ms, metricSinceUpToDate, dest))
			require.Equal(t, []int64{0}, gauge[int64](t, ms, metricLag, dest), "caught up")
			require.NoError(t, r.Close(ctx))
			gets := e.srv.Requests("s", http.MethodGet)

			ms = e.rec.collect(t)
			n1, _ = hist[float64](t, ms, "http.client.request.duration", get, attrOperation.String("read"))
			require.Equal(t, uint64(gets), n1, "requests recorded = requests the server counted")
			require.Equal(t, int64(3), sum(t, ms, metricRetries, attrOperation.String("read")), "one retry per injected fault")
			consumed := sum(t, ms, "messaging.client.consumed.messages", dest)
			require.Equal(t, int64(got), consumed)
			if ct == "application/json" {
				require.Equal(t, n, got, "every message written was read")
			} else {
				require.Equal(t, e.tailBytes(), gotBytes)
				require.Equal(t, e.tailBytes(), sum(t, ms, metricConsumedBytes, dest), "bytes recorded = the stream's size by the server")
			}
			require.Empty(t, gauge[int64](t, ms, metricUpToDate), "a closed Reader is no longer observed")
			readOps, _ := hist[float64](t, ms, "messaging.client.operation.duration", semconv.MessagingOperationTypeReceive)
			require.Equal(t, uint64(gets), readOps, "a read per GET (read-aheads included)")

			reads := e.rec.ended("read /v1/stream/s")
			require.Len(t, reads, gets, "a span per read")
			failedReads := 0
			for _, s := range reads {
				require.Equal(t, trace.SpanKindClient, s.SpanKind())
				if attr(s, semconv.ErrorTypeKey) != "" {
					failedReads++
				}
			}
			require.Equal(t, 3, failedReads)
			for _, tp := range e.heads.get(http.MethodGet) {
				require.NotEmpty(t, tp, "every read carries its trace context")
			}
			e.noSecrets()
		})
	}
}

// traceparentIDs returns "traceID-parentID" of a W3C traceparent header.
func traceparentIDs(t *testing.T, tp string) string {
	t.Helper()
	parts := strings.Split(tp, "-")
	require.Len(t, parts, 4, tp)
	return parts[1] + "-" + parts[2]
}

// TestLossAndFencingRecorded: a batch lost to a permanent failure and a
// Writer fenced by a newer epoch are counted, and are events of their
// spans, which end in error.
func TestLossAndFencingRecorded(t *testing.T) {
	e := newEnv(t, "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old, err := durable.NewWriter(e.c, e.stream, durable.BytesCodec{}, durable.WithContentType("application/json"), durable.WithProducerID("p"), durable.WithLinger(0), durable.WithRetry(fast))
	require.NoError(t, err)
	_, err = old.WriteSync(ctx, []byte(`{"n":1}`))
	require.NoError(t, err)
	newer, err := durable.NewWriter(e.c, e.stream, durable.BytesCodec{}, durable.WithContentType("application/json"), durable.WithProducerID("p"), durable.WithEpoch(1), durable.WithLinger(0), durable.WithRetry(fast))
	require.NoError(t, err)
	_, err = newer.WriteSync(ctx, []byte(`{"n":2}`))
	require.NoError(t, err)
	require.NoError(t, newer.Close(ctx))
	_, err = old.WriteSync(ctx, []byte(`{"n":3}`))
	require.ErrorIs(t, err, durable.ErrStaleEpoch)
	require.Error(t, old.Close(ctx))

	missing, err := secrettest.StreamURL(e.srv.StreamURL(""), "missing")
	require.NoError(t, err)
	lost, err := durable.NewWriter(e.c, missing, durable.BytesCodec{}, durable.WithContentType("application/json"), durable.WithLinger(0), durable.WithRetry(fast))
	require.NoError(t, err)
	_, err = lost.WriteSync(ctx, []byte(`{"n":1}`))
	require.ErrorIs(t, err, durable.ErrNotFound)
	require.Error(t, lost.Close(ctx))

	ms := e.rec.collect(t)
	require.Equal(t, int64(1), sum(t, ms, metricFenced, dest))
	require.Equal(t, int64(1), sum(t, ms, metricLostBatches, dest, semconv.ErrorTypeKey.String("403")))
	require.Equal(t, int64(1), sum(t, ms, metricLostBatches, semconv.MessagingDestinationName("/v1/stream/missing"), semconv.ErrorTypeKey.String("404")))
	require.Equal(t, int64(1), sum(t, ms, "messaging.client.sent.messages", dest, semconv.ErrorTypeKey.String("403")))

	var fenced, lostSpan sdktrace.ReadOnlySpan
	for _, s := range e.rec.ended("append /v1/stream/s") {
		if attr(s, semconv.ErrorTypeKey) == "403" {
			fenced = s
		}
	}
	require.NotNil(t, fenced, describe(e.rec.spans.Ended()))
	require.Equal(t, []string{spanEventFenced, spanEventLostBatch, "exception"}, eventNames(fenced))
	require.Equal(t, "0", attr(fenced, attrProducerEpoch))
	for _, ev := range fenced.Events() {
		if ev.Name == spanEventFenced {
			require.Contains(t, ev.Attributes, attrServerEpoch.Int64(1))
		}
	}
	spans := e.rec.ended("append /v1/stream/missing")
	require.Len(t, spans, 1)
	lostSpan = spans[0]
	require.Equal(t, []string{spanEventLostBatch, "exception"}, eventNames(lostSpan))
	require.Equal(t, "404", attr(lostSpan, semconv.ErrorTypeKey))
	e.noSecrets()
}

// headerLog records the traceparent header of every request a server
// receives, by method.
type headerLog struct {
	mu   sync.Mutex
	seen map[string][]string
}

func (h *headerLog) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		if h.seen == nil {
			h.seen = map[string][]string{}
		}
		h.seen[r.Method] = append(h.seen[r.Method], r.Header.Get("Traceparent"))
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (h *headerLog) get(method string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen[method]...)
}

func (h *headerLog) reset() {
	h.mu.Lock()
	h.seen = nil
	h.mu.Unlock()
}

// TestLiveReaderRecorded: a long-poll Reader's reads are spans of their
// own, its arrival at the tail shows in the gauges, how far behind it is
// while it catches up is a byte count within the stream's size, and its
// gauges go when it is closed.
func TestLiveReaderRecorded(t *testing.T) {
	e := newEnv(t, "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 200 {
		_, err := e.c.Append(ctx, e.stream, fmt.Appendf(nil, `{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", 40)), durable.AppendOptions{ContentType: "application/json"})
		require.NoError(t, err)
	}
	size := e.tailBytes()
	r, err := durable.NewReader(e.c, e.stream, durable.BytesCodec{}, durable.WithLive(durable.LiveLongPoll), durable.WithManualCommit())
	require.NoError(t, err)
	for i := range 200 {
		_, err := r.Next(ctx)
		require.NoError(t, err)
		if i == 100 {
			// Midway: some chunks delivered, the next ones known.
			lag := gauge[int64](t, e.rec.collect(t), metricLag, dest)
			require.Len(t, lag, 1)
			require.Positive(t, lag[0], "behind, by the offsets the server has shown")
			require.Less(t, lag[0], size)
		}
	}
	// Every message is delivered: the next read is a long-poll at the tail.
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = e.c.Append(ctx, e.stream, []byte(`{"n":200}`), durable.AppendOptions{ContentType: "application/json"})
	}()
	_, err = r.Next(ctx)
	require.NoError(t, err)
	ms := e.rec.collect(t)
	require.Equal(t, []int64{1}, gauge[int64](t, ms, metricUpToDate, dest, semconv.MessagingConsumerGroupName("/v1/stream/s")))
	require.NoError(t, r.Close(ctx))
	require.Empty(t, gauge[int64](t, e.rec.collect(t), metricUpToDate))

	var catchUp, longPoll int
	for _, s := range e.rec.ended("read /v1/stream/s") {
		switch attr(s, attrLive) {
		case "catch-up":
			catchUp++
		case "long-poll":
			longPoll++
		}
	}
	require.Positive(t, catchUp)
	require.Positive(t, longPoll, "the wait at the tail is a read of its own")
	e.noSecrets()
}

// countingStore is an in-memory store that counts its saves and fails the
// first one.
type countingStore struct {
	*offsetstore.Memory
	mu           sync.Mutex
	saves, fails int
}

var errStoreDown = errors.New("store down")

func (s *countingStore) Save(ctx context.Context, key string, pos durable.Position) error {
	s.mu.Lock()
	s.saves++
	first := s.saves == 1
	if first {
		s.fails++
	}
	s.mu.Unlock()
	if first {
		return errStoreDown
	}
	return s.Memory.Save(ctx, key, pos)
}

// TestCommitsRecorded: every save of a Reader's position to its store is
// a commit operation (messaging.client.operation.duration, type settle)
// on the stream and consumer's attributes; a failed save carries its
// error.type.
func TestCommitsRecorded(t *testing.T) {
	e := newEnv(t, "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 5 {
		_, err := e.c.Append(ctx, e.stream, fmt.Appendf(nil, `{"n":%d}`, i), durable.AppendOptions{ContentType: "application/json"})
		require.NoError(t, err)
	}
	store := &countingStore{Memory: offsetstore.NewMemory()}
	r, err := durable.NewReader(e.c, e.stream, durable.BytesCodec{}, durable.WithLive(durable.LiveNone), durable.WithStore(store), durable.WithManualCommit())
	require.NoError(t, err)
	for i := range 5 {
		m, err := r.Next(ctx)
		require.NoError(t, err)
		err = r.Commit(ctx, m.Position)
		if i == 0 {
			require.ErrorIs(t, err, errStoreDown)
		} else {
			require.NoError(t, err)
		}
	}
	require.NoError(t, r.Close(ctx))

	ms := e.rec.collect(t)
	settle := semconv.MessagingOperationTypeSettle
	n, _ := hist[float64](t, ms, "messaging.client.operation.duration", settle, dest)
	require.Equal(t, uint64(store.saves), n, "a commit recorded per save")
	failed, _ := hist[float64](t, ms, "messaging.client.operation.duration", settle, semconv.ErrorTypeKey.String(errorTypeOther))
	require.Equal(t, uint64(store.fails), failed)
	require.Equal(t, uint64(1), failed)
	e.noSecrets()
}
