package durable

// Hostile servers (internal/testsupport/hostile): endless bodies, a 1 GiB SSE line, a
// 1 GiB JSON message, millions of tiny chunks, offsets that go backwards
// or repeat, redirects to another host, slowloris. The Client (and the
// Reader, further down) must keep
// its memory bounded (typed ErrResponseTooLarge), never send credentials
// to another host, not loop (bounded request counts), and leak no
// goroutine (goleak in TestMain).
//
// The memory tests are not parallel: parallel tests only start once every
// sequential test of the package has finished, so the heap they sample is
// their own.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/hostile"
	"github.com/stretchr/testify/require"
)

const (
	gib            = int64(1) << 30
	mib            = int64(1) << 20
	hostileTimeout = 20 * time.Second
	// hostileStall is how long a server that streams a large body may send
	// nothing before the read counts as stuck. Volume tests bound stalls,
	// not their total time: reading 64 MiB under the race detector takes
	// ~10 s of CPU, and several times that when other test binaries share
	// the cores (the cause of TestHostileBoundedMemory's occasional
	// "context deadline exceeded" with a fixed 20 s bound).
	hostileStall = 20 * time.Second
)

// stallContext returns a context that ends when srv has sent no body byte
// for hostileStall: a read that keeps receiving runs to its end however
// slow the machine, a stuck one is stopped.
func stallContext(t *testing.T, srv *hostile.Server) context.Context {
	t.Helper()
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		<-stopped
		cancel(nil)
	})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		last, since := srv.Recorder().Sent(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if n := srv.Recorder().Sent(); n != last {
				last, since = n, time.Now()
			} else if time.Since(since) > hostileStall {
				cancel(fmt.Errorf("stalled: the server sent nothing for %v", hostileStall))
				return
			}
		}
	}()
	return ctx
}

// heapPeak runs f while sampling the heap, and returns how far HeapInuse
// rose above its level before f (after a GC).
func heapPeak(f func()) int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapInuse)
	var peak atomic.Int64
	peak.Store(base)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if v := int64(ms.HeapInuse); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	return peak.Load() - base
}

// hostileClient is a Client for srv with secrets attached and a bounded
// response size.
func hostileClient(t *testing.T, srv *hostile.Server, opts ...Option) (*Client, string) {
	t.Helper()
	e := &relEnv{t: t, log: &relLog{}, secret: true}
	base := srv.URL + "/v1/stream/"
	return e.client(base, withDefaults([]Option{WithRetry(fastRetry())}, opts...)...), e.stream(base, "s")
}

