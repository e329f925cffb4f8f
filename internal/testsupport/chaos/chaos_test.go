//go:build chaos

package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
)

// Knobs, all overridable from the environment.
const (
	defaultDuration = 45 * time.Second // CHAOS_DURATION: how long processes are killed
	defaultRate     = 50.0             // CHAOS_RATE: events per second per writer
	numWriters      = 3
	numReaders      = 2
	streamName      = "chaos"
	drainTimeout    = 30 * time.Second // writers' flush, then readers' catch-up
)

// TestChaos runs the chaos run described in the package documentation.
func TestChaos(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("CHAOS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("CHAOS_SEED=%q: %v", s, err)
		}
	}
	duration := envDuration(t, "CHAOS_DURATION", defaultDuration)
	rate := defaultRate
	if s := os.Getenv("CHAOS_RATE"); s != "" {
		var err error
		if rate, err = strconv.ParseFloat(s, 64); err != nil || rate <= 0 {
			t.Fatalf("CHAOS_RATE=%q: want a positive number", s)
		}
	}
	fmt.Printf("chaos: seed=%d (replay with CHAOS_SEED=%d) duration=%s rate=%g/s per writer\n", seed, seed, duration, rate)

	dir, err := os.MkdirTemp("", "durable-chaos-")
	if err != nil {
		t.Fatal(err)
	}
	s := &supervisor{
		t:        t,
		rng:      rand.New(rand.NewSource(seed)),
		seed:     seed,
		dir:      dir,
		rate:     rate,
		duration: duration,
	}
	defer func() {
		s.stopAll()
		if t.Failed() || os.Getenv("CHAOS_KEEP") != "" {
			fmt.Printf("chaos: state, logs and timeline kept in %s\n", dir)
			s.dumpStderr()
			return
		}
		os.RemoveAll(dir)
	}()
	s.run()
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive duration", name, s)
	}
	return d
}

// proc is one child process: the server, a writer or a reader. Its fields
// other than the atomics are used by the supervisor goroutine only.
type proc struct {
	name string
	kind string // "server", "writer", "reader"
	bin  string
	args []string

	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current incarnation has been waited for
	state   *os.ProcessState
	killed  bool // this incarnation was killed (or stopped) on purpose
	frozen  bool // stopped with SIGSTOP
	running bool
	starts  int
	url     chan string   // server: the first stdout line of the incarnation
	ready   chan struct{} // worker: closed when it printed "ready" (its SIGTERM handler is set)
	done    atomic.Value
}

type supervisor struct {
	t        *testing.T
	rng      *rand.Rand
	seed     int64
	dir      string
	rate     float64
	duration time.Duration

	durableBin, workerBin string
	baseURL               string
	server                *proc
	writers, readers      []*proc

	kills      map[string]int
	restarts   int
	freezes    int
	retries    atomic.Int64
	violations []string // found while running (not by the history check)
	timeline   *os.File
	start      time.Time
}

func (s *supervisor) logf(format string, args ...any) {
	line := fmt.Sprintf("%7.3fs ", time.Since(s.start).Seconds()) + fmt.Sprintf(format, args...)
	fmt.Fprintln(s.timeline, line)
}

func (s *supervisor) violation(format string, args ...any) {
	v := fmt.Sprintf(format, args...)
	s.logf("VIOLATION %s", v)
	s.violations = append(s.violations, v)
}

