package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// Writer behaviour against the real in-process testserver.

// writerRetry retries fast and without jitter so tests stay quick.
func writerRetry() RetryPolicy {
	return RetryPolicy{Initial: time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2, MaxElapsed: 20 * time.Second}
}

// wEnv is a testserver, a Client on it and one created stream.
type wEnv struct {
	srv    *testserver.Server
	c      *Client
	stream string
}

func newWEnv(t *testing.T, contentType string, sopts ...testserver.Option) *wEnv {
	t.Helper()
	srv := testserver.New(sopts...)
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.StreamURL(""), WithRetry(writerRetry()))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	_, err = c.Create(context.Background(), "s", CreateOptions{ContentType: contentType})
	require.NoError(t, err)
	return &wEnv{srv: srv, c: c, stream: "s"}
}

// hooked returns e with a Client of its own that reports to hooks.
func (e *wEnv) hooked(t *testing.T, hooks ...any) *wEnv {
	t.Helper()
	c, err := NewClient(e.srv.StreamURL(""), WithRetry(writerRetry()), WithHooks(hooks...))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	cp := *e
	cp.c = c
	return &cp
}

// newTestWriter opens a Writer with the codec of T (codecOf) and fast
// test defaults before opts, closed at cleanup with a cancelled context if
// the test has not closed it.
func newTestWriter[T any](t *testing.T, e *wEnv, opts ...Option) *Writer[T] {
	t.Helper()
	return newCodecWriter(t, e, codecOf[T](), opts...)
}

// newCodecWriter is newTestWriter with the codec given.
func newCodecWriter[T any](t *testing.T, e *wEnv, codec Codec[T], opts ...Option) *Writer[T] {
	t.Helper()
	all := withDefaults([]Option{WithLinger(time.Millisecond), WithRetry(writerRetry())}, opts...)
	w, err := NewWriter(e.c, e.stream, codec, all...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = w.Close(ctx)
	})
	return w
}

// readJSON reads the whole stream and returns its messages.
func (e *wEnv) readJSON(t *testing.T) ([]json.RawMessage, bool) {
	t.Helper()
	var out []json.RawMessage
	off := OffsetStart
	for {
		ch, err := e.c.Read(context.Background(), e.stream, ReadOptions{Offset: off})
		require.NoError(t, err)
		var msgs []json.RawMessage
		require.NoError(t, json.Unmarshal(ch.Data, &msgs))
		out = append(out, msgs...)
		off = ch.NextOffset
		if ch.UpToDate || ch.Closed {
			return out, ch.Closed
		}
	}
}

func (e *wEnv) readBytes(t *testing.T) []byte {
	t.Helper()
	var out []byte
	off := OffsetStart
	for {
		ch, err := e.c.Read(context.Background(), e.stream, ReadOptions{Offset: off})
		require.NoError(t, err)
		out = append(out, ch.Data...)
		off = ch.NextOffset
		if ch.UpToDate || ch.Closed {
			return out
		}
	}
}

func (e *wEnv) posts() int { return e.srv.Requests(e.stream, http.MethodPost) }

type wevent struct {
	W int `json:"w"`
	N int `json:"n"`
}

func TestWriterJSONRoundTrip(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w := newTestWriter[wevent](t, e)
	ctx := context.Background()

	for i := range 10 {
		require.NoError(t, w.Write(ctx, wevent{N: i}))
	}
	// A message that is itself an array stays one message.
	a, err := w.WriteAsync(ctx, wevent{N: 10})
	require.NoError(t, err)
	require.NoError(t, w.Flush(ctx))
	off, err := a.Wait(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, off)
	select {
	case <-a.Done():
	default:
		t.Fatal("Done not closed after Wait")
	}
	requireAcked(t, w, off)

	msgs, closed := e.readJSON(t)
	require.False(t, closed)
	require.Len(t, msgs, 11)
	for i, m := range msgs {
		require.JSONEq(t, fmt.Sprintf(`{"w":0,"n":%d}`, i), string(m))
	}
	info, err := e.c.Head(ctx, e.stream)
	require.NoError(t, err)
	requireAcked(t, w, info.NextOffset)
	require.NoError(t, w.Close(ctx))
	require.ErrorIs(t, w.Write(ctx, wevent{}), ErrClosed)
	require.NoError(t, w.Close(ctx), "Close again returns the same result")
}