// TestHostileBoundedMemory: bodies far larger than any limit end with
// ErrResponseTooLarge after about the limit, with the heap bounded.
func TestHostileBoundedMemory(t *testing.T) {
	const limit = 4 * mib
	type call func(ctx context.Context, c *Client, s string) error
	read := func(live LiveMode) call {
		return func(ctx context.Context, c *Client, s string) error {
			_, err := c.Read(ctx, s, ReadOptions{Offset: OffsetStart, Live: live})
			return err
		}
	}
	openSSE := func(ctx context.Context, c *Client, s string) error {
		st, err := c.OpenSSE(ctx, s, ReadOptions{Offset: OffsetStart})
		if err != nil {
			return err
		}
		defer st.Close()
		for range 10 {
			if _, err = st.Next(ctx); err != nil {
				return err
			}
		}
		return errors.New("10 chunks from a hostile server")
	}
	tests := []struct {
		name  string
		srv   func() *hostile.Server
		limit int64 // WithMaxResponseSize (0 = the default, 64 MiB)
		call  call
	}{
		{"endless-body/catch-up", func() *hostile.Server { return hostile.EndlessBody() }, limit, read(LiveNone)},
		{"endless-body/long-poll", func() *hostile.Server { return hostile.EndlessBody() }, limit, read(LiveLongPoll)},
		{"endless-body/sse", func() *hostile.Server { return hostile.EndlessBody() }, limit, read(LiveSSE)},
		{"endless-body/open-sse", func() *hostile.Server { return hostile.EndlessBody() }, limit, openSSE},
		{"endless-bytes/catch-up", func() *hostile.Server {
			return hostile.EndlessBody(hostile.WithContentType("application/octet-stream"))
		}, limit, read(LiveNone)},
		{"1GiB-sse-line/sse", func() *hostile.Server { return hostile.HugeSSELine(gib) }, limit, read(LiveSSE)},
		{"1GiB-sse-line/open-sse", func() *hostile.Server { return hostile.HugeSSELine(gib) }, limit, openSSE},
		{"1GiB-json-message/catch-up", func() *hostile.Server { return hostile.HugeJSONMessage(gib) }, limit, read(LiveNone)},
		{"1GiB-json-message/content-length", func() *hostile.Server {
			return hostile.HugeJSONMessage(gib, hostile.WithContentLength())
		}, limit, read(LiveNone)},
		{"1GiB-json-message/sse", func() *hostile.Server { return hostile.HugeJSONMessage(gib) }, limit, read(LiveSSE)},
		{"1GiB-json-message/default-limit", func() *hostile.Server { return hostile.HugeJSONMessage(gib) }, 0, read(LiveNone)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv()
			defer srv.Close()
			var opts []Option
			bound := 64*mib + 4*limit
			if tt.limit > 0 {
				opts = append(opts, WithMaxResponseBytes(tt.limit))
			} else {
				// The body is read in slabs and dropped at the limit, never
				// joined: about the 64 MiB default at the peak.
				bound = 2 * 64 * mib
			}
			c, s := hostileClient(t, srv, opts...)
			ctx := stallContext(t, srv)
			var err error
			peak := heapPeak(func() { err = tt.call(ctx, c, s) })
			require.NoError(t, context.Cause(ctx), "did not return (err: %v)", err)
			require.ErrorIs(t, err, ErrResponseTooLarge)
			var de *Error
			require.ErrorAs(t, err, &de)
			require.False(t, IsRetryable(err))
			require.Equal(t, 1, srv.Recorder().Total(), "a too-large response must not be retried")
			require.Less(t, peak, bound, "heap grew by %d MiB", peak/mib)
			t.Logf("%v; heap +%d MiB", err, peak/mib)
		})
	}
}

// TestHostileTinyChunks: a response split into millions of one-byte HTTP
// chunks (a hundred thousand under the race detector, which makes each
// one ten times slower) is read correctly, with bounded memory.
func TestHostileTinyChunks(t *testing.T) {
	chunks := int64(2 << 20)
	if raceEnabled {
		chunks = 128 << 10
	}
	tests := []struct {
		name  string
		total int64
		chunk int
		ctype string
		live  LiveMode
	}{
		{"json/one-byte-chunks", chunks, 1, "application/json", LiveNone},
		{"bytes/one-byte-chunks", chunks / 4, 1, "application/octet-stream", LiveNone},
		{"json/sse/one-value-lines", chunks, 2, "application/json", LiveSSE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := hostile.TinyChunks(tt.total, tt.chunk, hostile.WithContentType(tt.ctype))
			defer srv.Close()
			c, s := hostileClient(t, srv)
			ctx := stallContext(t, srv)
			var (
				ch  Chunk
				err error
			)
			start := time.Now()
			peak := heapPeak(func() {
				ch, err = c.Read(ctx, s, ReadOptions{Offset: OffsetStart, Live: tt.live, ContentType: tt.ctype})
			})
			require.NoError(t, err)
			if tt.live == LiveSSE {
				// The array travels as "0," data lines joined by newlines.
				require.True(t, json.Valid(ch.Data), "SSE data is not one JSON array")
				require.Greater(t, len(ch.Data), int(tt.total/4))
			} else {
				require.InDelta(t, tt.total, len(ch.Data), float64(tt.total)/100)
			}
			require.Less(t, peak, 64*mib+8*tt.total, "heap grew by %d MiB", peak/mib)
			require.Equal(t, 1, srv.Recorder().Total())
			t.Logf("%d bytes in %d-byte chunks: %v, heap +%d MiB", len(ch.Data), tt.chunk, time.Since(start).Round(time.Millisecond), peak/mib)
		})
	}
}