func (s *supervisor) run() {
	t := s.t
	s.start = time.Now()
	s.kills = map[string]int{}
	for _, sub := range []string{"bin", "data", "state", "logs"} {
		if err := os.MkdirAll(filepath.Join(s.dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if s.timeline, err = os.Create(filepath.Join(s.dir, "timeline.log")); err != nil {
		t.Fatal(err)
	}
	defer s.timeline.Close()

	s.build()
	port := freePort(t)
	// The setup varies with the seed: small read chunk limits split reads
	// inside a writer's batch, so positions carry a skip; SSE connections
	// that the server ends every second make the reader reconnect often.
	chunkLimit := []int{256, 4096, testserver.DefaultChunkLimit}[s.rng.Intn(3)]
	secondReader := []string{"sse", "auto"}[s.rng.Intn(2)]
	sseClose := []string{"1s", "5s"}[s.rng.Intn(2)]
	setup := fmt.Sprintf("server chunk limit=%d bytes, SSE close interval=%s; readers: r1 long-poll, r2 %s", chunkLimit, sseClose, secondReader)
	s.logf("%s", setup)
	fmt.Printf("chaos: %s\n", setup)
	s.server = &proc{name: "server", kind: "server", bin: s.durableBin, args: []string{
		"serve", "--data-dir", filepath.Join(s.dir, "data"), "--addr", "127.0.0.1:" + strconv.Itoa(port),
		"--long-poll-timeout", "2s", "--sse-close-interval", sseClose, "--chunk-limit", strconv.Itoa(chunkLimit),
	}}
	s.startProc(s.server)
	client, err := durable.NewClient(s.baseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	ctx := context.Background()
	if _, err := client.Create(ctx, streamName, durable.CreateOptions{ContentType: "application/json"}); err != nil {
		t.Fatalf("create stream: %v", err)
	}

	state := filepath.Join(s.dir, "state")
	for i := range numWriters {
		id := fmt.Sprintf("w%d", i+1)
		// Batches of at most 1, 3 or 1000 messages, 1 or 4 in flight:
		// small batches pipelined make sequence gaps (and their resends)
		// common under faults.
		batch := []int{1, 3, 1000}[s.rng.Intn(3)]
		inflight := []int{1, 4}[s.rng.Intn(2)]
		s.logf("writer %s: batch %d, in flight %d", id, batch, inflight)
		fmt.Printf("chaos: writer %s: max batch=%d messages, max in flight=%d\n", id, batch, inflight)
		s.writers = append(s.writers, &proc{name: id, kind: "writer", bin: s.workerBin, args: []string{
			"-mode", "writer", "-url", s.baseURL, "-stream", streamName, "-id", id, "-dir", state,
			"-rate", strconv.FormatFloat(s.rate, 'g', -1, 64), "-timeout", "1s",
			"-batch", strconv.Itoa(batch), "-inflight", strconv.Itoa(inflight),
		}})
	}
	lives := []string{"long-poll", secondReader}
	for i := range numReaders {
		id := fmt.Sprintf("r%d", i+1)
		s.readers = append(s.readers, &proc{name: id, kind: "reader", bin: s.workerBin, args: []string{
			"-mode", "reader", "-url", s.baseURL, "-stream", streamName, "-id", id, "-dir", state,
			"-live", lives[i%len(lives)], "-timeout", "1s",
		}})
	}
	for _, p := range s.workers() {
		s.startProc(p)
	}

	s.chaos()

	// Drain: writers flush and stop, the stream is closed, readers finish.
	s.logf("drain: stopping writers")
	deadline := time.Now().Add(drainTimeout)
	for _, p := range s.writers {
		s.terminate(p, deadline)
	}
	for _, p := range s.writers {
		s.awaitClean(p, deadline)
	}
	s.logf("drain: closing the stream")
	cctx, cancel := context.WithDeadline(ctx, deadline)
	if _, err := client.CloseStream(cctx, streamName, nil, durable.AppendOptions{}); err != nil {
		s.violation("closing the stream: %v", err)
	}
	cancel()
	s.logf("drain: waiting for readers")
	for _, p := range s.readers {
		s.awaitClean(p, deadline)
	}

	h := History{Writers: make([]string, 0, numWriters), Acks: map[string][]AckRecord{}, Handled: map[string][]HandledRecord{}}
	h.Stream, err = readAll(ctx, client)
	if err != nil {
		t.Fatalf("reading the stream back: %v", err)
	}
	for _, p := range s.writers {
		h.Writers = append(h.Writers, p.name)
		acks, torn, err := ReadLog[AckRecord](filepath.Join(state, p.name+".acks"))
		if err != nil || torn {
			s.violation("ack log of %s: torn=%v err=%v", p.name, torn, err)
		}
		h.Acks[p.name] = acks
	}
	for _, p := range s.readers {
		handled, torn, err := ReadLog[HandledRecord](filepath.Join(state, p.name+".handled"))
		if err != nil || torn {
			s.violation("handled log of %s: torn=%v err=%v", p.name, torn, err)
		}
		h.Handled[p.name] = handled
		s.checkCommitted(p.name, handled)
	}
	s.checkRaces()
	res := Check(h)
	for _, v := range res.Violations {
		s.logf("VIOLATION %s", v)
	}
	total := res.Total + len(s.violations)
	kills := s.kills["server"] + s.kills["writer"] + s.kills["reader"]
	summary := fmt.Sprintf("chaos: seed=%d events=%d acked=%d kills=%d (server=%d writers=%d readers=%d) restarts=%d retries=%d violations=%d",
		s.seed, res.Events, res.Acked, kills, s.kills["server"], s.kills["writer"], s.kills["reader"], s.restarts, s.retries.Load(), total)
	detail := fmt.Sprintf("chaos: detail: server freezes=%d unacknowledged messages in the stream=%d (rewritten under a later epoch=%d) unexpected exits or drain failures=%d",
		s.freezes, res.Unacked, res.Rewritten, len(s.violations))
	s.logf("%s", summary)
	s.logf("%s", detail)
	fmt.Println(summary)
	fmt.Println(detail)
	// A worker that keeps failing makes one violation per restart: show
	// the first few of those, and everything the history check found.
	for i, v := range s.violations {
		if i == maxReport {
			t.Errorf("violation: ... and %d more while running (see timeline.log)", len(s.violations)-maxReport)
			break
		}
		t.Errorf("violation: %s", v)
	}
	for _, v := range res.Violations {
		t.Errorf("violation: %s", v)
	}
	if res.Acked == 0 || res.Events == 0 {
		t.Errorf("nothing was written: the run proves nothing")
	}
}

// checkCommitted checks that a finished reader's saved position is the
// position of its last handled message, saved with the handled log's
// length: with commit-per-message nothing is left uncommitted at the end.
func (s *supervisor) checkCommitted(id string, handled []HandledRecord) {
	state := filepath.Join(s.dir, "state")
	f, err := offsetstore.OpenFile(filepath.Join(state, id+".offsets"))
	if err != nil {
		s.violation("offset file of %s: %v", id, err)
		return
	}
	defer f.Close()
	pos, ok, err := f.Load(context.Background(), id)
	if err != nil || !ok || len(handled) == 0 {
		s.violation("offset file of %s: position %+v ok=%v err=%v after %d handled messages", id, pos, ok, err, len(handled))
		return
	}
	last := handled[len(handled)-1]
	st, err := os.Stat(filepath.Join(state, id+".handled"))
	if err != nil {
		s.violation("handled log of %s: %v", id, err)
		return
	}
	if pos.Offset != last.Offset || pos.Skip != last.Skip || pos.Meta != strconv.FormatInt(st.Size(), 10) {
		s.violation("%s saved position %s+%d (meta %q), but its last handled message is at %s+%d and its log is %d bytes",
			id, pos.Offset, pos.Skip, pos.Meta, last.Offset, last.Skip, st.Size())
	}
}

func (s *supervisor) workers() []*proc {
	return append(append([]*proc{}, s.writers...), s.readers...)
}

// chaos kills random processes at random moments for s.duration and
// restarts each after a short random pause; when it returns every process
// runs.
//
// One server action in three is a freeze instead of a kill: SIGSTOP, then
// SIGCONT 0.3–2.5 s later. Requests in flight hang, clients time out or
// not, and what the server read before the freeze is applied after it.
func (s *supervisor) chaos() {
	type restart struct {
		at   time.Time
		p    *proc
		thaw bool // SIGCONT instead of a new incarnation
	}
	var pending []restart
	end := time.Now().Add(s.duration)
	nextKill := time.Now().Add(s.pause(300, 1200))
	for {
		now := time.Now()
		// Restarts that are due, and processes that died on their own.
		for i := 0; i < len(pending); {
			if !now.Before(pending[i].at) {
				if pending[i].thaw {
					s.thaw(pending[i].p)
				} else {
					s.startProc(pending[i].p)
				}
				pending = append(pending[:i], pending[i+1:]...)
				continue
			}
			i++
		}
		for _, p := range append([]*proc{s.server}, s.workers()...) {
			if p.running && isDone(p.exited) {
				s.reap(p)
				pending = append(pending, restart{now.Add(s.pause(100, 300)), p, false})
			}
		}
		if !now.Before(end) {
			break
		}
		if !now.Before(nextKill) {
			if p := s.victim(); p == s.server && s.rng.Intn(3) == 0 {
				s.freeze(p)
				pending = append(pending, restart{now.Add(s.pause(300, 2500)), p, true})
			} else if p != nil {
				s.kill(p)
				var pause time.Duration
				if p.kind == "server" {
					pause = s.pause(100, 1500)
				} else {
					pause = s.pause(50, 800)
				}
				pending = append(pending, restart{now.Add(pause), p, false})
			}
			nextKill = now.Add(s.pause(200, 1200))
		}
		wake := nextKill
		for _, r := range pending {
			if r.at.Before(wake) {
				wake = r.at
			}
		}
		timer := time.NewTimer(min(time.Until(wake), 50*time.Millisecond))
		<-timer.C
	}
	s.logf("chaos over: thawing or restarting %d stopped processes", len(pending))
	for _, r := range pending {
		if r.p == s.server {
			if r.thaw {
				s.thaw(r.p)
			} else {
				s.startProc(r.p)
			}
		}
	}
	for _, r := range pending {
		if r.p != s.server {
			s.startProc(r.p)
		}
	}
}

func (s *supervisor) pause(minMS, maxMS int) time.Duration {
	return time.Duration(minMS+s.rng.Intn(maxMS-minMS+1)) * time.Millisecond
}

// victim picks a running process: the server one time in five, else a
// worker.
func (s *supervisor) victim() *proc {
	if s.rng.Intn(5) == 0 && s.server.running && !s.server.frozen {
		return s.server
	}
	var live []*proc
	for _, p := range s.workers() {
		if p.running && !p.frozen {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil
	}
	return live[s.rng.Intn(len(live))]
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// startProc starts a new incarnation of p; for the server it waits until
// it listens.
func (s *supervisor) startProc(p *proc) {
	t := s.t
	cmd := exec.Command(p.bin, p.args...)
	stderr, err := os.OpenFile(filepath.Join(s.dir, "logs", p.name+".stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(stderr, "--- incarnation %d\n", p.starts+1)
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	stderr.Close()
	p.cmd, p.exited, p.state, p.killed, p.running = cmd, make(chan struct{}), nil, false, true
	p.url = make(chan string, 1)
	p.ready = make(chan struct{})
	p.done.Store("")
	if p.starts > 0 {
		s.restarts++
	}
	p.starts++
	s.logf("start %s (pid %d, incarnation %d)", p.name, cmd.Process.Pid, p.starts)

	lines := make(chan struct{})
	go func(url chan string, ready chan struct{}) {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		first := true
		for sc.Scan() {
			line := sc.Text()
			switch {
			case first && p.kind == "server":
				url <- line
			case strings.HasPrefix(line, "ready"):
				close(ready)
			case strings.HasPrefix(line, "retry"):
				s.retries.Add(1)
			case strings.HasPrefix(line, "done"):
				p.done.Store(line)
			}
			first = false
		}
	}(p.url, p.ready)
	exited := p.exited
	go func() {
		<-lines // Wait closes stdout: read it all first
		_ = cmd.Wait()
		close(exited)
	}()

	if p.kind != "server" {
		return
	}
	timer := time.NewTimer(15 * time.Second)
	defer timer.Stop()
	select {
	case u := <-p.url:
		u += testserver.DefaultPrefix
		if s.baseURL == "" {
			s.baseURL = u
		} else if u != s.baseURL {
			t.Fatalf("restarted server serves %s, not %s", u, s.baseURL)
		}
	case <-exited:
		t.Fatalf("server exited at start: %s", s.tail(p))
	case <-timer.C:
		t.Fatalf("server printed no URL within 15s")
	}
}

// freeze stops p with SIGSTOP.
func (s *supervisor) freeze(p *proc) {
	p.frozen = true
	s.freezes++
	s.logf("freeze %s (pid %d)", p.name, p.cmd.Process.Pid)
	_ = p.cmd.Process.Signal(syscall.SIGSTOP)
}

// thaw resumes a frozen p with SIGCONT.
func (s *supervisor) thaw(p *proc) {
	p.frozen = false
	s.logf("thaw %s (pid %d)", p.name, p.cmd.Process.Pid)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
}

// kill sends SIGKILL to p and waits until it is gone.
func (s *supervisor) kill(p *proc) {
	p.killed = true
	s.kills[p.kind]++
	s.logf("kill %s (pid %d)", p.name, p.cmd.Process.Pid)
	_ = p.cmd.Process.Kill()
	<-p.exited
	s.reap(p)
}

// reap records the end of p's incarnation; an exit nobody asked for is a
// violation (the SDK gave up, or a worker found its state inconsistent).
func (s *supervisor) reap(p *proc) {
	p.running = false
	p.state = p.cmd.ProcessState
	if !p.killed {
		s.violation("%s exited on its own (%v): %s", p.name, p.state, s.tail(p))
	}
}

// terminate sends SIGTERM to p once it is ready (a process that gets
// SIGTERM before it set up its handler just dies).
func (s *supervisor) terminate(p *proc, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-p.ready:
	case <-p.exited:
	case <-timer.C:
	}
	p.killed = true
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
}

// awaitClean waits until p exits, which it must do with status 0.
func (s *supervisor) awaitClean(p *proc, deadline time.Time) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		s.violation("%s did not finish in time", p.name)
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.running = false
	p.state = p.cmd.ProcessState
	if !p.state.Success() {
		s.violation("%s ended with %v: %s", p.name, p.state, s.tail(p))
	} else if p.done.Load() == "" {
		s.violation("%s ended without saying done", p.name)
	}
	s.logf("%s finished: %v", p.name, p.done.Load())
}

// stopAll kills whatever still runs (the server, or everything after a
// fatal error).
func (s *supervisor) stopAll() {
	for _, p := range append([]*proc{s.server}, s.workers()...) {
		if p == nil || p.cmd == nil || isDone(p.exited) {
			continue
		}
		p.killed = true
		if p.kind == "server" {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			_ = p.cmd.Process.Signal(syscall.SIGCONT) // in case it is frozen
			timer := time.NewTimer(10 * time.Second)
			select {
			case <-p.exited:
			case <-timer.C:
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
			timer.Stop()
			continue
		}
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// tail returns the last lines the current (or last) incarnation of p wrote
// to stderr.
func (s *supervisor) tail(p *proc) string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "logs", p.name+".stderr"))
	text := string(b)
	if i := strings.LastIndex(text, "--- incarnation"); i >= 0 {
		if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
			text = text[i+j+1:]
		} else {
			text = ""
		}
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return "(nothing on stderr)"
	}
	lines := strings.Split(text, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}

func (s *supervisor) dumpStderr() {
	for _, p := range append([]*proc{s.server}, s.workers()...) {
		if p != nil {
			fmt.Printf("chaos: %s stderr: %s\n", p.name, s.tail(p))
		}
	}
}

// build compiles the server and the worker once, with -race when the
// supervisor runs under -race (CHAOS_RACE=0 builds them without, for
// speed; CHAOS_RACE=1 with, in any case). A race report in any process's
// stderr is a violation.
func (s *supervisor) build() {
	goBin, err := exec.LookPath("go")
	if err != nil {
		s.t.Fatalf("go tool not found: %v", err)
	}
	s.durableBin = filepath.Join(s.dir, "bin", "durable")
	s.workerBin = filepath.Join(s.dir, "bin", "worker")
	args := []string{"build"}
	if race := os.Getenv("CHAOS_RACE"); race == "1" || (raceEnabled && race != "0") {
		args = append(args, "-race")
	}
	for _, b := range []struct{ out, pkg string }{
		{s.durableBin, "github.com/durablego/durable/cmd/durable"},
		{s.workerBin, "github.com/durablego/durable/internal/testsupport/chaos/worker"},
	} {
		out, err := exec.Command(goBin, append(args, "-o", b.out, b.pkg)...).CombinedOutput()
		if err != nil {
			s.t.Fatalf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
}

// checkRaces reports every process whose stderr holds a race report.
func (s *supervisor) checkRaces() {
	for _, p := range append([]*proc{s.server}, s.workers()...) {
		b, _ := os.ReadFile(filepath.Join(s.dir, "logs", p.name+".stderr"))
		if n := strings.Count(string(b), "WARNING: DATA RACE"); n > 0 {
			s.violation("%s reported %d data races (see logs/%s.stderr)", p.name, n, p.name)
		}
	}
}

func freePort(t *testing.T) int {
	// Not an ephemeral port: while the server is down, a client's connect
	// from an ephemeral port equal to the server's would connect the socket
	// to itself (TCP simultaneous open) and hold the port, so the server
	// could not restart.
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 12000 {
				low = n
			}
		}
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano())) // not the run's seed: ports are not part of the schedule
	for range 100 {
		port := 10000 + rng.Intn(low-10000)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatal("no free port below the ephemeral range")
	return 0
}

// readAll reads the whole (closed) stream with catch-up reads.
func readAll(ctx context.Context, c *durable.Client) ([]StreamMessage, error) {
	var out []StreamMessage
	off := durable.OffsetStart
	for {
		chunk, err := c.Read(ctx, streamName, durable.ReadOptions{Offset: off})
		if err != nil {
			return nil, err
		}
		if len(chunk.Data) > 0 {
			var msgs []json.RawMessage
			if err := json.Unmarshal(chunk.Data, &msgs); err != nil {
				return nil, fmt.Errorf("read at %s: %w", off, err)
			}
			for _, m := range msgs {
				out = append(out, StreamMessage{Offset: string(off), Data: m})
			}
		}
		if chunk.Closed {
			return out, nil
		}
		if chunk.UpToDate && len(chunk.Data) == 0 {
			return nil, errors.New("the stream is not closed")
		}
		if chunk.NextOffset == off && len(chunk.Data) == 0 {
			return nil, io.ErrNoProgress
		}
		off = chunk.NextOffset
	}
}
