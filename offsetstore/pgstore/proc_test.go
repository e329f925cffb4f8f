package pgstore

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
)

var (
	sinkOnce sync.Once
	sinkPath string
	sinkErr  error
)

// sinkBinary builds internal/sinkproc once (with -race when the tests
// run with it).
func sinkBinary(t *testing.T) string {
	t.Helper()
	sinkOnce.Do(func() {
		sinkPath = filepath.Join(binDir, "sinkproc")
		args := []string{"build", "-o", sinkPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "./internal/sinkproc")...).CombinedOutput()
		if err != nil {
			sinkErr = fmt.Errorf("go build sinkproc: %v\n%s", err, out)
		}
	})
	require.NoError(t, sinkErr)
	return sinkPath
}

// sinkEnv is what a sink process test shares: a stream on an in-process
// testserver and a store schema with a sink table.
type sinkEnv struct {
	t      *testing.T
	s      *Store
	srv    *testserver.Server
	client *durable.Client
	table  string

	mu    sync.Mutex
	lines []procLine // every stdout line of every process
}

type procLine struct {
	proc string
	at   time.Time
	text string
}

func newSinkEnv(t *testing.T) *sinkEnv {
	s := openTest(t)
	srv := testserver.New()
	t.Cleanup(srv.Close)
	client, err := durable.NewClient(srv.StreamURL(""))
	require.NoError(t, err)
	_, err = client.Create(context.Background(), "items", durable.CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	return &sinkEnv{t: t, s: s, srv: srv, client: client, table: sinkTable(t, s)}
}

// write appends items 1..n at about rate items a second, then closes the
// stream. It returns when it is done.
func (e *sinkEnv) write(ctx context.Context, n, rate int) error {
	w, err := durable.NewWriter(e.client, "items", durable.JSONCodec[item]{})
	if err != nil {
		return err
	}
	const per = 10
	tick := time.NewTicker(time.Second * per / time.Duration(rate))
	defer tick.Stop()
	for i := 1; i <= n; i++ {
		if err := w.Write(ctx, item{N: i}); err != nil {
			_ = w.Close(ctx)
			return err
		}
		if i%per == 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				_ = w.Close(ctx)
				return ctx.Err()
			}
		}
	}
	if err := w.Close(ctx); err != nil {
		return err
	}
	_, err = e.client.CloseStream(ctx, "items", nil, durable.AppendOptions{})
	return err
}

// proc is one running sink process.
type proc struct {
	name  string
	cmd   *exec.Cmd
	pause chan int      // "pause N" lines
	exit  chan struct{} // closed when the process has exited
	err   error         // its exit error, after exit
	out   strings.Builder
}

func (e *sinkEnv) start(name string, args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(sinkBinary(e.t), append([]string{"-url", e.srv.StreamURL(""), "-schema", e.s.t.schemaName,
		"-table", "sink", "-holder", name}, args...)...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+databaseURL())
	stdout, err := cmd.StdoutPipe()
	require.NoError(e.t, err)
	p := &proc{name: name, cmd: cmd, pause: make(chan int, 1), exit: make(chan struct{})}
	cmd.Stderr = &lockedWriter{b: &p.out}
	require.NoError(e.t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			e.mu.Lock()
			e.lines = append(e.lines, procLine{proc: name, at: time.Now(), text: line})
			e.mu.Unlock()
			if n, ok := strings.CutPrefix(line, "pause "); ok {
				v, _ := strconv.Atoi(n)
				select {
				case p.pause <- v:
				default:
				}
			}
		}
		p.err = cmd.Wait()
		close(p.exit)
	}()
	return p
}

type lockedWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(b)
}

// kill SIGKILLs p and returns when it sent the signal and when p was gone.
func (p *proc) kill(t *testing.T) (sent, gone time.Time) {
	sent = time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.exit:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit after SIGKILL", p.name)
	}
	return sent, time.Now()
}

func (p *proc) exited() bool {
	select {
	case <-p.exit:
		return true
	default:
		return false
	}
}

// waitDone waits for p to end by itself, successfully.
func (p *proc) waitDone(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.exit:
		require.NoError(t, p.err, "%s: %s", p.name, p.out.String())
	case <-time.After(d):
		_, _ = p.kill(t)
		t.Fatalf("%s did not finish within %v: %s", p.name, d, p.out.String())
	}
}

