package durable

// The fault matrix: every operation against every failure, through a real
// TCP fault proxy (network faults) or the testserver's fault injection
// (HTTP faults). Each cell either succeeds with nothing lost or duplicated
// (checked by reading the stream back straight from the server) or returns
// the documented typed error before its context deadline.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/faultproxy"
	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// cellDeadline bounds every matrix call: a cell that needs it has hung.
const cellDeadline = 10 * time.Second

var (
	matrixBase = bytes.Repeat([]byte("b"), 64<<10) // initial content: big enough to cut mid-body
	matrixMark = []byte("MARK-7f3a")               // what the write operations add
)

// unaryOp is one Client call of the unary row.
type unaryOp struct {
	name    string
	plain   bool  // plain POST: never retried once the request may have left the machine
	live    bool  // long-poll or SSE read: WithRequestTimeout does not apply, the caller's context does
	resetAt int64 // downstream bytes after which a mid-response reset or close fires
	setup   func(ctx context.Context, e *relEnv) error
	run     func(ctx context.Context, c *Client, stream string) (any, error)
	// check verifies the server's state after the call, through e.direct.
	// applied reports how many times the call's effect is visible (appends).
	check func(t *testing.T, ctx context.Context, e *relEnv, res any, err error) (applied int)
}

func createBase(ctx context.Context, e *relEnv) error {
	_, err := e.direct.Create(ctx, "s", CreateOptions{ContentType: "text/plain", Data: matrixBase})
	return err
}

// checkAppended verifies the base is intact and counts the mark.
func checkAppended(t *testing.T, ctx context.Context, e *relEnv) int {
	data, err := e.content(ctx, "s")
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(data, matrixBase), "base content lost")
	n := bytes.Count(data, matrixMark)
	require.Equal(t, len(matrixBase)+n*len(matrixMark), len(data), "unexpected bytes in the stream")
	return n
}

// liveBound is the context bound of the live-read calls.
const liveBound = 2500 * time.Millisecond

// checkReadAll: a successful read returned the whole stream.
func checkReadAll(t *testing.T, ctx context.Context, e *relEnv, res any, err error) int {
	if err == nil {
		ch := res.(Chunk)
		require.Equal(t, len(matrixBase), len(ch.Data), "read returned a partial or padded body")
		require.True(t, bytes.Equal(matrixBase, ch.Data))
		require.True(t, ch.UpToDate)
	}
	require.Equal(t, 0, checkAppended(t, ctx, e))
	return 0
}