func TestWriterArrayMessagesStayWhole(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w := newTestWriter[[]int](t, e, WithContentType("application/json"))
	ctx := context.Background()
	require.NoError(t, w.Write(ctx, []int{1, 2}))
	require.NoError(t, w.Write(ctx, []int{3}))
	require.NoError(t, w.Close(ctx))
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, 2)
	require.JSONEq(t, `[1,2]`, string(msgs[0]))
	require.JSONEq(t, `[3]`, string(msgs[1]))
}

func TestWriterBytes(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/octet-stream")
	w := newTestWriter[[]byte](t, e)
	ctx := context.Background()
	for i := range 100 {
		require.NoError(t, w.Write(ctx, []byte{byte(i)}))
	}
	off, err := w.WriteSync(ctx, []byte("end"))
	require.NoError(t, err)
	require.NotEmpty(t, off)
	require.ErrorIs(t, w.Write(ctx, nil), ErrInvalidArgument, "an empty byte message is refused")
	require.NoError(t, w.Close(ctx))
	got := e.readBytes(t)
	require.Len(t, got, 103)
	for i := range 100 {
		require.Equal(t, byte(i), got[i])
	}
	require.Equal(t, "end", string(got[100:]))
}

// TestWriterExactlyOnceUnderFaults is the headline guarantee: several
// writers, random 500/503/429, dropped connections and truncated responses
// (some after the append was applied), and still every message lands
// exactly once and in its writer's order.
func TestWriterExactlyOnceUnderFaults(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	const writers, perWriter = 4, 2500
	for _, f := range []testserver.Fault{
		{Method: http.MethodPost, Status: http.StatusInternalServerError, Probability: 0.04},
		{Method: http.MethodPost, Status: http.StatusServiceUnavailable, Probability: 0.04},
		{Method: http.MethodPost, Status: http.StatusTooManyRequests, Probability: 0.04},
		{Method: http.MethodPost, Status: http.StatusInternalServerError, AfterApply: true, Probability: 0.04},
		{Method: http.MethodPost, Drop: true, Probability: 0.04},
		{Method: http.MethodPost, Drop: true, AfterApply: true, Probability: 0.04},
		{Method: http.MethodPost, Truncate: true, AfterApply: true, Probability: 0.04},
		{Method: http.MethodPost, Truncate: true, Probability: 0.04},
	} {
		e.srv.InjectFault(f)
	}
	var hooks countingHooks
	he := e.hooked(t, &hooks)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for wi := range writers {
		w := newTestWriter[wevent](t, he, WithMaxBatch(40, 1<<20), WithMaxInFlight(4))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range perWriter {
				if err := w.Write(ctx, wevent{W: wi, N: n}); err != nil {
					errs[wi] = err
					return
				}
			}
			errs[wi] = w.Close(ctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	e.srv.ClearFaults()

	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, writers*perWriter, "exactly once")
	next := make([]int, writers)
	for _, m := range msgs {
		var ev wevent
		require.NoError(t, json.Unmarshal(m, &ev))
		require.Equal(t, next[ev.W], ev.N, "writer %d out of order", ev.W)
		next[ev.W]++
	}
	t.Logf("%d batches, %d retries, %d POSTs", hooks.batches.Load(), hooks.retries.Load(), e.posts())
	require.Positive(t, hooks.retries.Load(), "faults were injected and retried")
	require.Equal(t, int64(writers*perWriter), hooks.messages.Load())
	require.Zero(t, hooks.failed.Load())
}

type countingHooks struct {
	batches, messages, bytes, retries, failed atomic.Int64
}

func (h *countingHooks) OnBatch(ev BatchEvent) {
	h.batches.Add(1)
	if ev.Err != nil {
		h.failed.Add(1)
		return
	}
	h.messages.Add(int64(ev.Messages))
	h.bytes.Add(int64(ev.Bytes))
}

func (h *countingHooks) OnRetry(RetryEvent) { h.retries.Add(1) }

func TestWriterBatchesRequests(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w := newTestWriter[wevent](t, e)
	ctx := context.Background()
	const n = 10000
	for i := range n {
		require.NoError(t, w.Write(ctx, wevent{N: i}))
	}
	require.NoError(t, w.Close(ctx))
	posts := e.posts()
	t.Logf("%d messages in %d POSTs", n, posts)
	require.Less(t, posts, n/50, "batching: far fewer requests than messages")
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, n)
}

