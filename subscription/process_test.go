//go:build subprocess

package subscription

// Process tests: worker PROCESSES (this test binary, started again as a
// child) share one subscription of a real server, durable serve
// --subscriptions or the Node reference server, while a writer appends;
// some are SIGKILLed at random and one is SIGSTOPped past its lease. Run by
// .ci/steps/50-subscriptions.sh:
//
//	DURABLE_INTEROP_DIR=dir-with-node_modules-and-node-server.mjs \
//	DURABLE_INTEROP_NODE=$(command -v node) DURABLE_INTEROP_DURABLE=path/to/durable \
//	go test -race -tags subprocess -run TestProcess ./subscription/
//
// Each worker prints one line per event on stdout:
//
//	R 0                              ready: SIGTERM is handled from now on
//	C <gen> <stream>=<acked> ...     claimed: the acked offset of every link
//	H <gen> <stream> <seq> <offset> <skip> <t>   handled; t: when the handler was called (Unix ns)
//	A <gen> <done> <stream>=<offset> ...     an ack the server accepted
//	L <gen> <kind> <t>               the server refused the wake (kind: fenced, token, gone) at t
//	E <gen>                          the lease ran out on this side

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
)

func init() { childMain = processChild }

// Child process environment.
const (
	envChild = "DSUB_CHILD" // "worker"
	envBase  = "DSUB_BASE"  // stream base URL
	envSubID = "DSUB_ID"
	envName  = "DSUB_NAME"
)

// processChild runs a worker until SIGTERM when the environment asks.
func processChild() bool {
	if os.Getenv(envChild) != "worker" {
		return false
	}
	ctx, stop := signalContext()
	defer stop()
	c, err := durable.NewClient(os.Getenv(envBase))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := &lineOut{w: os.Stdout}
	out.printf("R 0")
	w, err := NewWorker(c, os.Getenv(envSubID), func(ctx context.Context, m Message[item]) error {
		at := time.Now().UnixNano()
		out.printf("H %d %s %d %s %d %d", m.Generation, m.Stream, m.Value.Seq, m.Position.Offset, m.Position.Skip, at)
		return nil
	}, WithName(os.Getenv(envName)), WithConcurrency(8), WithAckInterval(50*time.Millisecond),
		WithPollInterval(500*time.Millisecond), withObserver(&lineObserver{out: out}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
	os.Exit(0)
	return true
}

// lineOut writes whole lines, one write each (a SIGKILL loses none that
// was written).
type lineOut struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *lineOut) printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = fmt.Fprintf(o.w, format+"\n", args...)
}

// lineObserver prints a worker's wake events.
type lineObserver struct {
	nopObserver
	out *lineOut
}

func (o *lineObserver) claimed(w *Wake) {
	var b strings.Builder
	for _, l := range w.Links {
		fmt.Fprintf(&b, " %s=%s", l.Path, l.Acked)
	}
	o.out.printf("C %d%s", w.Generation, b.String())
}

func (o *lineObserver) acked(w *Wake, acks []Ack, done bool) {
	var b strings.Builder
	for _, a := range acks {
		fmt.Fprintf(&b, " %s=%s", a.Stream, a.Offset)
	}
	o.out.printf("A %d %v%s", w.Generation, done, b.String())
}

func (o *lineObserver) lost(w *Wake, err error) {
	kind := "other"
	switch {
	case errors.Is(err, ErrFenced):
		kind = "fenced"
	case errors.Is(err, ErrTokenInvalid), errors.Is(err, ErrTokenExpired):
		kind = "token"
	case errors.Is(err, ErrNotFound):
		kind = "gone"
	}
	o.out.printf("L %d %s %d", w.Generation, kind, time.Now().UnixNano())
}

func (o *lineObserver) expired(w *Wake) { o.out.printf("E %d", w.Generation) }

// ---------------------------------------------------------------- parent

// procEnv is where the process tests find their servers.
type procEnv struct {
	dir, node, durable string
}

