package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/faultproxy"
	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// readFaults injects random transient failures into the reads of stream.
func readFaults(srv *testserver.Server, stream string) {
	for _, f := range []testserver.Fault{
		{Status: http.StatusInternalServerError, Probability: 0.04},
		{Status: http.StatusServiceUnavailable, Probability: 0.04},
		{Status: http.StatusTooManyRequests, Probability: 0.04},
		{Drop: true, Probability: 0.03},
		{Truncate: true, Probability: 0.03},
	} {
		f.Path, f.Method = stream, http.MethodGet
		srv.InjectFault(f)
	}
}

// writeEvents appends events 0..total-1 in random batches with idempotent
// producer headers (so retries of faulted appends are safe), then closes
// the stream when closeAtEnd. It reports the first error on the channel.
func writeEvents(ctx context.Context, c *Client, stream string, total int, closeAtEnd bool, pause time.Duration) <-chan error {
	errc := make(chan error, 1)
	go func() {
		defer close(errc)
		rng := rand.New(rand.NewPCG(uint64(total), 7))
		p := &Producer{ID: "w-" + stream}
		for n := 0; n < total; {
			k := 1 + rng.IntN(20)
			if n+k > total {
				k = total - n
			}
			evs := make([]event, k)
			for i := range evs {
				evs[i] = event{N: n + i}
			}
			b, _ := json.Marshal(evs)
			if _, err := c.Append(ctx, stream, b, AppendOptions{ContentType: "application/json", Producer: p}); err != nil {
				errc <- fmt.Errorf("append at %d: %w", n, err)
				return
			}
			p.Seq++
			n += k
			if pause > 0 && rng.IntN(4) == 0 {
				time.Sleep(pause)
			}
		}
		if closeAtEnd {
			if _, err := c.CloseStream(ctx, stream, nil, AppendOptions{}); err != nil {
				errc <- fmt.Errorf("close: %w", err)
			}
		}
	}()
	return errc
}

// proxiedClient returns a Client that reaches srv through a TCP fault
// proxy.
func proxiedClient(t *testing.T, srv *testserver.Server) (*Client, *faultproxy.Proxy) {
	t.Helper()
	p, err := faultproxy.New(srv.URL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	c, err := NewClient("http://"+p.Addr()+"/v1/stream/", WithRetry(fastRetry()))
	require.NoError(t, err)
	t.Cleanup(c.hc.CloseIdleConnections)
	return c, p
}

// netChaos cuts and truncates the proxy's connections every few tens of
// milliseconds until the returned stop function is called.
func netChaos(p *faultproxy.Proxy) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		rng := rand.New(rand.NewPCG(1, 2))
		tick := time.NewTicker(30 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				p.Clear()
				return
			case <-tick.C:
			}
			switch rng.IntN(3) {
			case 0:
				p.CutAll()
			case 1:
				p.CloseAfter(int64(50+rng.IntN(2000)), faultproxy.Downstream, 1)
			case 2:
				p.ResetAfter(int64(50+rng.IntN(2000)), faultproxy.Downstream, 1)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// writerClient is a second Client with patient retries for the writer.
func writerClient(t *testing.T, srv *testserver.Server) *Client {
	t.Helper()
	c, err := NewClient(srv.StreamURL(""), WithRetry(RetryPolicy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Multiplier: 2, MaxAttempts: 50}))
	require.NoError(t, err)
	t.Cleanup(c.hc.CloseIdleConnections)
	return c
}

// TestReaderChaosLiveTail: random 500/503/429, dropped connections and
// truncated bodies while 10,000 messages are written concurrently; every
// message is delivered exactly once and in order, then io.EOF, with no
// request after it.
func TestReaderChaosLiveTail(t *testing.T) {
	t.Parallel()
	const total = 10000
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			srv, wc := newReaderServer(t, testserver.WithSSECloseInterval(time.Second))
			c, proxy := proxiedClient(t, srv)
			createJSON(t, wc, "chaos")
			readFaults(srv, "chaos")
			srv.InjectFault(testserver.Fault{Path: "chaos", Method: http.MethodPost, Status: http.StatusServiceUnavailable, Probability: 0.03})
			srv.InjectFault(testserver.Fault{Path: "chaos", Method: http.MethodPost, Drop: true, AfterApply: true, Probability: 0.02})
			ctx := ctxT(t, 60*time.Second)
			// The server ends SSE connections every second: one silent for
			// 3 s is dead (the Reader must notice, not wait forever).
			r := openReader[event](t, c, "chaos", WithLive(mode), WithSSEIdleTimeout(3*time.Second))
			// A writer that fails ends the read at once, with its error:
			// the stream would never be closed.
			rctx, stopRead := context.WithCancelCause(ctx)
			defer stopRead(nil)
			werr := make(chan error, 1)
			go func() {
				err := <-writeEvents(ctx, wc, "chaos", total, true, time.Millisecond)
				if err != nil {
					stopRead(fmt.Errorf("writer: %w", err))
				}
				werr <- err
			}()
			stopChaos := netChaos(proxy)
			defer stopChaos()
			want := 0
			for {
				m, err := r.Next(rctx)
				if err == io.EOF {
					break
				}
				require.NoError(t, err, "cause: %v; delivered %d; stats %+v", context.Cause(rctx), want, r.Stats())
				require.Equal(t, want, m.Value.N, "exactly once, in order")
				want++
			}
			require.NoError(t, <-werr)
			require.Equal(t, total, want)
			after := srv.Requests("chaos", http.MethodGet)
			for i := 0; i < 100; i++ {
				_, err := r.Next(ctx)
				require.Equal(t, io.EOF, err)
			}
			require.Equal(t, after, srv.Requests("chaos", http.MethodGet))
			st := r.Stats()
			require.Equal(t, int64(total), st.Delivered)
			require.Positive(t, st.Retries, "faults were retried")
			t.Logf("%s: %d requests, %d retries, %d stale dropped", mode, st.Requests, st.Retries, st.Stale)
		})
	}
}