func TestWriterPipelineKeepsOrder(t *testing.T) {
	t.Parallel()
	for _, ordering := range []bool{false, true} {
		t.Run(map[bool]string{false: "first-come server: gaps resent", true: "ordering server"}[ordering], func(t *testing.T) {
			t.Parallel()
			e := newWEnv(t, "application/json", testserver.WithProducerOrdering(ordering, testserver.DefaultOrderGrace))
			// Random delays make later batches overtake earlier ones; a
			// first-come server answers them with a sequence gap and the
			// Writer resends in order; an ordering one holds them back.
			e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Delay: 15 * time.Millisecond, Probability: 0.3})
			w := newTestWriter[wevent](t, e, WithMaxInFlight(8), WithMaxBatch(5, 1<<20), WithLinger(0))
			ctx := context.Background()
			const n = 1000
			for i := range n {
				require.NoError(t, w.Write(ctx, wevent{N: i}))
			}
			require.NoError(t, w.Close(ctx))
			msgs, _ := e.readJSON(t)
			require.Len(t, msgs, n)
			for i, m := range msgs {
				var ev wevent
				require.NoError(t, json.Unmarshal(m, &ev))
				require.Equal(t, i, ev.N)
			}
			t.Logf("%d POSTs for %d messages", e.posts(), n)
		})
	}
}

func TestWriterFlushReportsLoss(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		setup func(t *testing.T, e *wEnv)
		want  error
	}{
		{"server error until retries give up", func(t *testing.T, e *wEnv) {
			e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Status: http.StatusInternalServerError})
		}, ErrServer},
		{"stream deleted", func(t *testing.T, e *wEnv) {
			require.NoError(t, e.c.Delete(context.Background(), e.stream))
		}, ErrNotFound},
		{"stream closed", func(t *testing.T, e *wEnv) {
			_, err := e.c.CloseStream(context.Background(), e.stream, nil, AppendOptions{})
			require.NoError(t, err)
		}, ErrStreamClosed},
		{"content type mismatch", func(t *testing.T, e *wEnv) {
			require.NoError(t, e.c.Delete(context.Background(), e.stream))
			_, err := e.c.Create(context.Background(), e.stream, CreateOptions{ContentType: "text/plain"})
			require.NoError(t, err)
		}, ErrContentTypeMismatch},
		{"payload too large", func(t *testing.T, e *wEnv) {
			e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Status: http.StatusRequestEntityTooLarge})
		}, ErrStatus},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newWEnv(t, "application/json")
			tc.setup(t, e)
			short := writerRetry()
			short.MaxElapsed = 50 * time.Millisecond
			w := newTestWriter[wevent](t, e, WithRetry(short))
			ctx := context.Background()
			a, err := w.WriteAsync(ctx, wevent{N: 1})
			require.NoError(t, err)
			err = w.Flush(ctx)
			require.ErrorIs(t, err, tc.want)
			var de *Error
			require.ErrorAs(t, err, &de)
			_, aerr := a.Wait(ctx)
			require.ErrorIs(t, aerr, tc.want, "the message's Ack reports the loss")
			require.ErrorIs(t, w.Write(ctx, wevent{N: 2}), tc.want, "sticky")
			require.ErrorIs(t, w.Flush(ctx), tc.want, "never nil after a loss")
			require.ErrorIs(t, w.Close(ctx), tc.want)
		})
	}
}

func TestWriterFencedByNewerEpoch(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	ctx := context.Background()
	old := newTestWriter[wevent](t, e, WithProducerID("worker"), WithEpoch(0))
	_, err := old.WriteSync(ctx, wevent{N: 1})
	require.NoError(t, err)

	newer := newTestWriter[wevent](t, e, WithProducerID("worker"), WithEpoch(1))
	_, err = newer.WriteSync(ctx, wevent{N: 2})
	require.NoError(t, err)

	err = old.Write(ctx, wevent{N: 3})
	require.NoError(t, err)
	err = old.Flush(ctx)
	require.ErrorIs(t, err, ErrStaleEpoch)
	var de *Error
	require.ErrorAs(t, err, &de)
	require.Equal(t, int64(1), de.ServerEpoch)

	before := e.posts()
	require.ErrorIs(t, old.Write(ctx, wevent{N: 4}), ErrStaleEpoch)
	require.ErrorIs(t, old.CloseStream(ctx), ErrStaleEpoch)
	require.ErrorIs(t, old.Close(ctx), ErrStaleEpoch)
	require.Equal(t, before, e.posts(), "a fenced writer sends nothing more")

	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, 2)
	require.NoError(t, newer.Close(ctx))
}