// needProcEnv fails the test (never skips) when a part is missing.
func needProcEnv(t *testing.T) procEnv {
	t.Helper()
	e := procEnv{dir: os.Getenv("DURABLE_INTEROP_DIR"), node: os.Getenv("DURABLE_INTEROP_NODE"), durable: os.Getenv("DURABLE_INTEROP_DURABLE")}
	var missing []string
	for name, p := range map[string]string{"DURABLE_INTEROP_DIR": e.dir, "DURABLE_INTEROP_NODE": e.node, "DURABLE_INTEROP_DURABLE": e.durable} {
		if _, err := os.Stat(p); p == "" || err != nil {
			missing = append(missing, name)
		}
	}
	if e.dir != "" {
		if _, err := os.Stat(filepath.Join(e.dir, "node_modules", "@durable-streams", "server")); err != nil {
			missing = append(missing, "DURABLE_INTEROP_DIR/node_modules/@durable-streams/server")
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("process test environment incomplete (run .ci/steps/50-subscriptions.sh): %s", strings.Join(missing, ", "))
	}
	return e
}

// child is a child process whose stdout lines are kept.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}

	mu    sync.Mutex
	lines []string
	err   strings.Builder
}

// startChild starts argv with extra environment; the test's cleanup kills
// it if it still runs.
func startChild(t *testing.T, name, dir string, env []string, argv ...string) *child {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = &lockedWriter{mu: &c.mu, b: &c.err}
	require.NoError(t, cmd.Start(), name)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		<-c.done
	})
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (c *child) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

func (c *child) stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err.String()
}

// firstLine waits for the child's first stdout line.
func (c *child) firstLine(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if l := c.snapshot(); len(l) > 0 {
			return l[0]
		}
		select {
		case <-c.done:
			t.Fatalf("%s exited: %s", c.name, c.stderr())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s printed nothing: %s", c.name, c.stderr())
	return ""
}

// exitCode waits for the child to exit (30 s at most).
func (c *child) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit", c.name)
	}
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return c.cmd.ProcessState.ExitCode()
}

// server is a server under test: its stream base URL.
type server struct {
	name string
	base string
}

func startDurableServe(t *testing.T, e procEnv) server {
	c := startChild(t, "durable serve", "", nil, e.durable, "serve", "--addr", "127.0.0.1:0",
		"--subscriptions", "--allow-loopback-webhooks")
	u := c.firstLine(t)
	require.True(t, strings.HasPrefix(u, "http://127.0.0.1:"), "durable serve printed %q", u)
	return server{name: "durable serve --subscriptions", base: u + "/v1/stream/"}
}

func startNodeServer(t *testing.T, e procEnv, webhooks bool) server {
	env := []string{"LONG_POLL_TIMEOUT_MS=2000"}
	if webhooks {
		env = append(env, "WEBHOOKS=1")
	}
	c := startChild(t, "Node reference server", e.dir, env, e.node, "node-server.mjs")
	u := c.firstLine(t)
	require.True(t, strings.HasPrefix(u, "http://127.0.0.1:"), "node-server.mjs printed %q", u)
	return server{name: "Node reference server 0.3.7", base: u + "/v1/stream/"}
}

// TestProcessWorkers: 3 worker processes share one subscription over 50
// streams while a writer appends 20,000 messages, against durable serve
// --subscriptions and the Node reference server, without and with chaos
// (at least 20 SIGKILLs, one SIGSTOP past the lease).
func TestProcessWorkers(t *testing.T) {
	e := needProcEnv(t)
	servers := []struct {
		name  string
		start func(*testing.T, procEnv) server
	}{
		{"durable serve", startDurableServe},
		{"Node server", func(t *testing.T, e procEnv) server { return startNodeServer(t, e, false) }},
	}
	for _, chaos := range []bool{false, true} {
		for _, sv := range servers {
			t.Run(fmt.Sprintf("%s/chaos=%v", sv.name, chaos), func(t *testing.T) {
				runProcessScenario(t, sv.start(t, e), chaos)
			})
		}
	}
}

// Scenario size.
const (
	procStreams   = 50
	procPerStream = 400 // 20,000 messages
	procWorkers   = 3
	procLease     = 2 * time.Second
	procKills     = 20
)

// scenario is one run: the server, the subscription, the worker processes.
type scenario struct {
	t    *testing.T
	srv  server
	c    *durable.Client
	sub  *Subscription
	self string // this test binary

	mu      sync.Mutex
	workers []*child // every worker process started, in order
	live    []*child // the running ones
	started int
}

