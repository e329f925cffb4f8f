package durable

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// opTracer is a tracing hook: OnStart names each batch and read, puts the
// name into its context and sends it in a header; the end events must
// carry the same context.
type opTracer struct {
	recorder
	mu2     sync.Mutex
	n       int
	starts  []StartEvent
	fetches []FetchEvent
}

type opNameKey struct{}

func opName(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	s, _ := ctx.Value(opNameKey{}).(string)
	return s
}

func (h *opTracer) OnStart(ctx context.Context, ev StartEvent) context.Context {
	h.mu2.Lock()
	h.n++
	name := fmt.Sprintf("%s-%d", ev.Op, h.n)
	h.starts = append(h.starts, ev)
	h.mu2.Unlock()
	ev.Header.Set("X-Op", name)
	return context.WithValue(ctx, opNameKey{}, name)
}

func (h *opTracer) OnFetch(ev FetchEvent) {
	h.mu2.Lock()
	h.fetches = append(h.fetches, ev)
	h.mu2.Unlock()
}

// opHeaders records the X-Op header of every request a server receives,
// by method.
type opHeaders struct {
	mu   sync.Mutex
	seen map[string][]string
}

func (o *opHeaders) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		if o.seen == nil {
			o.seen = map[string][]string{}
		}
		o.seen[r.Method] = append(o.seen[r.Method], r.Header.Get("X-Op"))
		o.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (o *opHeaders) get(method string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.seen[method]...)
}

// TestHookStartWriter: every batch of a Writer starts with OnStart; each
// of its requests (retries included) carries the headers the hook added,
// and the events of its requests, its retry and its settlement carry the
// context the hook returned. BatchEvent counts the requests.
func TestHookStartWriter(t *testing.T) {
	t.Parallel()
	h := &opTracer{}
	seen := &opHeaders{}
	srv := testserver.New(testserver.WithMiddleware(seen.middleware))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL(), WithHooks(h))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	ctx := ctxT(t, 10*time.Second)
	createJSON(t, c, "s")

	srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodPost, Status: 503, Count: 1})
	w, err := NewWriter(c, "s", JSONCodec[event]{}, WithRetry(writerRetry()), WithLinger(0))
	require.NoError(t, err)
	var offs []Offset
	for i := range 3 {
		off, err := w.WriteSync(ctx, event{N: i})
		require.NoError(t, err)
		offs = append(offs, off)
	}
	require.NoError(t, w.Close(ctx))

	h.mu2.Lock()
	starts := h.starts
	h.mu2.Unlock()
	require.Len(t, starts, 3)
	for i, ev := range starts {
		require.Equal(t, "write", ev.Op)
		require.Equal(t, srv.StreamURL("s"), ev.Stream)
		require.Equal(t, w.Producer().ID, ev.Producer.ID)
		require.Equal(t, int64(i), ev.Producer.Seq)
		require.Equal(t, 1, ev.Messages)
		require.Positive(t, ev.Bytes)
		require.GreaterOrEqual(t, ev.Buffered, ev.Messages, "the batch is in the buffer until it lands")
		require.GreaterOrEqual(t, ev.BufferedBytes, ev.Bytes-2, "its messages are (a JSON batch adds its brackets)")
	}
	require.Equal(t, []string{"write-1", "write-1", "write-2", "write-3"}, seen.get(http.MethodPost),
		"the faulted first batch was sent twice, each time with its header")

	h.mu.Lock()
	defer h.mu.Unlock()
	require.Len(t, h.batches, 3)
	for i, ev := range h.batches {
		require.Equal(t, fmt.Sprintf("write-%d", i+1), opName(ev.Context))
		want := 1
		if i == 0 {
			want = 2 // the 503, then the retry
		}
		require.Equal(t, want, ev.Attempts, "batch %d", i)
		require.Equal(t, offs[i], ev.Offset)
		require.Zero(t, ev.Buffered, "written synchronously: nothing else is buffered once a batch lands")
		require.Zero(t, ev.BufferedBytes)
	}
	require.Len(t, h.retries, 2, "the retry and the end of its outage")
	require.Equal(t, "write-1", opName(h.retries[0].Context))
	require.Equal(t, "write-1", opName(h.retries[1].Context))
	require.True(t, h.retries[1].Recovered)
	var writes []string
	for _, ev := range h.requests {
		if ev.Method == http.MethodPost {
			writes = append(writes, opName(ev.Context))
			require.Equal(t, h.batches[0].Bytes, ev.Bytes, "the request body is the batch's")
		}
	}
	require.Equal(t, []string{"write-1", "write-1", "write-2", "write-3"}, writes)
}