func TestWriterEpochStoreFencesZombie(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	ctx := context.Background()
	store := newMemStore()

	zombie := newTestWriter[wevent](t, e, WithProducerID("job"), WithEpochStore(store))
	_, err := zombie.WriteSync(ctx, wevent{N: 1})
	require.NoError(t, err)
	require.Equal(t, int64(0), zombie.Producer().Epoch)

	// The restarted worker loads epoch 0 and claims 1 before sending.
	restarted := newTestWriter[wevent](t, e, WithProducerID("job"), WithEpochStore(store))
	_, err = restarted.WriteSync(ctx, wevent{N: 2})
	require.NoError(t, err)
	require.Equal(t, int64(1), restarted.Producer().Epoch)
	ep, ok, err := store.LoadEpoch(ctx, "job")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(1), ep)

	_, err = zombie.WriteSync(ctx, wevent{N: 3})
	require.ErrorIs(t, err, ErrStaleEpoch)
	require.NoError(t, restarted.Close(ctx))

	// WithEpoch above the stored one wins.
	third := newTestWriter[wevent](t, e, WithProducerID("job"), WithEpochStore(store), WithEpoch(7))
	_, err = third.WriteSync(ctx, wevent{N: 4})
	require.NoError(t, err)
	require.Equal(t, int64(7), third.Producer().Epoch)
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, 3)
}

func TestWriterAutoClaim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	seed := func(t *testing.T, e *wEnv) {
		_, err := e.c.Append(ctx, e.stream, []byte(`[0]`), AppendOptions{ContentType: "application/json",
			Producer: &Producer{ID: "eph", Epoch: 5, Seq: 0}})
		require.NoError(t, err)
	}
	t.Run("claims above the server's epoch", func(t *testing.T) {
		t.Parallel()
		e := newWEnv(t, "application/json")
		seed(t, e)
		store := newMemStore()
		w := newTestWriter[int](t, e, WithProducerID("eph"), WithAutoClaim(), WithEpochStore(store))
		_, err := w.WriteSync(ctx, 1)
		require.NoError(t, err)
		require.Equal(t, int64(6), w.Producer().Epoch)
		ep, _, _ := store.LoadEpoch(ctx, "eph")
		require.Equal(t, int64(6), ep)
		for i := 2; i < 50; i++ {
			require.NoError(t, w.Write(ctx, i))
		}
		require.NoError(t, w.Close(ctx))
		msgs, _ := e.readJSON(t)
		require.Len(t, msgs, 50)
	})
	t.Run("without auto-claim the stale epoch is an error", func(t *testing.T) {
		t.Parallel()
		e := newWEnv(t, "application/json")
		seed(t, e)
		w := newTestWriter[int](t, e, WithProducerID("eph"))
		_, err := w.WriteSync(ctx, 1)
		require.ErrorIs(t, err, ErrStaleEpoch)
	})
}

func TestWriterProducerReused(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	ctx := context.Background()
	first := newTestWriter[int](t, e, WithProducerID("same"))
	_, err := first.WriteSync(ctx, 1)
	require.NoError(t, err)
	// Same ID and epoch: the server would call the new batch a duplicate
	// and drop it; the Writer must say so instead of acknowledging it.
	second := newTestWriter[int](t, e, WithProducerID("same"))
	_, err = second.WriteSync(ctx, 2)
	require.ErrorIs(t, err, ErrProducerReused)
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, 1)
}

