//go:build subprocess

package subscription

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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
		t.Fatalf("process test environment incomplete (run .ci/steps/70-subscriptions.sh): %s", strings.Join(missing, ", "))
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

// procServer is one of the servers the process tests run against.
type procServer struct {
	name  string
	start func(*testing.T, procEnv) server
}

// procServers are durable serve --subscriptions and the Node reference
// server (with webhooks on or off).
func procServers(webhooks bool) []procServer {
	return []procServer{
		{"durable serve", startDurableServe},
		{"Node server", func(t *testing.T, e procEnv) server { return startNodeServer(t, e, webhooks) }},
	}
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

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
}

func mustInt(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err, s)
	return n
}

// waitAcked waits until every stream is acked to its tail.