func (e *sinkEnv) assertExactlyOnce(n int) {
	e.t.Helper()
	assertExactlyOnce(e.t, sinkCounts(e.t, e.s, e.table), n)
}

// The consumer process is SIGKILLed 20 times, half of them between a
// row's insert and its commit, while a writer appends 10,000 items; every
// item is in the table exactly once.
func TestSinkProcessKilled(t *testing.T) {
	t.Parallel()
	const items, kills = 10000, 20
	e := newSinkEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	wrote := make(chan error, 1)
	go func() { wrote <- e.write(ctx, items, 1000) }()

	pausedKills := 0
	for k := range kills {
		name := fmt.Sprint("run-", k)
		if k%2 == 1 {
			// Wait until a row is inserted and not committed, then kill.
			p := e.start(name, "-pause-every", "53", "-pause", "300ms")
			select {
			case n := <-p.pause:
				p.kill(t)
				t.Logf("kill %d: between the insert and the commit of item %d", k, n)
				pausedKills++
			case <-p.exit:
				t.Fatalf("%s ended: %v %s", name, p.err, p.out.String())
			case <-time.After(time.Minute):
				t.Fatalf("%s never paused", name)
			}
			continue
		}
		p := e.start(name)
		select {
		case <-time.After(time.Duration(rand.N(600)+20) * time.Millisecond):
			p.kill(t)
		case <-p.exit:
			t.Fatalf("%s ended: %v %s", name, p.err, p.out.String())
		}
	}
	require.NoError(t, <-wrote)
	p := e.start("final")
	p.waitDone(t, 3*time.Minute)
	e.assertExactlyOnce(items)
	assert.Equal(t, kills/2, pausedKills)
	var committed int
	require.NoError(t, e.s.Pool().QueryRow(ctx, `SELECT count(*) FROM `+e.table).Scan(&committed))
	t.Logf("%d kills (%d between insert and commit); %d rows, each item once", kills, pausedKills, committed)
}

// replicaDuration is how long the replica test kills and restarts: env
// PGSTORE_REPLICA_DURATION (a Go duration), default 60 s.
func replicaDuration(t *testing.T) time.Duration {
	v := os.Getenv("PGSTORE_REPLICA_DURATION")
	if v == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "PGSTORE_REPLICA_DURATION")
	return d
}

// tenure is one token's time as the holder, from the processes' lease
// logs and the kills.
type tenure struct {
	token      int64
	holder     string
	start, end time.Time
	killed     time.Time // when the holder was sent SIGKILL while holding, if it was
}

// Three replica processes with the same key are SIGKILLed and restarted at
// random: the lease log shows never two holders at once, and every item is
// in the table exactly once.
func TestSinkReplicasKilled(t *testing.T) {
	t.Parallel()
	dur := replicaDuration(t)
	const replicas, ttl = 3, time.Second
	rate := 300
	items := int(dur.Seconds() * float64(rate))
	e := newSinkEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), dur+5*time.Minute)
	defer cancel()
	wrote := make(chan error, 1)
	go func() { wrote <- e.write(ctx, items, rate) }()

	procs := make([]*proc, replicas)
	gen := make([]int, replicas)
	startReplica := func(i int) {
		gen[i]++
		procs[i] = e.start(fmt.Sprintf("replica-%d.%d", i, gen[i]), "-exclusive", "-ttl", ttl.String())
	}
	for i := range procs {
		startReplica(i)
	}
	type kill struct {
		holder     string
		sent, gone time.Time
	}
	var killed []kill
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(200+rand.N(1300)) * time.Millisecond)
		// Mostly the holder (the interesting case), sometimes a waiter.
		i := rand.N(replicas)
		if h := e.currentHolder(); h != "" && rand.N(4) > 0 {
			i = slices.IndexFunc(procs, func(p *proc) bool { return p.name == h })
			if i < 0 {
				i = rand.N(replicas)
			}
		}
		p := procs[i]
		if p.exited() {
			t.Fatalf("%s ended: %v %s", p.name, p.err, p.out.String())
		}
		sent, gone := p.kill(t)
		killed = append(killed, kill{p.name, sent, gone})
		time.Sleep(time.Duration(rand.N(300)) * time.Millisecond)
		startReplica(i)
	}
	require.NoError(t, <-wrote)
	for _, p := range procs {
		p.waitDone(t, 3*time.Minute)
	}
	e.assertExactlyOnce(items)

	// Tenures from the lease logs; a killed holder's ends when it was gone.
	tenures := e.tenures()
	for _, k := range killed {
		for i := range tenures {
			tn := &tenures[i]
			if tn.holder == k.holder && tn.end.IsZero() {
				tn.end, tn.killed = k.gone, k.sent
			}
		}
	}
	assertTenuresApart(t, tenures)
	var takeovers []time.Duration
	for i, tn := range tenures {
		if i > 0 && !tenures[i-1].killed.IsZero() {
			takeovers = append(takeovers, tn.start.Sub(tenures[i-1].killed))
		}
	}
	e.assertTokensNeverGoBack()
	slices.Sort(takeovers)
	require.NotEmpty(t, takeovers, "no holder was killed")
	t.Logf("replicas: %v, %d items, %d kills, %d lease tenures (tokens 1..%d, %d seen in logs), TTL %v",
		dur, items, len(killed), len(tenures), tenures[len(tenures)-1].token, len(tenures), ttl)
	t.Logf("takeover after a holder's SIGKILL: n=%d p50=%v max=%v", len(takeovers),
		takeovers[len(takeovers)/2].Round(time.Millisecond), takeovers[len(takeovers)-1].Round(time.Millisecond))
}