func TestWriterCloseCancelledContext(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Delay: time.Minute})
	w := newTestWriter[wevent](t, e)
	ctx := context.Background()
	a, err := w.WriteAsync(ctx, wevent{N: 1})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e.posts() == 1 }, 5*time.Second, time.Millisecond)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	start := time.Now()
	err = w.Close(cctx)
	require.Less(t, time.Since(start), time.Second, "Close returns promptly")
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, err, context.Canceled)
	_, aerr := a.Wait(ctx)
	require.ErrorIs(t, aerr, ErrClosed)
	select {
	case <-w.p.stopped:
	default:
		t.Fatal("pipeline not stopped after Close")
	}
}

func TestWriterCloseDeadlineAbandonsQueued(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Delay: time.Minute})
	w := newTestWriter[wevent](t, e, WithMaxBatch(2, 1<<20), WithMaxInFlight(1))
	ctx := context.Background()
	for i := range 10 {
		require.NoError(t, w.Write(ctx, wevent{N: i}))
	}
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := w.Close(dctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, w.Flush(ctx), ErrClosed)
}

func TestWriterBufferBounds(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	// Nothing completes: the buffer fills up.
	e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Delay: time.Minute})
	w := newTestWriter[int](t, e, WithBuffer(10, 8<<20), WithMaxBatch(5, 1<<20), WithMaxInFlight(1))
	ctx := context.Background()
	for i := range 10 {
		require.NoError(t, w.TryWrite(i))
	}
	require.ErrorIs(t, w.TryWrite(10), ErrBufferFull)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, w.Write(tctx, 10), context.DeadlineExceeded, "Write blocks and honours ctx")

	// A blocked Write is released by Close.
	done := make(chan error, 1)
	go func() { done <- w.Write(ctx, 11) }()
	cctx, ccancel := context.WithCancel(ctx)
	ccancel()
	_ = w.Close(cctx)
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("blocked Write not released by Close")
	}
}

func TestWriterBufferBytes(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/octet-stream")
	e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Delay: time.Minute})
	w := newTestWriter[[]byte](t, e, WithBuffer(8192, 100), WithMaxBatch(1000, 50))
	require.NoError(t, w.TryWrite(make([]byte, 50)))
	require.NoError(t, w.TryWrite(make([]byte, 50)))
	require.ErrorIs(t, w.TryWrite([]byte{1}), ErrBufferFull)
}

func TestWriterMessageTooLarge(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w := newTestWriter[string](t, e, WithMaxBatch(1000, 64))
	ctx := context.Background()
	big := string(make([]byte, 100))
	err := w.Write(ctx, big)
	require.ErrorIs(t, err, ErrMessageTooLarge)
	_, err = w.WriteSync(ctx, big)
	require.ErrorIs(t, err, ErrMessageTooLarge)
	require.Zero(t, e.posts(), "nothing sent")
	// Not sticky: the writer still works.
	_, err = w.WriteSync(ctx, "ok")
	require.NoError(t, err)
	require.NoError(t, w.Close(ctx))
}

// badJSON is a codec whose output for negative numbers is not JSON.
type badJSON struct{}

func (badJSON) Append(dst []byte, v int) ([]byte, error) {
	if v < 0 {
		return append(dst, "{oops"...), nil
	}
	return fmt.Appendf(dst, "%d", v), nil
}
func (badJSON) Decode(data []byte, v *int) error { return json.Unmarshal(data, v) }

func TestWriterBadEncodingFailsOnlyItsWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("encoding/json error", func(t *testing.T) {
		t.Parallel()
		e := newWEnv(t, "application/json")
		w := newTestWriter[float64](t, e, WithLinger(time.Hour))
		require.NoError(t, w.Write(ctx, 1))
		require.ErrorIs(t, w.Write(ctx, math.Inf(1)), ErrEncode)
		require.NoError(t, w.Write(ctx, 2))
		require.NoError(t, w.Close(ctx))
		msgs, _ := e.readJSON(t)
		require.Equal(t, []json.RawMessage{json.RawMessage("1"), json.RawMessage("2")}, msgs)
		require.Equal(t, 1, e.posts(), "one batch")
	})
	t.Run("custom codec output is not JSON", func(t *testing.T) {
		t.Parallel()
		e := newWEnv(t, "application/json")
		w := newCodecWriter[int](t, e, badJSON{}, WithLinger(time.Hour))
		require.NoError(t, w.Write(ctx, 1))
		require.ErrorIs(t, w.Write(ctx, -1), ErrEncode)
		require.NoError(t, w.Write(ctx, 2))
		require.NoError(t, w.Close(ctx))
		msgs, _ := e.readJSON(t)
		require.Equal(t, []json.RawMessage{json.RawMessage("1"), json.RawMessage("2")}, msgs)
	})
}

