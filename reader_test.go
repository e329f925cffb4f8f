package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// event is the message type of the Reader tests.
type event struct {
	N int    `json:"n"`
	S string `json:"s,omitempty"`
}

// readerRetry is a fast retry schedule for Reader tests (forever).
func readerRetry() RetryPolicy {
	return RetryPolicy{Initial: time.Millisecond, Max: 10 * time.Millisecond, Multiplier: 2, Jitter: 0.2}
}

// liveModes are the live transports every behaviour is proven in.
var liveModes = []LiveMode{LiveLongPoll, LiveSSE}

func newReaderServer(t *testing.T, sopts ...testserver.Option) (*testserver.Server, *Client) {
	t.Helper()
	sopts = append([]testserver.Option{testserver.WithLongPollTimeout(300 * time.Millisecond), testserver.WithSSECloseInterval(2 * time.Second)}, sopts...)
	return newServer(t, sopts)
}

func createJSON(t *testing.T, c *Client, stream string) {
	t.Helper()
	_, err := c.Create(context.Background(), stream, CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
}

// newEventStream starts a reader test server with a JSON stream "s"
// holding events 0..n-1, and returns the stream's next offset.
func newEventStream(t *testing.T, n int, sopts ...testserver.Option) (*testserver.Server, *Client, Offset) {
	t.Helper()
	srv, c := newReaderServer(t, sopts...)
	createJSON(t, c, "s")
	return srv, c, appendEvents(t, c, "s", 0, n)
}

// appendEvents appends events n..n+k-1 as one batch and returns the next offset.
func appendEvents(t *testing.T, c *Client, stream string, from, k int) Offset {
	t.Helper()
	evs := make([]event, k)
	for i := range evs {
		evs[i] = event{N: from + i}
	}
	b, err := json.Marshal(evs)
	require.NoError(t, err)
	res, err := c.Append(context.Background(), stream, b, AppendOptions{ContentType: "application/json"})
	require.NoError(t, err)
	return res.NextOffset
}

func openReader[T any](t *testing.T, c *Client, stream string, opts ...Option) *Reader[T] {
	t.Helper()
	r, err := NewReader(c, stream, codecOf[T](), withDefaults([]Option{WithRetry(readerRetry())}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// nextEvent calls r.Next and requires it to return event want.
func nextEvent(t *testing.T, ctx context.Context, r *Reader[event], want int) Message[event] {
	t.Helper()
	m, err := r.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, want, m.Value.N)
	return m
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestReaderCatchUpThenLive(t *testing.T) {
	t.Parallel()
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			_, c, end1 := newEventStream(t, 3)
			r := openReader[event](t, c, "s", WithLive(mode))
			ctx := ctxT(t, 10*time.Second)
			for i := 0; i < 3; i++ {
				m := nextEvent(t, ctx, r, i)
				require.JSONEq(t, fmt.Sprintf(`{"n":%d}`, i), string(m.Data))
				if i == 2 {
					require.Equal(t, Position{Offset: string(end1)}, m.Position, "last of the batch normalised to the next offset")
				} else {
					require.Equal(t, Position{Offset: "-1", Skip: int64(i + 1)}, m.Position)
				}
			}
			// Live: appended while the reader waits.
			var end2 Offset
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(50 * time.Millisecond)
				end2 = appendEvents(t, c, "s", 3, 2)
			}()
			m := nextEvent(t, ctx, r, 3)
			m = nextEvent(t, ctx, r, 4)
			<-done
			require.Equal(t, string(end2), m.Position.Offset, "%s: the data's position is the offset AFTER it", mode)
			require.Equal(t, mode, r.Stats().Live)
			require.True(t, r.Stats().UpToDate)
		})
	}
}

func TestReaderClosedStreamEndsWithEOFWithoutLoop(t *testing.T) {
	t.Parallel()
	for _, mode := range []LiveMode{LiveLongPoll, LiveSSE, LiveAuto, LiveNone} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			srv, c, _ := newEventStream(t, 2)
			r := openReader[event](t, c, "s", WithLive(mode))
			ctx := ctxT(t, 10*time.Second)
			for i := 0; i < 2; i++ {
				nextEvent(t, ctx, r, i)
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			if mode == LiveNone {
				// Caught up first, then the stream is closed, then EOF.
				_, err := r.Next(ctx)
				require.ErrorIs(t, err, ErrCaughtUp)
				_, err = c.CloseStream(ctx, "s", nil, AppendOptions{})
				require.NoError(t, err)
			} else {
				// Closed while the live read waits.
				wg.Go(func() {
					time.Sleep(30 * time.Millisecond)
					_, _ = c.CloseStream(context.Background(), "s", nil, AppendOptions{})
				})
			}
			_, err := r.Next(ctx)
			require.Equal(t, io.EOF, err)
			require.True(t, r.Stats().StreamClosed)
			after := srv.Requests("s", http.MethodGet)
			for i := 0; i < 1000; i++ {
				_, err := r.Next(ctx)
				require.Equal(t, io.EOF, err)
			}
			require.Equal(t, after, srv.Requests("s", http.MethodGet), "no request after EOF")
		})
	}
}