var unaryOps = []unaryOp{
	{
		name: "create", resetAt: 16,
		setup: func(context.Context, *relEnv) error { return nil },
		run: func(ctx context.Context, c *Client, s string) (any, error) {
			return c.Create(ctx, s, CreateOptions{ContentType: "text/plain", Data: matrixMark})
		},
		check: func(t *testing.T, ctx context.Context, e *relEnv, _ any, err error) int {
			data, rerr := e.content(ctx, "s")
			if err != nil && errors.Is(rerr, ErrNotFound) {
				return 0
			}
			require.NoError(t, rerr)
			require.Equal(t, string(matrixMark), string(data), "create applied more than once or lost its data")
			return 1
		},
	},
	{
		name: "append-producer", resetAt: 16, setup: createBase,
		run: func(ctx context.Context, c *Client, s string) (any, error) {
			return c.Append(ctx, s, matrixMark, AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p1", Epoch: 0, Seq: 0}})
		},
		check: func(t *testing.T, ctx context.Context, e *relEnv, _ any, err error) int {
			n := checkAppended(t, ctx, e)
			require.LessOrEqual(t, n, 1, "producer append duplicated")
			return n
		},
	},
	{
		name: "append-plain", plain: true, resetAt: 16, setup: createBase,
		run: func(ctx context.Context, c *Client, s string) (any, error) {
			return c.Append(ctx, s, matrixMark, AppendOptions{ContentType: "text/plain"})
		},
		check: func(t *testing.T, ctx context.Context, e *relEnv, _ any, err error) int {
			n := checkAppended(t, ctx, e)
			require.LessOrEqual(t, n, 1, "plain append duplicated")
			return n
		},
	},
	{
		name: "close", resetAt: 16, setup: createBase,
		run: func(ctx context.Context, c *Client, s string) (any, error) {
			return c.CloseStream(ctx, s, nil, AppendOptions{})
		},
		check: func(t *testing.T, ctx context.Context, e *relEnv, _ any, err error) int {
			require.Equal(t, 0, checkAppended(t, ctx, e))
			info, herr := e.direct.Head(ctx, "s")
			require.NoError(t, herr)
			if err == nil {
				require.True(t, info.Closed, "close reported success but the stream is open")
			}
			return b2i(info.Closed)
		},
	},
	{
		name: "head", resetAt: 16, setup: createBase,
		run: func(ctx context.Context, c *Client, s string) (any, error) {
			return c.Head(ctx, s)
		},
		check: func(t *testing.T, ctx context.Context, e *relEnv, res any, err error) int {
			want, herr := e.direct.Head(ctx, "s")
			require.NoError(t, herr)
			if err == nil {
				require.Equal(t, want, res.(StreamInfo))
			}
			return 0
		},
	},
	{
		name: "read", resetAt: 4096, setup: createBase,
		run: func(ctx context.Context, c *Client, s string) (any, error) {
			return c.Read(ctx, s, ReadOptions{Offset: OffsetStart})
		},
		check: checkReadAll,
	},
	{
		// One long-poll read from the start: answered at once with the data.
		// Live reads are bounded by the caller's context only.
		name: "read-long-poll", live: true, resetAt: 4096, setup: createBase,
		run: func(ctx context.Context, c *Client, s string) (any, error) {
			ctx, cancel := context.WithTimeout(ctx, liveBound)
			defer cancel()
			return c.Read(ctx, s, ReadOptions{Offset: OffsetStart, Live: LiveLongPoll})
		},
		check: checkReadAll,
	},
	{
		// One SSE read up to its first control event. Once the 200 is in,
		// a cut connection is ErrDisconnected: the caller reconnects.
		name: "read-sse", live: true, resetAt: 4096, setup: createBase,
		run: func(ctx context.Context, c *Client, s string) (any, error) {
			ctx, cancel := context.WithTimeout(ctx, liveBound)
			defer cancel()
			return c.Read(ctx, s, ReadOptions{Offset: OffsetStart, Live: LiveSSE})
		},
		check: checkReadAll,
	},
	{
		name: "delete", resetAt: 16, setup: createBase,
		run: func(ctx context.Context, c *Client, s string) (any, error) {
			return nil, c.Delete(ctx, s)
		},
		check: func(t *testing.T, ctx context.Context, e *relEnv, _ any, err error) int {
			_, herr := e.direct.Head(ctx, "s")
			if err == nil || errors.Is(err, ErrNotFound) {
				require.ErrorIs(t, herr, ErrNotFound, "delete reported success but the stream exists")
				return 1
			}
			if errors.Is(herr, ErrNotFound) {
				return 1
			}
			require.NoError(t, herr)
			return 0
		},
	},
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// unaryFault is one failure of the matrix.
type unaryFault struct {
	name       string
	persistent bool          // server on a data directory (restart)
	maxElapsed time.Duration // retry budget of the client under test
	timeout    time.Duration // WithTimeout of the client under test (0 = none)
	base       func(t *testing.T, e *relEnv) string
	inject     func(e *relEnv, op unaryOp)
	during     func(e *relEnv) // concurrently with the call
	// fired checks, right after the call, that the fault really happened
	// (and, for server faults, that retries did not run wild).
	fired func(t *testing.T, e *relEnv, op unaryOp, err error)
	// expect judges the call's error and how many times its effect landed.
	expect func(t *testing.T, op unaryOp, err error, applied int, elapsed time.Duration)
}

// expectOK: the call succeeded and its effect landed once. A Delete whose
// first attempt was applied but whose answer was lost reports ErrNotFound
// on the retry, as documented.
func expectOK(t *testing.T, op unaryOp, err error, applied int) {
	t.Helper()
	if op.name == "delete" && errors.Is(err, ErrNotFound) {
		require.Equal(t, 1, applied)
		return
	}
	if op.name == "read-sse" && errors.Is(err, ErrDisconnected) {
		// Cut after the 200: documented, the caller reconnects.
		require.True(t, IsRetryable(err))
		return
	}
	require.NoError(t, err)
	switch op.name {
	case "create", "append-producer", "append-plain", "close", "delete":
		require.Equal(t, 1, applied, "effect lost")
	}
}

// expectTyped: the call failed with an *Error wrapping one of targets.
func expectTyped(t *testing.T, err error, retryable bool, targets ...error) *Error {
	t.Helper()
	require.Error(t, err)
	var e *Error
	require.ErrorAs(t, err, &e, "not a *durable.Error: %T %v", err, err)
	ok := false
	for _, target := range targets {
		ok = ok || errors.Is(err, target)
	}
	require.True(t, ok, "error %v is none of %v", err, targets)
	require.Equal(t, retryable, IsRetryable(err), "IsRetryable(%v)", err)
	return e
}

// networkErrs are what a connection cut mid-response may surface as.
var networkErrs = []error{syscall.ECONNRESET, io.ErrUnexpectedEOF, io.EOF, syscall.EPIPE}

// serverAttempts: a server fault hit the first attempts; a plain append
// is sent once, anything else once per fault plus the attempt that works.
func serverAttempts(faulted int) func(*testing.T, *relEnv, unaryOp, error) {
	return func(t *testing.T, e *relEnv, op unaryOp, _ error) {
		want := faulted + 1
		if op.plain {
			want = 1
		}
		require.Equal(t, want, e.server().Requests("s", ""), "requests that reached the server")
	}
}

// proxyClaimed: the armed proxy fault was claimed by a connection.
func proxyClaimed(t *testing.T, e *relEnv, _ unaryOp, _ error) {
	require.Zero(t, e.proxy.Pending(faultproxy.Downstream), "the proxy fault never fired")
}

func after(d time.Duration, f func()) func(*relEnv) {
	return func(*relEnv) {
		t := time.NewTimer(d)
		defer t.Stop()
		<-t.C
		f()
	}
}

var unaryFaults = []unaryFault{
	{
		name: "500-after-apply", maxElapsed: 2 * time.Second,
		inject: func(e *relEnv, _ unaryOp) {
			e.server().InjectFault(testserver.Fault{Path: "s", Status: 500, AfterApply: true, Count: 2})
		},
		fired: serverAttempts(2),
		expect: func(t *testing.T, op unaryOp, err error, applied int, _ time.Duration) {
			if op.plain {
				e := expectTyped(t, err, true, ErrServer)
				require.Equal(t, 500, e.Status)
				require.Equal(t, 1, applied, "the append was applied before the 500")
				return
			}
			expectOK(t, op, err, applied)
		},
	},
	{
		name: "503", maxElapsed: 2 * time.Second,
		inject: func(e *relEnv, _ unaryOp) {
			e.server().InjectFault(testserver.Fault{Path: "s", Status: 503, Count: 2})
		},
		fired: serverAttempts(2),
		expect: func(t *testing.T, op unaryOp, err error, applied int, _ time.Duration) {
			if op.plain {
				expectTyped(t, err, true, ErrServer)
				require.Equal(t, 0, applied)
				return
			}
			expectOK(t, op, err, applied)
		},
	},
	{
		name: "429-retry-after", maxElapsed: 3 * time.Second,
		inject: func(e *relEnv, _ unaryOp) {
			e.server().InjectFault(testserver.Fault{Path: "s", Status: 429, RetryAfter: time.Second, Count: 1})
		},
		fired: serverAttempts(1),
		expect: func(t *testing.T, op unaryOp, err error, applied int, elapsed time.Duration) {
			if op.plain {
				e := expectTyped(t, err, true, ErrStatus)
				require.Equal(t, time.Second, e.RetryAfter)
				require.Equal(t, 0, applied)
				return
			}
			expectOK(t, op, err, applied)
			require.GreaterOrEqual(t, elapsed, 900*time.Millisecond, "Retry-After not honoured")
		},
	},
	{
		name: "refused-then-up", maxElapsed: 3 * time.Second,
		inject: func(e *relEnv, _ unaryOp) { e.proxy.Stop() },
		during: func(e *relEnv) {
			after(150*time.Millisecond, func() { require.NoError(e.t, e.proxy.Restart()) })(e)
		},
		expect: func(t *testing.T, op unaryOp, err error, applied int, _ time.Duration) {
			// Refused at dial: nothing left the machine, so even a plain append retries.
			expectOK(t, op, err, applied)
		},
	},
	{
		name: "refused", maxElapsed: 300 * time.Millisecond,
		inject: func(e *relEnv, _ unaryOp) { e.proxy.Stop() },
		expect: func(t *testing.T, _ unaryOp, err error, applied int, _ time.Duration) {
			expectTyped(t, err, true, syscall.ECONNREFUSED)
			require.Equal(t, 0, applied)
		},
	},
	{
		name: "reset-mid-response", maxElapsed: 2 * time.Second,
		inject: func(e *relEnv, op unaryOp) { e.proxy.ResetAfter(op.resetAt, faultproxy.Downstream, 1) },
		fired:  proxyClaimed,
		expect: func(t *testing.T, op unaryOp, err error, applied int, _ time.Duration) {
			if op.plain {
				expectTyped(t, err, true, networkErrs...)
				require.Equal(t, 1, applied, "the append reached the server before the reset")
				return
			}
			expectOK(t, op, err, applied)
		},
	},
	{
		name: "closed-mid-response", maxElapsed: 2 * time.Second,
		inject: func(e *relEnv, op unaryOp) { e.proxy.CloseAfter(op.resetAt, faultproxy.Downstream, 1) },
		fired:  proxyClaimed,
		expect: func(t *testing.T, op unaryOp, err error, applied int, _ time.Duration) {
			if op.plain {
				expectTyped(t, err, true, networkErrs...)
				require.Equal(t, 1, applied)
				return
			}
			expectOK(t, op, err, applied)
		},
	},
	{
		name: "truncated-after-apply", maxElapsed: 2 * time.Second,
		inject: func(e *relEnv, _ unaryOp) {
			e.server().InjectFault(testserver.Fault{Path: "s", Truncate: true, AfterApply: true, Count: 1})
		},
		fired: func(t *testing.T, e *relEnv, op unaryOp, err error) {
			switch op.name {
			case "head", "close", "delete", "append-plain":
				// Bodyless answers (HEAD, 204): nothing to cut, the client
				// rightly sees the whole response.
				require.Equal(t, 1, e.server().Requests("s", ""))
			case "read-sse":
				// The cut may come after the first control event, which is
				// all a Read waits for.
				require.Equal(t, 1, e.server().Requests("s", ""))
			default:
				serverAttempts(1)(t, e, op, err)
			}
		},
		expect: func(t *testing.T, op unaryOp, err error, applied int, _ time.Duration) {
			if op.plain {
				// A 204 has no body to cut: the client may see success.
				if err != nil {
					expectTyped(t, err, true, networkErrs...)
				}
				require.Equal(t, 1, applied)
				return
			}
			expectOK(t, op, err, applied)
		},
	},
	{
		name: "slow-beyond-timeout", maxElapsed: 2 * time.Second, timeout: 250 * time.Millisecond,
		inject: func(e *relEnv, _ unaryOp) {
			e.server().InjectFault(testserver.Fault{Path: "s", Delay: time.Minute})
		},
		expect: func(t *testing.T, op unaryOp, err error, applied int, _ time.Duration) {
			if op.live {
				expectTyped(t, err, false, context.DeadlineExceeded) // the caller's context
			} else {
				expectTyped(t, err, true, errAttemptTimeout) // each attempt cut off (retried when safe)
			}
			require.Equal(t, 0, applied)
		},
	},
	{
		// The network swallows everything (a dead NAT entry, a blackholed
		// route): no RST, no answer. Only the timeout can end the call.
		name: "blackhole-beyond-timeout", maxElapsed: 2 * time.Second, timeout: 250 * time.Millisecond,
		inject: func(e *relEnv, _ unaryOp) { e.proxy.SetBlackhole(true) },
		expect: func(t *testing.T, op unaryOp, err error, applied int, _ time.Duration) {
			if op.live {
				expectTyped(t, err, false, context.DeadlineExceeded) // the caller's context
			} else {
				expectTyped(t, err, true, errAttemptTimeout) // each attempt cut off (retried when safe)
			}
			require.Equal(t, 0, applied)
		},
	},
	{
		name: "server-restart", persistent: true, maxElapsed: 3 * time.Second,
		inject: func(e *relEnv, _ unaryOp) { e.stopServer() },
		during: func(e *relEnv) { after(150*time.Millisecond, e.startServer)(e) },
		expect: func(t *testing.T, op unaryOp, err error, applied int, _ time.Duration) {
			if op.plain {
				// The proxy accepts, finds no server and resets: the client
				// cannot know the append did not land, so it does not retry.
				if err != nil {
					expectTyped(t, err, true, networkErrs...)
					require.Equal(t, 0, applied)
					return
				}
			}
			expectOK(t, op, err, applied)
		},
	},
	{
		name: "dns-failure", maxElapsed: 300 * time.Millisecond,
		base: func(*testing.T, *relEnv) string { return "http://nonexistent.invalid/v1/stream/" },
		expect: func(t *testing.T, _ unaryOp, err error, applied int, _ time.Duration) {
			var dnsErr *net.DNSError
			require.ErrorAs(t, err, &dnsErr)
			expectTyped(t, err, true, dnsErr)
			require.Equal(t, 0, applied)
		},
	},
	{
		name: "closed-port", maxElapsed: 300 * time.Millisecond,
		base: func(t *testing.T, _ *relEnv) string { return closedPortURL(t) },
		expect: func(t *testing.T, _ unaryOp, err error, applied int, _ time.Duration) {
			expectTyped(t, err, true, syscall.ECONNREFUSED)
			require.Equal(t, 0, applied)
		},
	},
}

// matrixTexts collects every error rendering and log line of a matrix run.
type matrixTexts struct {
	mu    sync.Mutex
	texts []string
	cells int
}

// requireNoSecrets checks, once every cell has run, that at least cells
// cells reported and that no credential appears in what they reported.
func (m *matrixTexts) requireNoSecrets(t *testing.T, cells int) {
	t.Helper()
	if t.Failed() {
		return
	}
	require.GreaterOrEqual(t, m.cells, cells, "cells that reported their texts")
	for _, leak := range secretsIn(m.texts...) {
		t.Errorf("secret leaked: %s", leak)
	}
}

func (m *matrixTexts) add(texts ...string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.texts = append(m.texts, texts...)
	m.cells++
}

// TestFaultMatrixUnary runs the unary row with credentials attached to
// every request (see relSecrets) and then greps every error rendering and
// log line the row produced for them: the secrets test of the matrix.
func TestFaultMatrixUnary(t *testing.T) {
	t.Parallel()
	out := &matrixTexts{}
	t.Run("row", func(t *testing.T) { runUnaryMatrix(t, true, out) })
	out.requireNoSecrets(t, len(unaryOps)*len(unaryFaults))
}

// runUnaryMatrix runs every unaryOp against every unaryFault, in secret
// mode with credentials on every request, handing every error text and log
// line to out.
func runUnaryMatrix(t *testing.T, secret bool, out *matrixTexts) {
	for _, f := range unaryFaults {
		for _, op := range unaryOps {
			t.Run(f.name+"/"+op.name, func(t *testing.T) {
				t.Parallel()
				e := newRelEnv(t, f.persistent, secret)
				ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
				defer cancel()
				require.NoError(t, op.setup(ctx, e))

				base := e.viaProxy()
				if f.base != nil {
					base = f.base(t, e)
				}
				opts := []Option{WithRetry(relPolicy(f.maxElapsed))}
				if f.timeout > 0 {
					opts = append(opts, WithRequestTimeout(f.timeout))
				}
				c := e.client(base, opts...)
				e.server().ResetRequests()
				if f.inject != nil {
					f.inject(e, op)
				}
				var wg sync.WaitGroup
				if f.during != nil {
					wg.Go(func() { f.during(e) })
				}
				start := time.Now()
				res, err := op.run(ctx, c, e.stream(base, "s"))
				elapsed := time.Since(start)
				require.NoError(t, ctx.Err(), "the call did not return within %v (err: %v)", cellDeadline, err)
				wg.Wait()
				if f.fired != nil {
					f.fired(t, e, op, err)
				}
				e.server().ClearFaults()
				e.proxy.Clear()
				require.NoError(t, e.proxy.Restart())

				applied := op.check(t, ctx, e, res, err)
				f.expect(t, op, err, applied, elapsed)
				out.add(append(errTexts(err), e.log.String())...)
				if err != nil {
					t.Logf("%s/%s: %v (after %v)", f.name, op.name, err, elapsed.Round(time.Millisecond))
				}
			})
		}
	}
}

// ---------------------------------------------------------------- Reader and Writer rows
//
// A Reader tails a stream in long-poll and SSE mode while another client
// appends and then closes it; a Writer sends batches. Each goes through
// every fault. A Reader must deliver every message exactly once and in
// order and end with io.EOF, without a hot loop; a Writer's Flush must
// return nil with every message in the stream exactly once and in order —
// or either returns the documented typed error before its deadline.

// rwMsg is the message type of the Reader and Writer rows.
type rwMsg struct {
	I int `json:"i"`
}

const (
	rwInitial = 40 // messages in the stream before the Reader starts
	rwLater   = 40 // messages appended while it tails, before the close
	rwWrites  = 120
)

// rwFault is one failure of the Reader and Writer rows. method is the
// HTTP method the component under test uses for its data (GET or POST);
// server faults match only it, so setup and checks are not disturbed.
type rwFault struct {
	name       string
	persistent bool
	permanent  bool          // the fault never clears: a typed error is expected
	maxElapsed time.Duration // retry budget (Reader and Writer policies)
	base       func(t *testing.T, e *relEnv) string
	inject     func(e *relEnv, method string)
	during     func(e *relEnv)
	errIs      []error // permanent: what the error must wrap (any of)
	errAs      func(err error) bool
}

func rwServerFault(f testserver.Fault) func(*relEnv, string) {
	return func(e *relEnv, method string) {
		g := f // the closure is shared by parallel cells: never write f
		g.Method = method
		e.server().InjectFault(g)
	}
}

var rwFaults = []rwFault{
	{name: "500-after-apply", maxElapsed: 5 * time.Second, inject: rwServerFault(testserver.Fault{Status: 500, AfterApply: true, Count: 3})},
	{name: "503", maxElapsed: 5 * time.Second, inject: rwServerFault(testserver.Fault{Status: 503, Count: 3})},
	{name: "429-retry-after", maxElapsed: 5 * time.Second, inject: rwServerFault(testserver.Fault{Status: 429, RetryAfter: time.Second, Count: 1})},
	{
		name: "refused-then-up", maxElapsed: 5 * time.Second,
		inject: func(e *relEnv, _ string) { e.proxy.Stop() },
		during: func(e *relEnv) {
			after(150*time.Millisecond, func() { require.NoError(e.t, e.proxy.Restart()) })(e)
		},
	},
	{
		name: "refused", permanent: true, maxElapsed: 300 * time.Millisecond,
		inject: func(e *relEnv, _ string) { e.proxy.Stop() },
		errIs:  []error{syscall.ECONNREFUSED},
	},
	{
		name: "reset-mid-response", maxElapsed: 5 * time.Second,
		inject: func(e *relEnv, _ string) { e.proxy.ResetAfter(300, faultproxy.Downstream, 3) },
	},
	{
		name: "closed-mid-response", maxElapsed: 5 * time.Second,
		inject: func(e *relEnv, _ string) { e.proxy.CloseAfter(300, faultproxy.Downstream, 3) },
	},
	{name: "truncated-after-apply", maxElapsed: 5 * time.Second, inject: rwServerFault(testserver.Fault{Truncate: true, AfterApply: true, Count: 3})},
	{
		// A response slower than the caller will wait: the call returns the
		// context's error at the deadline; with the fault gone, the same
		// Reader or Writer then carries on with nothing lost or repeated.
		name: "slow-beyond-timeout", maxElapsed: 5 * time.Second,
		inject: rwServerFault(testserver.Fault{Delay: time.Minute}),
	},
	{
		name: "server-restart", persistent: true, maxElapsed: 5 * time.Second,
		inject: func(e *relEnv, _ string) { e.stopServer() },
		during: func(e *relEnv) { after(150*time.Millisecond, e.startServer)(e) },
	},
	{
		name: "dns-failure", permanent: true, maxElapsed: 300 * time.Millisecond,
		base:  func(*testing.T, *relEnv) string { return "http://nonexistent.invalid/v1/stream/" },
		errAs: func(err error) bool { var d *net.DNSError; return errors.As(err, &d) },
	},
	{
		name: "closed-port", permanent: true, maxElapsed: 300 * time.Millisecond,
		base:  func(t *testing.T, _ *relEnv) string { return closedPortURL(t) },
		errIs: []error{syscall.ECONNREFUSED},
	},
}

// checkPermanent asserts a permanent fault's typed error.
func (f rwFault) checkPermanent(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var de *Error
	require.ErrorAs(t, err, &de, "not a *durable.Error: %T %v", err, err)
	if f.errAs != nil {
		require.True(t, f.errAs(err), "unexpected error %v", err)
	}
	if len(f.errIs) > 0 {
		expectTyped(t, err, true, f.errIs...)
	}
}

// jsonBatch encodes messages from..to-1 as one JSON array.
func jsonBatch(from, to int) []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i := from; i < to; i++ {
		if i > from {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"i":%d}`, i)
	}
	b.WriteByte(']')
	return []byte(b.String())
}

// TestFaultMatrixReader runs the Reader rows with credentials attached,
// then greps what they produced for them (see TestFaultMatrixUnary).

// TestFaultMatrixReader runs the Reader rows with credentials attached,
// then greps what they produced for them (see TestFaultMatrixUnary).
func TestFaultMatrixReader(t *testing.T) {
	t.Parallel()
	out := &matrixTexts{}
	t.Run("row", func(t *testing.T) { runReaderMatrix(t, true, out) })
	out.requireNoSecrets(t, 3*len(rwFaults))
}

func runReaderMatrix(t *testing.T, secret bool, out *matrixTexts) {
	for _, f := range rwFaults {
		for _, mode := range []LiveMode{LiveLongPoll, LiveSSE, LiveAuto} {
			t.Run(f.name+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				e := newRelEnvWith(t, f.persistent, secret, testserver.WithLongPollTimeout(300*time.Millisecond), testserver.WithSSECloseInterval(time.Second))
				ctx, cancel := context.WithTimeout(context.Background(), 3*cellDeadline)
				defer cancel()
				_, err := e.direct.Create(ctx, "r", CreateOptions{ContentType: "application/json", Data: jsonBatch(0, rwInitial)})
				require.NoError(t, err)

				base := e.viaProxy()
				if f.base != nil {
					base = f.base(t, e)
				}
				var retries []RetryEvent
				var rmu sync.Mutex
				c := e.client(base, WithHooks(onRetry(func(ev RetryEvent) { rmu.Lock(); retries = append(retries, ev); rmu.Unlock() })))
				r, err := NewReader(c, e.stream(base, "r"), JSONCodec[rwMsg]{}, WithLive(mode), WithRetry(relPolicy(f.maxElapsed)))
				require.NoError(t, err)
				defer r.Close(context.Background())

				e.server().ResetRequests()
				if f.inject != nil {
					f.inject(e, http.MethodGet)
				}
				var wg sync.WaitGroup
				if f.during != nil {
					wg.Go(func() { f.during(e) })
				}
				var got []int
				next := func(ctx context.Context) error {
					msg, err := r.Next(ctx)
					if err == nil {
						got = append(got, msg.Value.I)
					}
					return err
				}

				if f.permanent {
					err := next(ctx)
					require.NoError(t, ctx.Err(), "Next did not return in time (err: %v)", err)
					f.checkPermanent(t, err)
					require.Empty(t, got)
					wg.Wait()
					out.add(append(errTexts(err), e.log.String())...)
					return
				}
				if f.name == "slow-beyond-timeout" {
					short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
					err := next(short)
					cancelShort()
					require.ErrorIs(t, err, context.DeadlineExceeded)
					require.NoError(t, ctx.Err())
					out.add(errTexts(err)...)
					e.server().ClearFaults()
				}

				// Catch up, then tail while another client appends and closes.
				for len(got) < rwInitial {
					require.NoError(t, next(ctx), "after %d messages", len(got))
				}
				wg.Wait()
				e.server().ClearFaults()
				if f.inject != nil && f.name != "slow-beyond-timeout" && f.name != "429-retry-after" {
					// The same fault again, now on live reads (429 once is
					// enough: its Retry-After second is all it adds).
					f.inject(e, http.MethodGet)
				}
				if f.during != nil {
					wg.Go(func() { f.during(e) })
				}
				wg.Go(func() {
					for i := rwInitial; i < rwInitial+rwLater; i += 10 {
						if _, err := e.directAppend(ctx, "r", int64((i-rwInitial)/10), jsonBatch(i, i+10)); err != nil {
							t.Errorf("append: %v", err)
							return
						}
					}
					if _, err := e.directClose(ctx, "r"); err != nil {
						t.Errorf("close: %v", err)
					}
				})
				var end error
				for {
					if end = next(ctx); end != nil {
						break
					}
				}
				wg.Wait()
				if f.name == "slow-beyond-timeout" && errors.Is(end, context.DeadlineExceeded) {
					require.Failf(t, "live read hung", "%v", end)
				}
				require.ErrorIs(t, end, io.EOF, "after %d messages", len(got))
				want := make([]int, rwInitial+rwLater)
				for i := range want {
					want[i] = i
				}
				require.Equal(t, want, got, "messages lost, repeated or reordered")

				// EOF is final and costs no request.
				reqs := e.server().Requests("r", "")
				_, err = r.Next(ctx)
				require.ErrorIs(t, err, io.EOF)
				require.Equal(t, reqs, e.server().Requests("r", ""), "a request after EOF")
				require.Less(t, reqs, 200, "too many requests: a hot loop?")
				rmu.Lock()
				failures := 0
				for _, ri := range retries {
					if ri.Err != nil {
						failures++
					}
				}
				rmu.Unlock()
				out.add(e.log.String())
				t.Logf("%d requests, %d retries after a failure", reqs, failures)
				if f.name != "slow-beyond-timeout" {
					require.Positive(t, failures, "the fault never reached the Reader")
				}
			})
		}
	}
}

// TestFaultMatrixWriter runs the Writer row with credentials attached,
// then greps what it produced for them.
func TestFaultMatrixWriter(t *testing.T) {
	t.Parallel()
	out := &matrixTexts{}
	t.Run("row", func(t *testing.T) { runWriterMatrix(t, true, out) })
	out.requireNoSecrets(t, len(rwFaults))
}

func runWriterMatrix(t *testing.T, secret bool, out *matrixTexts) {
	for _, f := range rwFaults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			e := newRelEnvWith(t, f.persistent, secret)
			ctx, cancel := context.WithTimeout(context.Background(), 3*cellDeadline)
			defer cancel()
			_, err := e.direct.Create(ctx, "w", CreateOptions{ContentType: "application/json"})
			require.NoError(t, err)

			base := e.viaProxy()
			if f.base != nil {
				base = f.base(t, e)
			}
			var copts []Option
			if f.name == "slow-beyond-timeout" {
				// The Writer bounds each attempt by the Client's WithTimeout.
				copts = append(copts, WithRequestTimeout(250*time.Millisecond))
			}
			c := e.client(base, copts...)
			w, err := NewWriter(c, e.stream(base, "w"), JSONCodec[rwMsg]{}, WithRetry(relPolicy(f.maxElapsed)),
				WithMaxBatch(10, 1<<20), WithLinger(time.Millisecond), WithMaxInFlight(2))
			require.NoError(t, err)
			defer func() {
				cctx, ccancel := context.WithTimeout(context.Background(), cellDeadline)
				defer ccancel()
				_ = w.Close(cctx)
				require.NoError(t, cctx.Err(), "Close did not return in time")
			}()

			e.server().ResetRequests()
			var wg sync.WaitGroup
			inject := func() {
				switch {
				case f.name == "slow-beyond-timeout":
					// The first two attempts get no answer in time; the third does.
					e.server().InjectFault(testserver.Fault{Path: "w", Method: http.MethodPost, Delay: time.Minute, Count: 2})
				case f.inject != nil:
					f.inject(e, http.MethodPost)
				}
				if f.during != nil {
					wg.Go(func() { f.during(e) })
				}
			}
			inject()
			for i := range rwWrites {
				require.NoError(t, w.Write(ctx, rwMsg{I: i}))
			}
			err = w.Flush(ctx)
			require.NoError(t, ctx.Err(), "Flush did not return in time (err: %v)", err)
			wg.Wait()
			e.server().ClearFaults()
			e.proxy.Clear()
			require.NoError(t, e.proxy.Restart())
			out.add(append(errTexts(err), e.log.String())...)

			var got []int
			raws, rerr := e.messages(ctx, "w")
			require.NoError(t, rerr)
			for _, raw := range raws {
				var m rwMsg
				require.NoError(t, json.Unmarshal(raw, &m))
				got = append(got, m.I)
			}
			if f.permanent {
				f.checkPermanent(t, err)
				require.Empty(t, got, "nothing can have landed")
				return
			}
			require.NoError(t, err)
			want := make([]int, rwWrites)
			for i := range want {
				want[i] = i
			}
			require.Equal(t, want, got, "messages lost, repeated or reordered")
			retried := strings.Count(e.log.String(), "msg=\"durable: retrying\" op=write")
			t.Logf("%d POSTs, %d retries", e.server().Requests("w", http.MethodPost), retried)
			require.Positive(t, retried, "the fault never reached the Writer")

			// CloseStream (a final message and the close, with producer
			// headers) through the same fault: closed, the final message
			// there once.
			inject()
			err = w.CloseStream(ctx, rwMsg{I: rwWrites})
			require.NoError(t, ctx.Err(), "CloseStream did not return in time (err: %v)", err)
			wg.Wait()
			e.server().ClearFaults()
			e.proxy.Clear()
			require.NoError(t, e.proxy.Restart())
			out.add(append(errTexts(err), e.log.String())...)
			require.NoError(t, err)
			info, herr := e.direct.Head(ctx, "w")
			require.NoError(t, herr)
			require.True(t, info.Closed, "CloseStream returned nil on an open stream")
			raws, rerr = e.messages(ctx, "w")
			require.NoError(t, rerr)
			require.Len(t, raws, rwWrites+1, "the final message lost or repeated")
			require.JSONEq(t, fmt.Sprintf(`{"i":%d}`, rwWrites), string(raws[rwWrites]))
		})
	}
}

// TestWriterAttemptTimeout: with the Client's WithTimeout, one Writer
// attempt that gets no answer is abandoned and retried (safe: producer
// headers), instead of stalling the batch and all batches behind it.
func TestWriterAttemptTimeout(t *testing.T) {
	t.Parallel()
	e := newRelEnv(t, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
	defer cancel()
	_, err := e.direct.Create(ctx, "w", CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	c := e.client(e.viaProxy(), WithRequestTimeout(250*time.Millisecond))
	w, err := NewWriter(c, "w", JSONCodec[rwMsg]{}, WithRetry(relPolicy(5*time.Second)))
	require.NoError(t, err)
	defer w.Close(ctx)
	e.server().InjectFault(testserver.Fault{Method: http.MethodPost, Delay: time.Minute, Count: 1})
	require.NoError(t, w.Write(ctx, rwMsg{I: 1}))
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	require.NoError(t, w.Flush(short))
}

// ---------------------------------------------------------------- permanent statuses

// permanentStatuses are answers no retry can change: each must surface at
// once as its sentinel, after exactly one request (no retry, no hot loop).
var permanentStatuses = []struct {
	status int
	want   error
}{
	{400, ErrBadRequest},
	{401, ErrUnauthorized},
	{403, ErrForbidden},
	{404, ErrNotFound},
	{410, ErrGone},
}

// TestFaultMatrixPermanent: every unary call and the Reader, in every
// mode, against every permanent status.
func TestFaultMatrixPermanent(t *testing.T) {
	t.Parallel()
	for _, ps := range permanentStatuses {
		for _, op := range unaryOps {
			t.Run(fmt.Sprintf("%d/%s", ps.status, op.name), func(t *testing.T) {
				t.Parallel()
				e := newRelEnv(t, false, true)
				ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
				defer cancel()
				require.NoError(t, op.setup(ctx, e))
				c := e.client(e.viaProxy(), WithRetry(relPolicy(5*time.Second)))
				e.server().ResetRequests()
				e.server().InjectFault(testserver.Fault{Path: "s", Status: ps.status})
				_, err := op.run(ctx, c, e.stream(e.viaProxy(), "s"))
				require.NoError(t, ctx.Err())
				e2 := expectTyped(t, err, false, ps.want)
				require.Equal(t, ps.status, e2.Status)
				require.Equal(t, 1, e.server().Requests("s", ""), "a permanent status was retried")
				require.Empty(t, secretsIn(append(errTexts(err), e.log.String())...))
			})
		}
		for _, mode := range []LiveMode{LiveNone, LiveLongPoll, LiveSSE} {
			t.Run(fmt.Sprintf("%d/reader-%s", ps.status, modeName(mode)), func(t *testing.T) {
				t.Parallel()
				e := newRelEnv(t, false, true)
				ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
				defer cancel()
				_, err := e.direct.Create(ctx, "r", CreateOptions{ContentType: "application/json", Data: jsonBatch(0, 3)})
				require.NoError(t, err)
				c := e.client(e.viaProxy())
				r, err := NewReader(c, e.stream(e.viaProxy(), "r"), JSONCodec[rwMsg]{}, WithLive(mode))
				require.NoError(t, err)
				defer r.Close(context.Background())
				e.server().ResetRequests()
				e.server().InjectFault(testserver.Fault{Path: "r", Status: ps.status})
				_, err = r.Next(ctx)
				require.NoError(t, ctx.Err(), "a permanent status is retried forever")
				expectTyped(t, err, false, ps.want)
				reqs := e.server().Requests("r", "")
				require.LessOrEqual(t, reqs, 1, "a permanent status was retried")
				_, again := r.Next(ctx)
				require.ErrorIs(t, again, ps.want, "sticky")
				require.Equal(t, reqs, e.server().Requests("r", ""), "a sticky error sent a request")
				require.Empty(t, secretsIn(append(errTexts(err), e.log.String())...))
			})
		}
	}
}

// TestFaultMatrixPermanentWriter: the Writer against every permanent
// status: Flush returns it, after one request per batch in flight, and the
// Writer stays failed (sticky) without sending more.
func TestFaultMatrixPermanentWriter(t *testing.T) {
	t.Parallel()
	for _, ps := range permanentStatuses {
		t.Run(fmt.Sprint(ps.status), func(t *testing.T) {
			t.Parallel()
			e := newRelEnv(t, false, true)
			ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
			defer cancel()
			_, err := e.direct.Create(ctx, "w", CreateOptions{ContentType: "application/json"})
			require.NoError(t, err)
			c := e.client(e.viaProxy())
			w, err := NewWriter(c, e.stream(e.viaProxy(), "w"), JSONCodec[rwMsg]{}, WithMaxBatch(10, 1<<20), WithMaxInFlight(2))
			require.NoError(t, err)
			defer w.Close(ctx)
			e.server().ResetRequests()
			e.server().InjectFault(testserver.Fault{Path: "w", Method: http.MethodPost, Status: ps.status})
			for i := range 50 {
				if err := w.Write(ctx, rwMsg{I: i}); err != nil {
					require.ErrorIs(t, err, ps.want, "a write after the failure")
					break
				}
			}
			err = w.Flush(ctx)
			require.NoError(t, ctx.Err(), "Flush did not return in time")
			expectTyped(t, err, false, ps.want)
			posts := e.server().Requests("w", http.MethodPost)
			require.LessOrEqual(t, posts, 2, "a permanent status was retried")
			require.ErrorIs(t, w.Write(ctx, rwMsg{I: 99}), ps.want, "sticky")
			require.ErrorIs(t, w.Flush(ctx), ps.want, "sticky")
			require.Equal(t, posts, e.server().Requests("w", http.MethodPost), "a failed Writer sent more")
			require.Empty(t, secretsIn(append(errTexts(err), e.log.String())...))
		})
	}
}

func modeName(m LiveMode) string {
	if m == LiveNone {
		return "none"
	}
	return string(m)
}

// TestReaderAttemptTimeout: a catch-up read the network swallows (no
// answer, no reset) is abandoned after the Client's WithTimeout and
// retried, instead of holding the Reader until its caller gives up.
func TestReaderAttemptTimeout(t *testing.T) {
	t.Parallel()
	e := newRelEnv(t, false, false)
	ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
	defer cancel()
	_, err := e.direct.Create(ctx, "r", CreateOptions{ContentType: "application/json", Data: jsonBatch(0, 3)})
	require.NoError(t, err)
	c := e.client(e.viaProxy(), WithRequestTimeout(250*time.Millisecond))
	r, err := NewReader(c, "r", JSONCodec[rwMsg]{}, WithRetry(relPolicy(0)))
	require.NoError(t, err)
	defer r.Close(context.Background())
	e.proxy.SetBlackhole(true)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { after(100*time.Millisecond, func() { e.proxy.SetBlackhole(false) })(e) })
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	msg, err := r.Next(short)
	require.NoError(t, err)
	require.Equal(t, 0, msg.Value.I)
}