func TestWriterWriteSyncSkipsLinger(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w := newTestWriter[int](t, e, WithLinger(time.Hour))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	off, err := w.WriteSync(ctx, 1)
	require.NoError(t, err)
	requireAcked(t, w, off)
	// Flush skips it too.
	require.NoError(t, w.Write(ctx, 2))
	require.NoError(t, w.Flush(ctx))
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, 2)
}

func TestWriterRetryAfterFloor(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Status: http.StatusTooManyRequests, RetryAfter: time.Second, Count: 1})
	w := newTestWriter[int](t, e)
	start := time.Now()
	_, err := w.WriteSync(context.Background(), 1)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	require.Equal(t, 2, e.posts())
}

func TestWriterCloseStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("final message, idempotent", func(t *testing.T) {
		t.Parallel()
		e := newWEnv(t, "application/json")
		w := newTestWriter[wevent](t, e, WithLinger(time.Hour))
		for i := range 3 {
			require.NoError(t, w.Write(ctx, wevent{N: i}))
		}
		require.NoError(t, w.CloseStream(ctx, wevent{N: 3}))
		require.NoError(t, w.CloseStream(ctx, wevent{N: 99}), "idempotent")
		require.ErrorIs(t, w.Write(ctx, wevent{N: 4}), ErrStreamClosed)
		require.NoError(t, w.Close(ctx))
		msgs, closed := e.readJSON(t)
		require.True(t, closed)
		require.Len(t, msgs, 4)
		require.JSONEq(t, `{"w":0,"n":3}`, string(msgs[3]))
	})
	t.Run("close only, lost response retried", func(t *testing.T) {
		t.Parallel()
		e := newWEnv(t, "application/json")
		e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Drop: true, AfterApply: true, Count: 1})
		w := newTestWriter[wevent](t, e)
		require.NoError(t, w.CloseStream(ctx))
		require.NoError(t, w.CloseStream(ctx))
		_, closed := e.readJSON(t)
		require.True(t, closed)
	})
	t.Run("final message with lost response is not duplicated", func(t *testing.T) {
		t.Parallel()
		e := newWEnv(t, "application/json")
		e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Truncate: true, AfterApply: true, Count: 1})
		w := newTestWriter[wevent](t, e)
		require.NoError(t, w.CloseStream(ctx, wevent{N: 7}))
		msgs, closed := e.readJSON(t)
		require.True(t, closed)
		require.Len(t, msgs, 1)
	})
	t.Run("already closed by someone else", func(t *testing.T) {
		t.Parallel()
		e := newWEnv(t, "application/json")
		_, err := e.c.CloseStream(ctx, e.stream, nil, AppendOptions{})
		require.NoError(t, err)
		w := newTestWriter[wevent](t, e)
		require.NoError(t, w.CloseStream(ctx), "closing a closed stream is fine")
		w2 := newTestWriter[wevent](t, e)
		require.ErrorIs(t, w2.CloseStream(ctx, wevent{N: 1}), ErrStreamClosed, "a final message cannot land")
	})
}

func TestWriterHooksAndConcurrentWriters(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	var hooks countingHooks
	w := newTestWriter[wevent](t, e.hooked(t, &hooks), WithMaxBatch(16, 1<<20))
	ctx := context.Background()
	var wg sync.WaitGroup
	const goroutines, per = 8, 200
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range per {
				if n%50 == 0 {
					_, err := w.WriteSync(ctx, wevent{W: g, N: n})
					require.NoError(t, err)
					continue
				}
				require.NoError(t, w.Write(ctx, wevent{W: g, N: n}))
			}
		}()
	}
	wg.Wait()
	require.NoError(t, w.Close(ctx))
	require.Equal(t, int64(goroutines*per), hooks.messages.Load())
	require.GreaterOrEqual(t, int64(e.posts()), hooks.batches.Load(), "gap resends add requests")
	msgs, _ := e.readJSON(t)
	next := make([]int, goroutines)
	for _, m := range msgs {
		var ev wevent
		require.NoError(t, json.Unmarshal(m, &ev))
		require.Equal(t, next[ev.W], ev.N)
		next[ev.W]++
	}
}

