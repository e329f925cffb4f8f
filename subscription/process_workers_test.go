//go:build subprocess

package subscription

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
)

func TestProcessWorkers(t *testing.T) {
	e := needProcEnv(t)
	for _, chaos := range []bool{false, true} {
		for _, sv := range procServers(false) {
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
		w, err := durable.NewWriter(c, s, durable.JSONCodec[item]{}, durable.WithLinger(5*time.Millisecond))
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
	evs := sc.events()
	seqOf, tot := sc.checkHandled(evs, initial, streams)
	sc.checkWakes(evs, seqOf)
	if stopped.w != nil {
		checkStopped(t, stopped)
	}
	return tot
}

// events parses every worker's lines.
func (sc *scenario) events() []event {
	var evs []event
	for i, w := range sc.workers {
		for _, l := range w.snapshot() {
			f := strings.Fields(l)
			if len(f) < 2 || len(f[0]) != 1 {
				sc.t.Fatalf("%s: bad line %q", w.name, l)
			}
			evs = append(evs, event{w: i, kind: f[0][0], gen: mustInt(sc.t, f[1]), f: f})
		}
	}
	return evs
}

// checkHandled checks that every message was handled and counts; it
// returns the seq of the last message before each offset an ack or claim
// can name (a stream's start, or the end of a handled read).
func (sc *scenario) checkHandled(evs []event, initial map[string]durable.Offset, streams []string) (func(s, off string) int, totals) {
	t := sc.t
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
	for _, s := range streams {
		for seq := 1; seq <= procPerStream; seq++ {
			require.Positive(t, handled[s][seq], "%s: message %d never handled", s, seq)
		}
	}
	return func(s, off string) int {
		n, ok := seqAt[s][durable.Offset(off)]
		if !ok {
			t.Fatalf("stream %s: offset %s is neither its start nor the end of a handled read", s, off)
		}
		return n
	}, tot
}

// wakeKey names one wake of one worker.
type wakeKey struct {
	w   int
	gen int64
}

// ackedSeq is an ack the server accepted: its generation and the seq it
// covered.
type ackedSeq struct {
	gen int64
	seq int
}

// checkWakes checks the order within each wake and that each claim
// starts at or after every ack of an earlier generation.
func (sc *scenario) checkWakes(evs []event, seqOf func(s, off string) int) {
	t := sc.t
	claimAt := map[wakeKey]map[string]int{}
	next := map[wakeKey]map[string]int{}
	acked := map[string][]ackedSeq{}
	for _, e := range evs {
		k := wakeKey{e.w, e.gen}
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
				acked[s] = append(acked[s], ackedSeq{e.gen, seqOf(s, off)})
			}
		}
	}
	for k, at := range claimAt {
		for s, from := range at {
			for _, a := range acked[s] {
				if a.gen < k.gen && a.seq > from {
					t.Errorf("stream %s: generation %d started after message %d, but generation %d had acked up to %d",
						s, k.gen, from, a.gen, a.seq)
				}
			}
		}
	}
}

// checkStopped checks that the stopped worker called no handler of its
// fenced generation after it was told.
func checkStopped(t *testing.T, stopped stopReport) {
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
