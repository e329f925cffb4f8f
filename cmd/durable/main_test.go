package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/durablego/durable/testserver"
)

// binary is the durable command built once by TestMain; the tests drive it as
// a real process.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv("DURABLE_TEST_RUN_MAIN") == "1" {
		// Re-executed by TestServeSignals: behave as the durable binary.
		os.Args = append([]string{"durable"}, strings.Fields(os.Getenv("DURABLE_TEST_ARGS"))...)
		main()
		return
	}
	dir, err := os.MkdirTemp("", "durable-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "durable")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building durable:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { os.RemoveAll(dir) }))
}

// result is the outcome of one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// cli describes how to run the binary: environment and stdin.
type cli struct {
	env   []string // extra KEY=VALUE
	stdin io.Reader
	dir   string
}

// run runs the binary with args and waits for it (at most 30 s).
func (c cli) run(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = c.environ()
	cmd.Dir = c.dir
	cmd.Stdin = c.stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		require.True(t, errors.As(err, &ee), "running %v: %v", args, err)
		code = ee.ExitCode()
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// environ is the test process's environment without DURABLE_* variables,
// plus c.env.
func (c cli) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DURABLE_") {
			env = append(env, kv)
		}
	}
	// A race-enabled binary sleeps 1 s at exit by default.
	env = append(env, "GORACE=atexit_sleep_ms=0 halt_on_error=1")
	return append(env, c.env...)
}

// withServer returns a cli whose $DURABLE_SERVER is srv.
func withServer(srv *testserver.Server) cli {
	return cli{env: []string{envServer + "=" + srv.URL()}}
}

// newServer starts an in-process testserver closed at the end of the test.
func newServer(t *testing.T, opts ...testserver.Option) *testserver.Server {
	t.Helper()
	srv := testserver.New(append([]testserver.Option{testserver.WithLongPollTimeout(500 * time.Millisecond)}, opts...)...)
	t.Cleanup(srv.Close)
	return srv
}

// ok runs the binary and requires exit 0.
func (c cli) ok(t *testing.T, args ...string) result {
	t.Helper()
	r := c.run(t, args...)
	require.Equal(t, 0, r.code, "durable %v\nstdout: %s\nstderr: %s", args, r.stdout, r.stderr)
	return r
}

// withStdin returns a copy of c reading stdin from s.
func (c cli) withStdin(s string) cli {
	c.stdin = strings.NewReader(s)
	return c
}

func fmtInt(i int) string { return fmt.Sprint(i) }

// withStdinReader returns a copy of c reading stdin from r.
func (c cli) withStdinReader(r io.Reader) cli {
	c.stdin = r
	return c
}

// jsonDecode decodes one JSON value from r.
func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