// assertTenuresApart checks lease tenures in token order: each ended,
// tokens grow, and none began before the one before it ended (never two
// holders at once).
func assertTenuresApart(t *testing.T, tenures []tenure) {
	t.Helper()
	for i, tn := range tenures {
		require.False(t, tn.end.IsZero(), "token %d (%s) never ended", tn.token, tn.holder)
		if i == 0 {
			continue
		}
		prev := tenures[i-1]
		assert.Greater(t, tn.token, prev.token)
		assert.False(t, tn.start.Before(prev.end), "token %d (%s) began at %s, before token %d (%s) ended at %s: two holders at once",
			tn.token, tn.holder, tn.start.Format(time.StampMicro), prev.token, prev.holder, prev.end.Format(time.StampMicro))
	}
}

// assertTokensNeverGoBack checks the sink table: a later item never
// carries an earlier token (a deposed holder committed nothing after its
// successor began).
func (e *sinkEnv) assertTokensNeverGoBack() {
	e.t.Helper()
	rows, err := e.s.Pool().Query(context.Background(), `SELECT token FROM `+e.table+` ORDER BY n`)
	require.NoError(e.t, err)
	tokens, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(e.t, err)
	for i := 1; i < len(tokens); i++ {
		if tokens[i] < tokens[i-1] {
			e.t.Fatalf("item %d committed under token %d after item %d under token %d", i+1, tokens[i], i, tokens[i-1])
		}
	}
}

// currentHolder returns the process that logged the latest acquisition
// and has not logged its end.
func (e *sinkEnv) currentHolder() string {
	ts := e.tenures()
	if len(ts) == 0 || !ts[len(ts)-1].end.IsZero() {
		return ""
	}
	return ts[len(ts)-1].holder
}

// tenures parses the lease lines logged so far, by token.
func (e *sinkEnv) tenures() []tenure {
	e.mu.Lock()
	defer e.mu.Unlock()
	by := map[int64]*tenure{}
	for _, l := range e.lines {
		var kind, holder string
		var token, at int64
		if _, err := fmt.Sscanf(l.text, "lease %s token=%d at=%d holder=%s", &kind, &token, &at, &holder); err != nil {
			continue
		}
		tn := by[token]
		if tn == nil {
			tn = &tenure{token: token, holder: holder}
			by[token] = tn
		}
		switch kind {
		case "acquired":
			tn.start = time.Unix(0, at)
		case "lost", "released":
			tn.end = time.Unix(0, at)
		}
	}
	out := make([]tenure, 0, len(by))
	for _, tn := range by {
		out = append(out, *tn)
	}
	slices.SortFunc(out, func(a, b tenure) int { return int(a.token - b.token) })
	return out
}