func TestReaderNotFoundSurfacesAtOnce(t *testing.T) {
	t.Parallel()
	for _, mode := range []LiveMode{LiveLongPoll, LiveSSE, LiveNone} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			srv, c := newReaderServer(t)
			r := openReader[event](t, c, "missing", WithLive(mode))
			ctx := ctxT(t, 5*time.Second)
			start := time.Now()
			_, err := r.Next(ctx)
			require.ErrorIs(t, err, ErrNotFound)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, http.StatusNotFound, e.Status)
			require.Less(t, time.Since(start), time.Second)
			for i := 0; i < 100; i++ {
				_, err = r.Next(ctx)
				require.ErrorIs(t, err, ErrNotFound, "sticky")
			}
			require.Equal(t, 1, srv.Requests("missing", ""), "one request, no retry loop")
		})
	}
}

func TestReaderDeletedWhileLive(t *testing.T) {
	t.Parallel()
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			_, c, _ := newEventStream(t, 1)
			r := openReader[event](t, c, "s", WithLive(mode))
			ctx := ctxT(t, 10*time.Second)
			_, err := r.Next(ctx)
			require.NoError(t, err)
			go func() {
				time.Sleep(50 * time.Millisecond)
				_ = c.Delete(context.Background(), "s")
			}()
			_, err = r.Next(ctx)
			require.Error(t, err)
			require.True(t, errors.Is(err, ErrNotFound) || errors.Is(err, ErrGone), "%v", err)
		})
	}
}

// TestReaderMessagesGoesOnAfterDecodeError: a caller that continues past
// a *DecodeError gets the messages after it (before, the loop ended
// silently), and a fatal error ends the loop.
func TestReaderMessagesGoesOnAfterDecodeError(t *testing.T) {
	t.Parallel()
	srv, c := newReaderServer(t)
	ctx := ctxT(t, 10*time.Second)
	_, err := c.Create(ctx, "s", CreateOptions{ContentType: "application/json", Data: []byte(`[{"n":1},{"n":"two"},{"n":3}]`)})
	require.NoError(t, err)
	r := openReader[event](t, c, "s")
	var (
		got     []int
		skipped int
		fatal   []error
	)
	for m, err := range r.Messages(ctx) {
		var de *DecodeError
		switch {
		case errors.As(err, &de):
			skipped++
			continue
		case err != nil:
			fatal = append(fatal, err)
			continue // the loop ends by itself
		}
		got = append(got, m.Value.N)
		if m.Value.N == 3 {
			// Then a fatal error: the loop yields it once and ends.
			require.NoError(t, c.Delete(ctx, "s"))
			srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodGet, Status: http.StatusNotFound})
		}
	}
	require.Equal(t, 1, skipped)
	require.Equal(t, []int{1, 3}, got)
	require.Len(t, fatal, 1)
	require.ErrorIs(t, fatal[0], ErrNotFound)
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestReaderCloseUnblocksNext(t *testing.T) {
	t.Parallel()
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			_, c := newReaderServer(t, testserver.WithLongPollTimeout(10*time.Second))
			createJSON(t, c, "s")
			r := openReader[event](t, c, "s", WithLive(mode))
			errc := make(chan error, 1)
			go func() {
				_, err := r.Next(context.Background())
				errc <- err
			}()
			time.Sleep(100 * time.Millisecond)
			require.NoError(t, r.Close(context.Background()))
			select {
			case err := <-errc:
				require.ErrorIs(t, err, ErrClosed)
			case <-time.After(2 * time.Second):
				t.Fatal("Next still blocked after Close")
			}
			_, err := r.Next(context.Background())
			require.ErrorIs(t, err, ErrClosed)
			require.ErrorIs(t, r.Commit(context.Background(), Position{Offset: "x"}), ErrClosed)
		})
	}
}

func TestReaderCtxCancelDuringWait(t *testing.T) {
	t.Parallel()
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			_, c := newReaderServer(t, testserver.WithLongPollTimeout(10*time.Second))
			createJSON(t, c, "s")
			r := openReader[event](t, c, "s", WithLive(mode))
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			_, err := r.Next(ctx)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			// Still usable afterwards.
			go func() {
				time.Sleep(50 * time.Millisecond)
				appendEvents(t, c, "s", 0, 1)
			}()
			nextEvent(t, ctxT(t, 5*time.Second), r, 0)
		})
	}
}

func TestNewReaderValidation(t *testing.T) {
	t.Parallel()
	_, c := newReaderServer(t)
	tests := []struct {
		name string
		opts []Option
	}{
		{"zero option", []Option{{}}},
		{"client option", []Option{WithLogger(slog.Default())}},
		{"writer option", []Option{WithLinger(0)}},
		{"given twice", []Option{WithLive(LiveSSE), WithLive(LiveNone)}},
		{"manual commit and interval", []Option{WithManualCommit(), WithCommitInterval(time.Second)}},
		{"key without store", []Option{WithKey("k")}},
		{"nil store", []Option{WithStore(nil)}},
		{"empty key", []Option{WithKey("")}},
		{"empty start", []Option{WithStart("")}},
		{"bad live", []Option{WithLive("websocket")}},
		{"zero interval", []Option{WithCommitInterval(0)}},
		{"bad retry", []Option{WithRetry(RetryPolicy{})}},
		{"chunk bytes", []Option{WithMaxResponseBytes(0)}},
		{"sse fallback", []Option{WithSSEFallback(0, time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewReader(c, "s", JSONCodec[event]{}, tt.opts...)
			require.ErrorIs(t, err, ErrInvalidArgument)
		})
	}
	_, err := NewReader(nil, "s", JSONCodec[event]{})
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = NewReader[event](c, "s", nil)
	require.ErrorIs(t, err, ErrInvalidArgument)
	_, err = NewReader(c, "", JSONCodec[event]{})
	require.ErrorIs(t, err, ErrInvalidArgument)
}