// TestHookStartReader: every read of a Reader (catch-up GETs, read-aheads
// and long-polls; SSE events) starts with OnStart and ends with OnFetch,
// whose offsets chain from one read to the next and whose bytes add up to
// the stream's; a failed read and its retry are told apart by Attempt; the
// requests carry the hook's header.
func TestHookStartReader(t *testing.T) {
	t.Parallel()
	for _, mode := range []LiveMode{LiveLongPoll, LiveSSE} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			h := &opTracer{}
			seen := &opHeaders{}
			srv := testserver.New(testserver.WithMiddleware(seen.middleware), testserver.WithChunkLimit(64))
			t.Cleanup(srv.Close)
			c, err := NewClient(srv.URL(), WithRetry(fastRetry()), WithHooks(h))
			require.NoError(t, err)
			t.Cleanup(c.CloseIdleConnections)
			ctx := ctxT(t, 10*time.Second)
			createJSON(t, c, "s")
			var size int
			for i := range 10 {
				body := fmt.Sprintf(`{"n":%d,"pad":"%s"}`, i, strings.Repeat("x", 20))
				size += len(body)
				_, err := c.Append(ctx, "s", []byte(body), AppendOptions{ContentType: "application/json"})
				require.NoError(t, err)
			}
			srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: 503, Count: 1})

			r, err := NewReader(c, "s", JSONCodec[event]{}, WithLive(mode), WithRetry(fastRetry()), WithManualCommit())
			require.NoError(t, err)
			for range 10 {
				_, err := r.Next(ctx)
				require.NoError(t, err)
			}
			// Wait for the reads to reach the tail, then stop.
			require.Eventually(t, func() bool {
				h.mu2.Lock()
				defer h.mu2.Unlock()
				for _, ev := range h.fetches {
					if ev.UpToDate {
						return true
					}
				}
				return false
			}, 5*time.Second, 5*time.Millisecond)
			require.NoError(t, r.Close(ctx))

			h.mu2.Lock()
			defer h.mu2.Unlock()
			require.NotEmpty(t, h.fetches)
			require.Len(t, h.starts, len(h.fetches), "every read that started ended")
			off, bytes, failed := Offset("-1"), 0, 0
			for i, ev := range h.fetches {
				require.Equal(t, srv.StreamURL("s"), ev.Stream)
				require.Equal(t, "/v1/stream/s", ev.Key)
				require.Equal(t, fmt.Sprintf("read-%d", i+1), opName(ev.Context), "reads end in the order they start")
				require.Equal(t, h.starts[i].Offset, ev.Offset)
				require.Equal(t, off, ev.Offset, "read %d starts where the last ended", i)
				if ev.Err != nil {
					failed++
					require.Equal(t, 1, ev.Attempt)
					require.ErrorIs(t, ev.Err, ErrServer)
					continue
				}
				if failed == 1 && i == 1 {
					require.Equal(t, 2, ev.Attempt, "the read after the failure is its retry")
				}
				off = ev.NextOffset
				bytes += ev.Bytes
				if ev.UpToDate {
					break
				}
			}
			require.Equal(t, 1, failed)
			if mode == LiveLongPoll {
				require.Greater(t, bytes, size, "JSON framing of the chunks (the array brackets and commas) counts too")
			} else {
				require.Positive(t, bytes)
			}
			h.mu.Lock()
			ups := h.upToDate
			h.mu.Unlock()
			require.GreaterOrEqual(t, len(ups), 2)
			require.Equal(t, UpToDateEvent{Stream: srv.StreamURL("s"), Key: "/v1/stream/s", UpToDate: true, Offset: ups[0].Offset}, ups[0])
			last := ups[len(ups)-1]
			require.Equal(t, UpToDateEvent{Stream: srv.StreamURL("s"), Key: "/v1/stream/s", Offset: last.Offset, Closed: true}, last, "Close is reported")
			gets := seen.get(http.MethodGet)
			require.NotEmpty(t, gets)
			for _, g := range gets {
				require.True(t, strings.HasPrefix(g, "read-"), "every GET carries its read's header: %q", gets)
			}
		})
	}
}

// TestHookStartNil: a start hook returning nil keeps the context.
func TestHookStartNil(t *testing.T) {
	t.Parallel()
	var s hookSet
	require.NoError(t, s.add(nilStart{}))
	ctx := context.WithValue(context.Background(), opNameKey{}, "caller")
	require.Equal(t, "caller", opName(s.start(ctx, StartEvent{Op: "read"})))
}

type nilStart struct{}

func (nilStart) OnStart(context.Context, StartEvent) context.Context { return nil }

// TestLogRequestsAndLoss: Debug shows each request (redacted); a lost
// batch and a fenced Writer are logged at Error.
func TestLogRequestsAndLoss(t *testing.T) {
	t.Parallel()
	log := &relLog{}
	srv := testserver.New()
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL(), WithLogger(log.logger()))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	ctx := ctxT(t, 10*time.Second)
	createJSON(t, c, "s")
	require.Contains(t, log.String(), `level=DEBUG msg="durable: request" op=create method=PUT url=`+srv.StreamURL("s")+" status=201 attempt=1")

	// A zombie: a second Writer with the same producer ID and a higher
	// epoch fences the first.
	old, err := NewWriter(c, "s", JSONCodec[event]{}, WithProducerID("p"), WithLinger(0))
	require.NoError(t, err)
	_, err = old.WriteSync(ctx, event{N: 1})
	require.NoError(t, err)
	newer, err := NewWriter(c, "s", JSONCodec[event]{}, WithProducerID("p"), WithEpoch(1), WithLinger(0))
	require.NoError(t, err)
	_, err = newer.WriteSync(ctx, event{N: 2})
	require.NoError(t, err)
	require.NoError(t, newer.Close(ctx))
	_, err = old.WriteSync(ctx, event{N: 3})
	require.ErrorIs(t, err, ErrStaleEpoch)
	require.Error(t, old.Close(ctx))
	require.Contains(t, log.String(), `level=ERROR msg="durable: writer fenced by a newer producer epoch; its batch is lost" url=`+srv.StreamURL("s")+" producer=p server_epoch=1")

	// A batch lost to a permanent failure.
	lost, err := NewWriter(c, "missing", JSONCodec[event]{}, WithLinger(0))
	require.NoError(t, err)
	_, err = lost.WriteSync(ctx, event{N: 1})
	require.ErrorIs(t, err, ErrNotFound)
	require.Error(t, lost.Close(ctx))
	require.Contains(t, log.String(), `level=ERROR msg="durable: writer lost a batch" url=`+srv.StreamURL("missing"))
	require.True(t, errors.Is(err, ErrNotFound))
}