func TestNewWriterValidation(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	cases := []struct {
		name string
		opt  Option
	}{
		{"zero option", Option{}},
		{"client option", WithRequestTimeout(time.Second)},
		{"reader option", WithManualCommit()},
		{"empty producer ID", WithProducerID("")},
		{"control char in producer ID", WithProducerID("a\nb")},
		{"negative epoch", WithEpoch(-1)},
		{"epoch too large", WithEpoch(1 << 53)},
		{"nil epoch store", WithEpochStore(nil)},
		{"epoch store without producer ID", WithEpochStore(newMemStore())},
		{"empty content type", WithContentType("")},
		{"zero batch messages", WithMaxBatch(0, 1<<20)},
		{"tiny batch bytes", WithMaxBatch(1000, 8)},
		{"negative linger", WithLinger(-time.Millisecond)},
		{"zero in flight", WithMaxInFlight(0)},
		{"buffer below batch", WithBuffer(10, 8<<20)},
		{"buffer bytes below batch", WithBuffer(8192, 1024)},
		{"bad retry", WithRetry(RetryPolicy{})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewWriter(e.c, e.stream, JSONCodec[int]{}, tc.opt)
			require.ErrorIs(t, err, ErrInvalidArgument)
		})
	}
	_, err := NewWriter(nil, "s", JSONCodec[int]{})
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = NewWriter[int](e.c, e.stream, nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = NewWriter(e.c, "", JSONCodec[int]{})
	require.ErrorIs(t, err, ErrInvalidArgument)
}

// requireAcked checks that the last batch w knows landed ended at off.
func requireAcked[T any](t *testing.T, w *Writer[T], off Offset) {
	t.Helper()
	last, ok := w.LastAcked()
	require.True(t, ok)
	require.Equal(t, off, last)
}

func TestWriterDefaults(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w, err := NewWriter(e.c, e.stream, JSONCodec[int]{})
	require.NoError(t, err)
	defer func() { require.NoError(t, w.Close(context.Background())) }()
	require.Len(t, w.Producer().ID, 32)
	require.Equal(t, "application/json", w.p.ct)
	require.Equal(t, defaultWriterLinger, w.p.cfg.linger)
	require.Equal(t, defaultWriterMaxInFlight, w.p.cfg.maxInFlight)
	require.Zero(t, w.Producer().Epoch)
	_, acked := w.LastAcked()
	require.False(t, acked, "no batch has landed")
	bw, err := NewWriter(e.c, e.stream, BytesCodec{})
	require.NoError(t, err)
	require.Equal(t, "application/octet-stream", bw.p.ct)
	require.NotEqual(t, w.Producer().ID, bw.Producer().ID)
	require.NoError(t, bw.Close(context.Background()))
	require.True(t, errors.Is(ErrBufferFull, ErrBufferFull))
}

func TestWriterRawJSONBytes(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w := newTestWriter[[]byte](t, e, WithContentType("application/json"), WithLinger(time.Hour))
	ctx := context.Background()
	require.NoError(t, w.Write(ctx, []byte(`{"a":1}`)))
	require.ErrorIs(t, w.Write(ctx, []byte(`{"a":`)), ErrEncode, "not one JSON value")
	require.ErrorIs(t, w.Write(ctx, []byte(`1 2`)), ErrEncode, "two JSON values")
	require.NoError(t, w.Write(ctx, []byte(` [2] `)))
	require.NoError(t, w.Close(ctx))
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, 2)
	require.JSONEq(t, `[2]`, string(msgs[1]))
}

func TestWriterAckWaitHonoursContext(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w := newTestWriter[int](t, e, WithLinger(time.Hour))
	a, err := w.WriteAsync(context.Background(), 1)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err = a.Wait(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "linger of an hour: still waiting")
	require.NoError(t, w.Close(context.Background()), "Close skips the linger")
	off, err := a.Wait(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, off)
}