// hostileSSE opens an SSE read of a JSON stream on srv from the start,
// closed when the test ends, and returns it with a context bounded by
// hostileTimeout.
func hostileSSE(t *testing.T, srv *hostile.Server) (*SSEStream, context.Context) {
	t.Helper()
	c, s := hostileClient(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	t.Cleanup(cancel)
	st, err := c.OpenSSE(ctx, s, ReadOptions{Offset: OffsetStart, ContentType: "application/json"})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st, ctx
}

// TestHostileOffsets: a Stream-Next-Offset that goes backwards is a
// protocol error (not retried); one that repeats cannot make a Client
// loop on its own.
func TestHostileOffsets(t *testing.T) {
	t.Parallel()
	for name, live := range map[string]LiveMode{"catch-up": "", "long-poll": LiveLongPoll} {
		t.Run("backwards/"+name, func(t *testing.T) {
			t.Parallel()
			srv := hostile.OffsetBackwards()
			defer srv.Close()
			c, s := hostileClient(t, srv)
			ctx := context.Background()
			first, err := c.Read(ctx, s, ReadOptions{Offset: OffsetStart, Live: live})
			require.NoError(t, err)
			_, err = c.Read(ctx, s, ReadOptions{Offset: first.NextOffset, Live: live})
			require.ErrorIs(t, err, ErrProtocol)
			require.False(t, IsRetryable(err))
			require.Equal(t, 2, srv.Recorder().Total())
		})
	}
	t.Run("backwards/sse", func(t *testing.T) {
		t.Parallel()
		srv := hostile.OffsetBackwards(hostile.WithInterval(time.Millisecond))
		defer srv.Close()
		st, ctx := hostileSSE(t, srv)
		var (
			n   int
			err error
		)
		for ; n < 10; n++ {
			if _, err = st.Next(ctx); err != nil {
				break
			}
		}
		require.ErrorIs(t, err, ErrProtocol, "after %d chunks", n)
		require.Equal(t, 1, n, "the second control event goes back")
		require.Equal(t, 1, srv.Recorder().Total())
	})
	t.Run("repeat/read-loop-bounded", func(t *testing.T) {
		t.Parallel()
		// A caller that reads until UpToDate against a server whose offset
		// never moves: each Read is one request, no hidden retry loop.
		srv := hostile.OffsetRepeat()
		defer srv.Close()
		c, s := hostileClient(t, srv)
		ctx := context.Background()
		off := OffsetStart
		for i := range 20 {
			ch, err := c.Read(ctx, s, ReadOptions{Offset: off})
			require.NoError(t, err, "read %d", i)
			require.False(t, ch.UpToDate)
			off = ch.NextOffset
		}
		require.Equal(t, 20, srv.Recorder().Total())
	})
	t.Run("repeat/sse", func(t *testing.T) {
		t.Parallel()
		srv := hostile.OffsetRepeat(hostile.WithInterval(time.Millisecond))
		defer srv.Close()
		st, ctx := hostileSSE(t, srv)
		for range 5 {
			ch, err := st.Next(ctx)
			require.NoError(t, err)
			require.Equal(t, Offset("0000000000000042"), ch.NextOffset)
		}
		require.Equal(t, 1, srv.Recorder().Total())
	})
}

// TestHostileRedirect: a redirect to another host is refused for every
// call and redirect status; the other host receives nothing — so neither
// the Authorization header, nor the custom key header, nor the URL's
// token.
func TestHostileRedirect(t *testing.T) {
	t.Parallel()
	calls := map[string]func(ctx context.Context, c *Client, s string) error{
		"create": func(ctx context.Context, c *Client, s string) error {
			_, err := c.Create(ctx, s, CreateOptions{})
			return err
		},
		"append-producer": func(ctx context.Context, c *Client, s string) error {
			_, err := c.Append(ctx, s, []byte("x"), AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}})
			return err
		},
		"append-plain": func(ctx context.Context, c *Client, s string) error {
			_, err := c.Append(ctx, s, []byte("x"), AppendOptions{ContentType: "text/plain"})
			return err
		},
		"close": func(ctx context.Context, c *Client, s string) error {
			_, err := c.CloseStream(ctx, s, nil, AppendOptions{})
			return err
		},
		"head": func(ctx context.Context, c *Client, s string) error { _, err := c.Head(ctx, s); return err },
		"read": func(ctx context.Context, c *Client, s string) error {
			_, err := c.Read(ctx, s, ReadOptions{})
			return err
		},
		"long-poll": func(ctx context.Context, c *Client, s string) error {
			_, err := c.Read(ctx, s, ReadOptions{Live: LiveLongPoll})
			return err
		},
		"sse": func(ctx context.Context, c *Client, s string) error {
			st, err := c.OpenSSE(ctx, s, ReadOptions{})
			if err == nil {
				st.Close()
			}
			return err
		},
		"delete": func(ctx context.Context, c *Client, s string) error { return c.Delete(ctx, s) },
	}
	for _, status := range []int{301, 302, 303, 307, 308} {
		for name, call := range calls {
			t.Run(http.StatusText(status)+"/"+name, func(t *testing.T) {
				t.Parallel()
				srv := hostile.Redirect(hostile.WithStatus(status))
				defer srv.Close()
				c, s := hostileClient(t, srv)
				ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
				defer cancel()
				err := call(ctx, c, s)
				require.ErrorIs(t, err, ErrCrossHostRedirect)
				require.False(t, IsRetryable(err))
				require.Equal(t, 1, srv.Recorder().Total(), "refused redirects are not retried")
				req, _ := srv.Recorder().Last()
				require.Equal(t, "Bearer "+relSecrets[1], req.Header.Get("Authorization"), "the origin got the credentials")
				target := srv.Target().Recorder()
				require.Zero(t, target.Total(), "the other host was contacted")
				require.False(t, target.HeaderSeen("Authorization"))
				require.False(t, target.HeaderSeen("X-Api-Key"))
				require.Empty(t, secretsIn(errTexts(err)...))
			})
		}
	}
}