// requireReleased waits until the readers owning ctxs were garbage
// collected and their cleanup cancelled them (closing their connections).
func requireReleased(t *testing.T, ctxs []context.Context) {
	t.Helper()
	require.Eventually(t, func() bool {
		runtime.GC()
		for _, c := range ctxs {
			if c.Err() == nil {
				return false
			}
		}
		return true
	}, 5*time.Second, 10*time.Millisecond, "abandoned readers are released")
}

// TestReaderRestartsOnStore: a reader is abandoned 20 times at random
// points (no Close, as in a crash) and reopened on the same store while the
// stream is written. (That a File survives the crash of its process is
// TestFileCrash's in offsetstore.) With a commit per message, a message whose
// Commit returned is never delivered again and nothing is skipped; with
// interval commit, nothing is skipped.
func TestReaderRestartsOnStore(t *testing.T) {
	t.Parallel()
	const restarts = 20
	for _, mode := range liveModes {
		for _, manual := range []bool{true, false} {
			// A commit per message is an fsync per message: keep that case small.
			total := 3000
			if manual {
				total = 1000
			}
			name := fmt.Sprintf("%s/manual=%v", mode, manual)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				srv, c := newReaderServer(t, testserver.WithSSECloseInterval(time.Second))
				wc := writerClient(t, srv)
				createJSON(t, c, "r")
				srv.InjectFault(testserver.Fault{Path: "r", Method: http.MethodGet, Status: http.StatusServiceUnavailable, Probability: 0.05})
				srv.InjectFault(testserver.Fault{Path: "r", Method: http.MethodGet, Drop: true, Probability: 0.02})
				store := newMemStore()
				ctx := ctxT(t, 60*time.Second)
				errc := writeEvents(ctx, wc, "r", total, true, 2*time.Millisecond)
				rng := rand.New(rand.NewPCG(42, uint64(len(name))))

				var abandoned []context.Context // closeCtx of dropped readers
				posToN := map[Position]int{}
				delivered := make([]int, total)
				committedN := -1 // manual: highest N whose Commit returned nil
				lastN := -1
				opts := []Option{WithLive(mode), WithStore(store), WithKey("consumer")}
				if manual {
					opts = append(opts, WithManualCommit())
				} else {
					opts = append(opts, WithCommitInterval(time.Duration(1+rng.IntN(5))*time.Millisecond))
				}
				for round := 0; ; round++ {
					saved, ok, err := store.Load(ctx, "consumer")
					require.NoError(t, err)
					wantFirst := 0
					if ok {
						n, known := posToN[Position{Offset: saved.Offset, Skip: saved.Skip}]
						if known {
							wantFirst = n + 1
						} else {
							// Only the tail of the still empty stream is saved
							// without a message just before it.
							for p, n := range posToN {
								if n == 0 {
									require.Negative(t, saved.Compare(p), "saved position %+v is a delivered message's", saved)
								}
							}
						}
					}
					if manual {
						require.Equal(t, committedN+1, wantFirst, "the store holds the last commit that returned")
					}
					require.LessOrEqual(t, wantFirst, lastN+1, "the saved position is never past a message not handled")
					r, err := NewReader(c, "r", JSONCodec[event]{}, append([]Option{WithRetry(readerRetry())}, opts...)...)
					require.NoError(t, err)
					budget := -1 // last round: read to EOF
					if round < restarts {
						budget = 1 + rng.IntN(2*total/restarts)
					}
					first := true
					for budget != 0 {
						m, err := r.Next(ctx)
						if err == io.EOF {
							break
						}
						require.NoError(t, err)
						if first {
							require.Equal(t, wantFirst, m.Value.N, "round %d resumes right after the saved position", round)
							first = false
						}
						n := m.Value.N
						require.Greater(t, n, committedN, "a committed message is never delivered again")
						posToN[m.Position] = n
						delivered[n]++
						lastN = n
						budget--
						if manual {
							if budget == 0 && rng.IntN(2) == 0 {
								break // crash with the message in hand, uncommitted
							}
							require.NoError(t, r.Commit(ctx, m.Position))
							committedN = n
						}
					}
					if budget != 0 {
						require.NoError(t, r.Close(context.Background()))
						break
					}
					// Abandoned: no Close, like a crash.
					abandoned = append(abandoned, r.closeCtx)
				}
				requireReleased(t, abandoned)
				require.NoError(t, <-errc)
				for n, k := range delivered {
					require.Positive(t, k, "message %d skipped", n)
					if manual {
						require.LessOrEqual(t, k, 2, "message %d delivered %d times", n, k)
					}
				}
			})
		}
	}
}