func runProcessScenario(t *testing.T, srv server, chaos bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c, err := durable.NewClient(srv.base)
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	self, err := os.Executable()
	require.NoError(t, err)
	sc := &scenario{t: t, srv: srv, c: c, self: self}

	// Streams first, then the subscription: every stream is linked at its
	// (empty) tail, which the checks take as "before message 1".
	id := fmt.Sprintf("proc-%d", time.Now().UnixNano())
	streams := make([]string, procStreams)
	for i := range streams {
		streams[i] = fmt.Sprintf("%s/s%02d", id, i)
		_, err := c.Create(ctx, streams[i], durable.CreateOptions{ContentType: "application/json"})
		require.NoError(t, err)
	}
	wake := id + "-wake"
	_, err = c.Create(ctx, wake, durable.CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	sc.sub, err = Open(c, id)
	require.NoError(t, err)
	_, _, err = sc.sub.Create(ctx, Config{Type: PullWake, Pattern: id + "/*", WakeStream: wake, LeaseTTL: procLease})
	require.NoError(t, err)
	info, err := sc.sub.Get(ctx)
	require.NoError(t, err)
	require.Len(t, info.Links, procStreams)
	initial := map[string]durable.Offset{}
	for _, l := range info.Links {
		initial[l.Path] = l.Acked
	}

	mon := sc.monitor(ctx)
	for range procWorkers {
		sc.spawn()
	}
	writeDone := make(chan error, 1)
	go func() { writeDone <- writeAll(ctx, c, streams) }()

	var stopped stopReport
	kills := 0
	if chaos {
		kills, stopped = sc.chaos(ctx, writeDone)
	} else {
		require.NoError(t, <-writeDone)
	}
	tails := map[string]durable.Offset{}
	for _, s := range streams {
		h, err := c.Head(ctx, s)
		require.NoError(t, err)
		tails[s] = h.NextOffset
	}
	sc.waitAcked(ctx, tails)
	mon.stop()
	require.Empty(t, mon.errs(), "acked offsets moved backwards")

	sc.mu.Lock()
	live := append([]*child(nil), sc.live...)
	sc.mu.Unlock()
	for _, w := range live {
		require.Equal(t, "R 0", w.firstLine(t), w.name) // a child not ready yet would die of SIGTERM
		require.NoError(t, w.cmd.Process.Signal(syscall.SIGTERM))
	}
	for _, w := range live {
		require.Equal(t, 0, w.exitCode(t), "%s on SIGTERM: %s", w.name, w.stderr())
	}
	tot := sc.check(initial, streams, stopped)
	t.Logf("[%s, chaos=%v] %d messages: handled %d times (%d redelivered after a kill or fence), %d wakes, %d fenced, %d kills, %d worker processes",
		srv.name, chaos, procStreams*procPerStream, tot.handled, tot.handled-procStreams*procPerStream, tot.wakes, tot.fenced, kills, len(sc.workers))
	if chaos {
		require.GreaterOrEqual(t, kills, procKills)
		require.GreaterOrEqual(t, tot.fenced, 1, "the SIGSTOPped worker was fenced")
	}
}

// spawn starts one more worker process.
func (sc *scenario) spawn() *child {
	sc.mu.Lock()
	sc.started++
	n := sc.started
	sc.mu.Unlock()
	name := fmt.Sprintf("worker-%d", n)
	w := startChild(sc.t, name, "", []string{envChild + "=worker", envBase + "=" + sc.srv.base, envSubID + "=" + sc.sub.ID(), envName + "=" + name,
		"GORACE=atexit_sleep_ms=0 halt_on_error=1"}, sc.self, "-test.run=^$")
	sc.mu.Lock()
	sc.workers = append(sc.workers, w)
	sc.live = append(sc.live, w)
	sc.mu.Unlock()
	return w
}

// writeAll appends seq 1..procPerStream to every stream, one Writer per
// stream, spread over about 10 s, and checks every message landed.
func writeAll(ctx context.Context, c *durable.Client, streams []string) error {
	writers := make([]*durable.Writer[item], len(streams))
	for i, s := range streams {
		w, err := durable.NewWriter[item](c, s, durable.WithLinger(5*time.Millisecond))
		if err != nil {
			return err
		}
		writers[i] = w
	}
	tick := time.NewTicker(10 * time.Second / procPerStream)
	defer tick.Stop()
	for seq := 1; seq <= procPerStream; seq++ {
		for i, w := range writers {
			if err := w.Write(ctx, item{Stream: streams[i], Seq: seq}); err != nil {
				return err
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var errs []error
	for _, w := range writers {
		errs = append(errs, w.Close(ctx))
	}
	return errors.Join(errs...)
}

// stopReport says which worker was SIGSTOPped and in which generation.
type stopReport struct {
	w   *child
	gen int64
}

// chaos SIGKILLs a random worker every 300-600 ms and starts another,
// until the writer is done and at least procKills were killed; midway it
// SIGSTOPs a worker that has just claimed, past its lease, and continues
// it once another worker has claimed a later generation.
func (sc *scenario) chaos(ctx context.Context, writeDone <-chan error) (int, stopReport) {
	t := sc.t
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills := 0
	written := false
	var stop stopReport
	for !written || kills < procKills {
		select {
		case err := <-writeDone:
			require.NoError(t, err)
			written = true
		case <-time.After(time.Duration(300+rng.IntN(300)) * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("chaos: out of time")
		}
		if kills == procKills/2 && stop.w == nil {
			stop = sc.stopOne(ctx)
		}
		sc.mu.Lock()
		i := rng.IntN(len(sc.live))
		victim := sc.live[i]
		sc.live = append(sc.live[:i], sc.live[i+1:]...)
		sc.mu.Unlock()
		require.NoError(t, victim.cmd.Process.Kill())
		require.Equal(t, -int(syscall.SIGKILL), victim.exitCode(t))
		kills++
		sc.spawn()
	}
	return kills, stop
}

// stopOne SIGSTOPs the next worker that claims, keeps it stopped until
// another worker claimed a later generation and twice the lease passed,
// then continues it and waits until it reports that the server fenced it.
func (sc *scenario) stopOne(ctx context.Context) stopReport {
	t := sc.t
	sc.mu.Lock()
	live := append([]*child(nil), sc.live...)
	sc.mu.Unlock()
	seen := map[*child]int{}
	for _, w := range live {
		seen[w] = len(w.snapshot())
	}
	var victim *child
	var gen int64
	for victim == nil {
		for _, w := range live {
			lines := w.snapshot()
			for _, l := range lines[seen[w]:] {
				if strings.HasPrefix(l, "C ") {
					require.NoError(t, w.cmd.Process.Signal(syscall.SIGSTOP))
					victim, gen = w, mustInt(t, strings.Fields(l)[1])
					break
				}
			}
			if victim != nil {
				break
			}
			seen[w] = len(lines)
		}
		if victim == nil {
			select {
			case <-ctx.Done():
				t.Fatal("no worker claimed")
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	sc.mu.Lock()
	for i, w := range sc.live { // not a kill victim while stopped
		if w == victim {
			sc.live = append(sc.live[:i], sc.live[i+1:]...)
			break
		}
	}
	sc.mu.Unlock()
	stoppedAt := time.Now()
	// Another worker takes over with a later generation.
	require.Eventually(t, func() bool {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		for _, w := range sc.workers {
			if w == victim {
				continue
			}
			for _, l := range w.snapshot() {
				if f := strings.Fields(l); f[0] == "C" && mustInt(t, f[1]) > gen {
					return true
				}
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "no worker took over from the stopped one")
	if d := 2*procLease - time.Since(stoppedAt); d > 0 {
		time.Sleep(d)
	}
	time.Sleep(100 * time.Millisecond) // its lines written before the stop are read
	before := len(victim.snapshot())
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGCONT))
	require.Eventually(t, func() bool {
		for _, l := range victim.snapshot()[before:] {
			if strings.HasPrefix(l, fmt.Sprintf("L %d fenced ", gen)) {
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "the continued worker was not told it is fenced: %v", victim.snapshot()[before:])
	sc.mu.Lock()
	sc.live = append(sc.live, victim)
	sc.mu.Unlock()
	return stopReport{w: victim, gen: gen}
}

// signalContext ends on SIGTERM or SIGINT.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
}

func mustInt(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err, s)
	return n
}

// waitAcked waits until every stream is acked to its tail.
func (sc *scenario) waitAcked(ctx context.Context, tails map[string]durable.Offset) {
	t := sc.t
	var last []Link
	require.Eventually(t, func() bool {
		info, err := sc.sub.Get(ctx)
		if err != nil {
			return false
		}
		last = info.Links
		for _, l := range info.Links {
			if l.Acked != tails[l.Path] {
				return false
			}
		}
		return true
	}, 90*time.Second, 100*time.Millisecond, "not every stream was acked to its tail: %+v", &last)
}

// monitor polls the subscription and records any acked offset that moves
// backwards.
type monitor struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	bad    []string
}

func (sc *scenario) monitor(ctx context.Context) *monitor {
	ctx, cancel := context.WithCancel(ctx)
	m := &monitor{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		last := map[string]durable.Offset{}
		for ctx.Err() == nil {
			if info, err := sc.sub.Get(ctx); err == nil {
				for _, l := range info.Links {
					if prev, ok := last[l.Path]; ok && l.Acked < prev {
						m.mu.Lock()
						m.bad = append(m.bad, fmt.Sprintf("%s: %s after %s", l.Path, l.Acked, prev))
						m.mu.Unlock()
					}
					last[l.Path] = l.Acked
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return m
}

func (m *monitor) stop() { m.cancel(); <-m.done }

func (m *monitor) errs() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bad
}

// totals are a run's counts.
type totals struct {
	handled, wakes, fenced int
}

// event is one parsed line of a worker.
type event struct {
	w    int // worker index
	kind byte
	gen  int64
	f    []string
}

// check verifies the workers' events:
//   - every message was handled at least once;
//   - in each wake, each stream's messages were handled in order, starting
//     right after the acked offset the claim showed;
//   - no message was handled in a wake whose claim came after an ack (of
//     an earlier generation) that covered it: nothing acknowledged is
//     delivered again;
//   - the SIGSTOPped worker called no handler of its fenced generation
//     after it learnt it was fenced.
func (sc *scenario) check(initial map[string]durable.Offset, streams []string, stopped stopReport) totals {
	t := sc.t
	var evs []event
	for i, w := range sc.workers {
		for _, l := range w.snapshot() {
			f := strings.Fields(l)
			if len(f) < 2 || len(f[0]) != 1 {
				t.Fatalf("%s: bad line %q", w.name, l)
			}
			evs = append(evs, event{w: i, kind: f[0][0], gen: mustInt(t, f[1]), f: f})
		}
	}
	// Offsets that end a read map to the seq of its last message.
	seqAt := map[string]map[durable.Offset]int{}
	for s, off := range initial {
		seqAt[s] = map[durable.Offset]int{off: 0}
	}
	var tot totals
	handled := map[string]map[int]int{}
	for _, e := range evs {
		switch e.kind {
		case 'H':
			s, seq := e.f[2], int(mustInt(t, e.f[3]))
			if e.f[5] == "0" {
				seqAt[s][durable.Offset(e.f[4])] = seq
			}
			if handled[s] == nil {
				handled[s] = map[int]int{}
			}
			handled[s][seq]++
			tot.handled++
		case 'C':
			tot.wakes++
		case 'L':
			tot.fenced++
		}
	}
	seqOf := func(s, off string) int {
		n, ok := seqAt[s][durable.Offset(off)]
		if !ok {
			t.Fatalf("stream %s: offset %s is neither its start nor the end of a handled read", s, off)
		}
		return n
	}
	for _, s := range streams {
		for seq := 1; seq <= procPerStream; seq++ {
			require.Positive(t, handled[s][seq], "%s: message %d never handled", s, seq)
		}
	}
	// Per worker and generation: the claim's acked offsets, then runs.
	type key struct {
		w   int
		gen int64
	}
	claimAt := map[key]map[string]int{}
	next := map[key]map[string]int{}
	ackedBy := map[string][]struct {
		gen int64
		seq int
	}{}
	for _, e := range evs {
		k := key{e.w, e.gen}
		switch e.kind {
		case 'C':
			claimAt[k], next[k] = map[string]int{}, map[string]int{}
			for _, kv := range e.f[2:] {
				s, off, _ := strings.Cut(kv, "=")
				claimAt[k][s] = seqOf(s, off)
				next[k][s] = claimAt[k][s] + 1
			}
		case 'H':
			s, seq := e.f[2], int(mustInt(t, e.f[3]))
			require.NotNil(t, next[k], "worker %d handled in generation %d without a claim", e.w, e.gen)
			require.Equal(t, next[k][s], seq, "worker %d generation %d stream %s: out of order", e.w, e.gen, s)
			next[k][s] = seq + 1
		case 'A':
			for _, kv := range e.f[3:] {
				s, off, _ := strings.Cut(kv, "=")
				ackedBy[s] = append(ackedBy[s], struct {
					gen int64
					seq int
				}{e.gen, seqOf(s, off)})
			}
		}
	}
	// Nothing acknowledged delivered again: a claim of generation g starts
	// at or after every ack of an earlier generation.
	for k, at := range claimAt {
		for s, from := range at {
			for _, a := range ackedBy[s] {
				if a.gen < k.gen && a.seq > from {
					t.Errorf("stream %s: generation %d started after message %d, but generation %d had acked up to %d",
						s, k.gen, from, a.gen, a.seq)
				}
			}
		}
	}
	if stopped.w != nil {
		var fencedAt int64
		lines := stopped.w.snapshot()
		for _, l := range lines {
			if f := strings.Fields(l); f[0] == "L" && mustInt(t, f[1]) == stopped.gen {
				fencedAt = mustInt(t, f[3])
			}
		}
		require.NotZero(t, fencedAt)
		for _, l := range lines {
			if f := strings.Fields(l); f[0] == "H" && mustInt(t, f[1]) == stopped.gen && mustInt(t, f[6]) > fencedAt {
				t.Errorf("the stopped worker handled a message of its generation after it was fenced: %s", l)
			}
		}
	}
	return tot
}

// TestProcessWebhooks: the Receiver against durable serve --subscriptions
// and the Node reference server (webhooks on): each server's signed
// deliveries verify, every message is handled once in order per stream
// and acked through callbacks, and a replayed or tampered delivery is
// refused without calling the handler.
func TestProcessWebhooks(t *testing.T) {
	e := needProcEnv(t)
	servers := []struct {
		name  string
		start func(*testing.T, procEnv) server
	}{
		{"durable serve", startDurableServe},
		{"Node server", func(t *testing.T, e procEnv) server { return startNodeServer(t, e, true) }},
	}
	for _, sv := range servers {
		for _, async := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/async=%v", sv.name, async), func(t *testing.T) {
				runWebhookScenario(t, sv.start(t, e), async)
			})
		}
	}
}

func runWebhookScenario(t *testing.T, srv server, async bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := durable.NewClient(srv.base)
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	rec := newRecorder()
	var calls atomic.Int64
	opts := []Option{WithConcurrency(4)}
	if async {
		opts = append(opts, WithAsync())
	}
	r, err := NewReceiver(c, func(ctx context.Context, m Message[item]) error {
		calls.Add(1)
		rec.add(m)
		return nil
	}, opts...)
	require.NoError(t, err)
	defer r.Close()
	tt, url := mount(t, r)

	id := fmt.Sprintf("hook-%d", time.Now().UnixNano())
	streams := make([]string, 5)
	for i := range streams {
		streams[i] = fmt.Sprintf("%s/s%d", id, i)
		_, err := c.Create(ctx, streams[i], durable.CreateOptions{ContentType: "application/json"})
		require.NoError(t, err)
	}
	sub, err := Open(c, id)
	require.NoError(t, err)
	_, _, err = sub.Create(ctx, Config{Type: Webhook, Pattern: id + "/*", WebhookURL: url, LeaseTTL: 5 * time.Second})
	require.NoError(t, err)
	tails := map[string]durable.Offset{}
	for seq := 1; seq <= 20; seq++ {
		for _, s := range streams {
			res, err := c.AppendJSON(ctx, s, item{Stream: s, Seq: seq}, durable.AppendOptions{})
			require.NoError(t, err)
			tails[s] = res.NextOffset
		}
	}
	rec.waitDistinct(t, streams, 20)
	require.Eventually(t, func() bool {
		info, err := sub.Get(ctx)
		if err != nil {
			return false
		}
		for _, l := range info.Links {
			if l.Acked != tails[l.Path] {
				return false
			}
		}
		return len(info.Links) == len(streams)
	}, 30*time.Second, 50*time.Millisecond, "not acked to the tails")
	rec.checkOrder(t)
	for _, s := range streams {
		require.Len(t, rec.seen[s], 20, "%s: each message once: %v", s, rec.seen[s])
	}

	d := tt.first()
	n := calls.Load()
	require.Equal(t, http.StatusUnauthorized, post(r, d), "replayed")
	tampered := delivery{header: d.header, body: append([]byte(nil), d.body...)}
	tampered.body[len(tampered.body)/2] ^= 0x20
	require.Equal(t, http.StatusUnauthorized, post(r, tampered), "tampered")
	require.Equal(t, n, calls.Load(), "the handler saw no refused delivery")
	require.NoError(t, r.Close())
	st := r.Stats()
	t.Logf("[%s, async=%v] %d messages handled in %d wakes, %d acks", srv.name, async, st.Handled, st.Wakes, st.Acks)
}

// TestProcessManagement: management and the low-level calls against both
// servers, every error code as its typed error.
func TestProcessManagement(t *testing.T) {
	e := needProcEnv(t)
	servers := []struct {
		name  string
		start func(*testing.T, procEnv) server
	}{
		{"durable serve", startDurableServe},
		{"Node server", func(t *testing.T, e procEnv) server { return startNodeServer(t, e, true) }},
	}
	for _, sv := range servers {
		t.Run(sv.name, func(t *testing.T) { runManagement(t, sv.start(t, e)) })
	}
}

func runManagement(t *testing.T, srv server) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := durable.NewClient(srv.base)
	require.NoError(t, err)
	defer c.CloseIdleConnections()
	id := fmt.Sprintf("mgmt-%d", time.Now().UnixNano())
	for _, s := range []string{id + "/a", id + "/b", id + "-wake"} {
		_, err := c.Create(ctx, s, durable.CreateOptions{ContentType: "application/json"})
		require.NoError(t, err)
	}
	sub, err := Open(c, id)
	require.NoError(t, err)
	cfg := Config{Type: PullWake, Pattern: id + "/*", WakeStream: id + "-wake", LeaseTTL: 5 * time.Second, Description: "d"}
	info, created, err := sub.Create(ctx, cfg)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, PullWake, info.Type)
	require.Equal(t, 5*time.Second, info.LeaseTTL)
	require.Len(t, info.Links, 2)
	_, created, err = sub.Create(ctx, cfg)
	require.NoError(t, err)
	require.False(t, created)
	cfg.Description = "other"
	_, _, err = sub.Create(ctx, cfg)
	require.ErrorIs(t, err, ErrConfigConflict)

	require.NoError(t, sub.AddStreams(ctx, "extra/x"))
	got, err := sub.Get(ctx)
	require.NoError(t, err)
	l, ok := got.Link("extra/x")
	require.True(t, ok)
	require.Equal(t, LinkExplicit, l.LinkType)
	require.NoError(t, sub.RemoveStream(ctx, "extra/x"))

	_, err = sub.Claim(ctx, "w1")
	require.ErrorIs(t, err, ErrNoPendingWork)
	res, err := c.AppendJSON(ctx, id+"/a", item{Seq: 1}, durable.AppendOptions{})
	require.NoError(t, err)
	w, err := sub.Claim(ctx, "w1")
	require.NoError(t, err)
	_, err = sub.Claim(ctx, "w2")
	require.ErrorIs(t, err, ErrAlreadyClaimed)
	forged := *w
	forged.Token = NewToken("forged." + w.Token.Reveal())
	require.ErrorIs(t, sub.Heartbeat(ctx, &forged), ErrTokenInvalid)
	_, err = sub.Ack(ctx, w, false, Ack{Stream: id + "/a", Offset: res.NextOffset + "9"})
	require.ErrorIs(t, err, ErrInvalidOffset)
	require.NoError(t, sub.Heartbeat(ctx, w))
	_, err = sub.Ack(ctx, w, true, Ack{Stream: id + "/a", Offset: res.NextOffset})
	require.NoError(t, err)
	_, err = sub.Ack(ctx, w, false)
	require.ErrorIs(t, err, ErrFenced)
	got, err = sub.Get(ctx)
	require.NoError(t, err)
	l, _ = got.Link(id + "/a")
	require.Equal(t, res.NextOffset, l.Acked)

	hook, err := Open(c, id+"-hook")
	require.NoError(t, err)
	_, _, err = hook.Create(ctx, Config{Type: Webhook, Pattern: id + "/*", WebhookURL: "http://10.1.2.3/hook"})
	require.ErrorIs(t, err, ErrWebhookURLRejected)

	require.NoError(t, sub.Delete(ctx))
	_, err = sub.Get(ctx)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = sub.Claim(ctx, "w1")
	require.ErrorIs(t, err, ErrNotFound)
}