// TestHostileSlowloris: a server that dribbles one byte per interval ends
// in the caller's bound: WithRequestTimeout for each attempt of a
// catch-up read (retried: fastRetry makes 4), ctx for live reads (one
// request) — with no leak.
func TestHostileSlowloris(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []hostile.Option
		live    LiveMode
		timeout time.Duration // WithRequestTimeout; else a ctx deadline
	}{
		{"catch-up/WithRequestTimeout", nil, LiveNone, 300 * time.Millisecond},
		{"catch-up/slow-headers/WithRequestTimeout", []hostile.Option{hostile.WithSlowHeaders()}, LiveNone, 300 * time.Millisecond},
		{"long-poll/ctx", nil, LiveLongPoll, 0},
		{"sse/ctx", nil, LiveSSE, 0},
		{"sse/slow-headers/ctx", []hostile.Option{hostile.WithSlowHeaders()}, LiveSSE, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := hostile.Slowloris(20*time.Millisecond, tt.opts...)
			defer srv.Close()
			var opts []Option
			if tt.timeout > 0 {
				opts = append(opts, WithRequestTimeout(tt.timeout))
			}
			c, s := hostileClient(t, srv, opts...)
			outer, cancelOuter := context.WithTimeout(context.Background(), hostileTimeout)
			defer cancelOuter()
			ctx := outer
			if tt.timeout == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(outer, 300*time.Millisecond)
				defer cancel()
			}
			_, err := c.Read(ctx, s, ReadOptions{Offset: OffsetStart, Live: tt.live})
			require.NoError(t, outer.Err(), "did not return in time")
			var de *Error
			require.ErrorAs(t, err, &de)
			if tt.timeout > 0 {
				require.ErrorIs(t, err, errAttemptTimeout)
				require.Equal(t, fastRetry().MaxAttempts, srv.Recorder().Total(), "each attempt cut off and retried")
				return
			}
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Equal(t, 1, srv.Recorder().Total())
		})
	}
}

// ---------------------------------------------------------------- Reader