func TestWriterConcurrentWriteAndClose(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w := newTestWriter[int](t, e, WithMaxBatch(7, 1<<20), WithBuffer(20, 8<<20))
	ctx := context.Background()
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if err := w.Write(ctx, g*100000+i); err != nil {
					require.ErrorIs(t, err, ErrClosed)
					return
				}
				accepted.Add(1)
			}
		}()
	}
	require.Eventually(t, func() bool { return accepted.Load() > 200 }, 5*time.Second, time.Millisecond)
	require.NoError(t, w.Close(ctx))
	wg.Wait()
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, int(accepted.Load()), "every accepted write landed")
}

type sizeHooks struct {
	mu    sync.Mutex
	sizes []int
}

func (h *sizeHooks) OnBatch(ev BatchEvent) {
	h.mu.Lock()
	h.sizes = append(h.sizes, ev.Bytes)
	h.mu.Unlock()
}

func TestWriterBatchByteBound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("bytes fill a batch exactly", func(t *testing.T) {
		t.Parallel()
		e := newWEnv(t, "application/octet-stream")
		var h sizeHooks
		w := newTestWriter[[]byte](t, e.hooked(t, &h), WithMaxBatch(1000, 100), WithBuffer(8192, 1000), WithLinger(time.Hour))
		for range 4 {
			require.NoError(t, w.Write(ctx, make([]byte, 50)))
		}
		require.NoError(t, w.Write(ctx, make([]byte, 30)))
		require.NoError(t, w.Close(ctx))
		require.ElementsMatch(t, []int{100, 100, 30}, h.sizes)
	})
	t.Run("json arrays stay within the bound", func(t *testing.T) {
		t.Parallel()
		e := newWEnv(t, "application/json")
		var h sizeHooks
		w := newTestWriter[string](t, e.hooked(t, &h), WithMaxBatch(1000, 64), WithBuffer(8192, 1000), WithLinger(time.Hour))
		const n = 50
		for i := range n {
			require.NoError(t, w.Write(ctx, fmt.Sprintf("%0*d", i%20, i)))
		}
		require.NoError(t, w.Close(ctx))
		for _, s := range h.sizes {
			require.LessOrEqual(t, s, 64)
		}
		msgs, _ := e.readJSON(t)
		require.Len(t, msgs, n)
	})
}

func TestWriterAttemptTimeoutRetried(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	c, err := NewClient(e.srv.StreamURL(""), WithRequestTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	// The first attempt hangs past the Client's timeout; the retry lands.
	e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Delay: time.Minute, Count: 1})
	w, err := NewWriter(c, e.stream, JSONCodec[int]{}, WithRetry(writerRetry()))
	require.NoError(t, err)
	_, err = w.WriteSync(context.Background(), 1)
	require.NoError(t, err)
	require.NoError(t, w.Close(context.Background()))
	// At least the hung attempt and its retry; on a loaded machine the retry
	// may time out too and be sent again. Either way the message lands once.
	require.GreaterOrEqual(t, e.posts(), 2)
	msgs, _ := e.readJSON(t)
	require.Len(t, msgs, 1)
}

// TestWriterNoStallAtInFlightLimit: a batch waiting for a free slot is
// sent when the slot frees, without another write or a Flush.
func TestWriterNoStallAtInFlightLimit(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	e.srv.InjectFault(testserver.Fault{Method: http.MethodPost, Delay: 50 * time.Millisecond, Count: 1})
	w := newTestWriter[int](t, e, WithMaxInFlight(1), WithLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a1, err := w.WriteAsync(ctx, 1)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return e.posts() == 1 }, 5*time.Second, time.Millisecond)
	a2, err := w.WriteAsync(ctx, 2) // waits for the only slot
	require.NoError(t, err)
	_, err = a1.Wait(ctx)
	require.NoError(t, err)
	_, err = a2.Wait(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, e.posts())
}

func TestWriterLingerSendsWithoutFlush(t *testing.T) {
	t.Parallel()
	e := newWEnv(t, "application/json")
	w := newTestWriter[int](t, e, WithLinger(20*time.Millisecond))
	ctx := context.Background()
	start := time.Now()
	a, err := w.WriteAsync(ctx, 1)
	require.NoError(t, err)
	require.NoError(t, w.Write(ctx, 2))
	_, err = a.Wait(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, "the batch waited for its linger")
	require.Equal(t, 1, e.posts(), "both messages in one batch")
}