// hostileReader opens a Reader[json.RawMessage] on srv with secrets and
// a 4 MiB response bound.
func hostileReader(t *testing.T, srv *hostile.Server, live LiveMode, opts ...Option) (*Reader[json.RawMessage], *atomic.Int64) {
	t.Helper()
	var retries atomic.Int64
	c, s := hostileClient(t, srv, WithMaxResponseBytes(4*mib), WithHooks(onRetry(func(RetryEvent) { retries.Add(1) })))
	all := append([]Option{WithLive(live)}, opts...)
	r, err := NewReader(c, s, JSONCodec[json.RawMessage]{}, all...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r, &retries
}

// TestHostileReaderBoundedMemory: bodies larger than any limit end the
// Reader with a permanent ErrResponseTooLarge, the heap bounded.
func TestHostileReaderBoundedMemory(t *testing.T) {
	tests := []struct {
		name string
		srv  func() *hostile.Server
		live LiveMode
		want error
	}{
		{"endless-body/long-poll", func() *hostile.Server { return hostile.EndlessBody() }, LiveLongPoll, ErrResponseTooLarge},
		{"endless-body/sse", func() *hostile.Server { return hostile.EndlessBody() }, LiveSSE, ErrResponseTooLarge},
		// The Reader catches up with plain GETs before it opens SSE: an
		// event stream (without Stream-Next-Offset) in answer to one is a
		// protocol violation, found before the line is read.
		{"1GiB-sse-line/sse", func() *hostile.Server { return hostile.HugeSSELine(gib, hostile.WithContentType("application/json")) }, LiveSSE, ErrProtocol},
		{"1GiB-json-message/long-poll", func() *hostile.Server { return hostile.HugeJSONMessage(gib) }, LiveLongPoll, ErrResponseTooLarge},
		{"1GiB-json-message/sse", func() *hostile.Server { return hostile.HugeJSONMessage(gib) }, LiveSSE, ErrResponseTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv()
			defer srv.Close()
			r, _ := hostileReader(t, srv, tt.live)
			ctx := stallContext(t, srv)
			var err error
			peak := heapPeak(func() { _, err = r.Next(ctx) })
			require.NoError(t, context.Cause(ctx), "Next did not return (err: %v)", err)
			require.ErrorIs(t, err, tt.want, "got %v", err)
			var de *Error
			require.ErrorAs(t, err, &de)
			require.Less(t, peak, 64*mib+16*mib, "heap grew by %d MiB", peak/mib)
			reqs := srv.Recorder().Total()
			require.LessOrEqual(t, reqs, 2, "permanent: no retry (a HEAD may precede SSE)")
			_, again := r.Next(ctx)
			require.ErrorIs(t, again, tt.want, "sticky")
			require.Equal(t, reqs, srv.Recorder().Total(), "a sticky error sends nothing")
			t.Logf("%v; heap +%d MiB", err, peak/mib)
		})
	}
}

// TestHostileReaderTinyChunks: millions of one-byte chunks (fewer under
// the race detector) decode into the right messages.
func TestHostileReaderTinyChunks(t *testing.T) {
	total := int64(1 << 20)
	if raceEnabled {
		total = 64 << 10
	}
	for _, live := range []LiveMode{LiveLongPoll, LiveSSE} {
		t.Run(string(live), func(t *testing.T) {
			srv := hostile.TinyChunks(total, 1)
			defer srv.Close()
			r, _ := hostileReader(t, srv, live)
			ctx := stallContext(t, srv)
			want := int(total / 2) // "[0,0,...,0]": two bytes per message
			peak := heapPeak(func() {
				for i := range want - 10 {
					msg, err := r.Next(ctx)
					require.NoError(t, err, "message %d", i)
					require.Equal(t, "0", string(msg.Value))
				}
			})
			require.Less(t, peak, 64*mib+8*total, "heap grew by %d MiB", peak/mib)
		})
	}
}

// TestHostileReaderOffsets: a server whose offsets go backwards or never
// move makes the Reader deliver each message once and back off — a
// bounded number of requests, never a hot loop.
func TestHostileReaderOffsets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		srv  func() *hostile.Server
		live LiveMode
	}{
		{"backwards/long-poll", func() *hostile.Server { return hostile.OffsetBackwards() }, LiveLongPoll},
		{"backwards/sse", func() *hostile.Server { return hostile.OffsetBackwards(hostile.WithInterval(time.Millisecond)) }, LiveSSE},
		{"repeat/long-poll", func() *hostile.Server { return hostile.OffsetRepeat() }, LiveLongPoll},
		{"repeat/sse", func() *hostile.Server { return hostile.OffsetRepeat(hostile.WithInterval(time.Millisecond)) }, LiveSSE},
		{"repeat/none", func() *hostile.Server { return hostile.OffsetRepeat() }, LiveNone},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := tt.srv()
			defer srv.Close()
			r, retries := hostileReader(t, srv, tt.live)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			delivered := 0
			var err error
			for {
				if _, err = r.Next(ctx); err != nil {
					break
				}
				delivered++
				require.LessOrEqual(t, delivered, 1, "the same data delivered again")
			}
			require.Equal(t, 1, delivered)
			if !errors.Is(err, context.DeadlineExceeded) {
				// Giving up on a lying server with a typed error is fine too.
				require.ErrorIs(t, err, ErrProtocol)
			}
			reqs := srv.Recorder().Total()
			require.Less(t, reqs, 25, "requests in one second: a hot loop?")
			t.Logf("%d requests, %d retries in 1s; ended with %v", reqs, retries.Load(), err)
		})
	}
}

// TestHostileReaderRedirect: a Reader never follows a redirect to another
// host; the other host receives nothing.
func TestHostileReaderRedirect(t *testing.T) {
	t.Parallel()
	for _, live := range []LiveMode{LiveLongPoll, LiveSSE, LiveNone} {
		t.Run(string(live), func(t *testing.T) {
			t.Parallel()
			srv := hostile.Redirect()
			defer srv.Close()
			r, _ := hostileReader(t, srv, live)
			ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
			defer cancel()
			_, err := r.Next(ctx)
			require.ErrorIs(t, err, ErrCrossHostRedirect)
			require.LessOrEqual(t, srv.Recorder().Total(), 2)
			require.Zero(t, srv.Target().Recorder().Total(), "the other host was contacted")
			require.Empty(t, secretsIn(errTexts(err)...))
		})
	}
}

// TestHostileReaderSlowloris: a dribbling server holds a Reader only as
// long as the caller's context allows.
func TestHostileReaderSlowloris(t *testing.T) {
	t.Parallel()
	for _, live := range []LiveMode{LiveLongPoll, LiveSSE} {
		t.Run(string(live), func(t *testing.T) {
			t.Parallel()
			srv := hostile.Slowloris(20 * time.Millisecond)
			defer srv.Close()
			r, _ := hostileReader(t, srv, live)
			outer, cancelOuter := context.WithTimeout(context.Background(), hostileTimeout)
			defer cancelOuter()
			ctx, cancel := context.WithTimeout(outer, 300*time.Millisecond)
			defer cancel()
			_, err := r.Next(ctx)
			require.NoError(t, outer.Err())
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.LessOrEqual(t, srv.Recorder().Total(), 2)
		})
	}
}

// ---------------------------------------------------------------- Writer

// TestHostileWriterRedirect: a Writer's batch is refused a redirect to
// another host; Flush reports it, the other host receives nothing.
func TestHostileWriterRedirect(t *testing.T) {
	t.Parallel()
	srv := hostile.Redirect()
	defer srv.Close()
	c, s := hostileClient(t, srv)
	w, err := NewWriter(c, s, JSONCodec[rwMsg]{})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), hostileTimeout)
	defer cancel()
	defer w.Close(ctx)
	require.NoError(t, w.Write(ctx, rwMsg{I: 1}))
	err = w.Flush(ctx)
	require.ErrorIs(t, err, ErrCrossHostRedirect)
	require.Zero(t, srv.Target().Recorder().Total(), "the other host was contacted")
	require.Empty(t, secretsIn(errTexts(err)...))
}
