package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/testsupport/syncbuf"
	"github.com/durablego/durable/offsetstore"
	"github.com/durablego/durable/testserver"
)

// start starts the binary without waiting for it. Its stdout and stderr go
// to the returned buffers' files.
func (c cli) start(t *testing.T, args ...string) (*exec.Cmd, *syncbuf.Buffer, *syncbuf.Buffer) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = c.environ()
	cmd.Dir = c.dir
	cmd.Stdin = c.stdin
	var stdout, stderr syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	if f, ok := c.stdin.(*os.File); ok {
		f.Close() // the child has its own copy
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, &stdout, &stderr
}

// waitCode waits for cmd (at most 30 s) and returns its exit code.
func waitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case err := <-done:
		if err == nil {
			return 0
		}
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not exit", cmd.Args)
		return -1
	}
}

// eventually polls cond every 10 ms for up to 10 s.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 10*time.Millisecond, msg)
}

func TestTail(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	c.ok(t, "create", "j", "--json", "--data", `[{"a": 1}, {"b":  [1, 2]}, "x"]`)
	c.ok(t, "create", "b", "--content-type", "text/plain", "--data", "line 1\nline 2\n")
	c.ok(t, "create", "closed", "--json", "--closed", "--data", `[1,2]`)
	off := strings.TrimSpace(c.ok(t, "head", "j", "--json").stdout)

	t.Run("json as NDJSON", func(t *testing.T) {
		r := c.ok(t, "tail", "j", "--live", "none")
		assert.Equal(t, "{\"a\":1}\n{\"b\":[1,2]}\n\"x\"\n", r.stdout)
	})
	t.Run("bytes raw", func(t *testing.T) {
		r := c.ok(t, "tail", "--live=none", "b")
		assert.Equal(t, "line 1\nline 2\n", r.stdout)
	})
	t.Run("from now", func(t *testing.T) {
		r := c.ok(t, "tail", "j", "--live", "none", "--from", "now")
		assert.Empty(t, r.stdout)
	})
	t.Run("from offset", func(t *testing.T) {
		var h headJSON
		require.NoError(t, jsonUnmarshal(off, &h))
		c.ok(t, "append", "j", "4")
		r := c.ok(t, "tail", "j", "--live", "none", "--from", h.NextOffset)
		assert.Equal(t, "4\n", r.stdout)
	})
	t.Run("closed stream ends with exit 0", func(t *testing.T) {
		for _, live := range []string{"long-poll", "sse", "auto"} {
			r := c.ok(t, "tail", "closed", "--live", live, "--until-eof")
			assert.Equal(t, "1\n2\n", r.stdout, live)
			assert.Contains(t, r.stderr, "end of stream", live)
		}
	})
	t.Run("missing stream", func(t *testing.T) {
		r := c.run(t, "tail", "nope", "--live", "none")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "404")
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"tail"},
			{"tail", "j", "--output", "o"},
			{"tail", "j", "--key", "k"},
			{"tail", "j", "--live", "sometimes"},
			{"tail", "j", "--live", "none", "--until-eof"},
			{"tail", "j", "--from", "a/b"},
			{"tail", "j", "--from", "bogus"},
			{"tail", "j", "--retry-for", "-1s"},
		} {
			r := c.run(t, args...)
			assert.Equal(t, 2, r.code, "%v: %s", args, r.stderr)
		}
	})
	t.Run("a word for --from is refused before any request", func(t *testing.T) {
		before := srv.Requests("", "")
		offsets := filepath.Join(t.TempDir(), "offsets")
		r := c.run(t, "tail", "j", "--from", "latest", "--offset-file", offsets)
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, `--from "latest": want start, now, or an offset`)
		assert.Equal(t, before, srv.Requests("", ""), "no request")
		assert.NoFileExists(t, offsets, "nothing saved")
	})
	t.Run("an offset the server refuses is a usage error, not saved", func(t *testing.T) {
		offsets := filepath.Join(t.TempDir(), "offsets")
		r := c.run(t, "tail", "j", "--from", "x1", "--offset-file", offsets, "--live", "none")
		assert.Equal(t, 2, r.code, r.stderr)
		assert.Contains(t, r.stderr, `--from "x1": the server refuses this offset`)
		r = c.ok(t, "tail", "j", "--offset-file", offsets, "--live", "none")
		assert.Contains(t, r.stdout, `{"a":1}`, "the refused offset was not saved: the next run starts over")
	})
}

// jsonUnmarshal is json.Unmarshal of a string.
func jsonUnmarshal(s string, v any) error { return jsonDecode(strings.NewReader(s), v) }

func TestTailResume(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	dir := t.TempDir()
	offsets := filepath.Join(dir, "offsets")
	c.ok(t, "create", "s", "--json")
	c.ok(t, "append", "s", "1", "2")

	t.Run("stdout resumes after the last line", func(t *testing.T) {
		r := c.ok(t, "tail", "s", "--live", "none", "--offset-file", offsets)
		assert.Equal(t, "1\n2\n", r.stdout)
		c.ok(t, "append", "s", "3")
		r = c.ok(t, "tail", "s", "--live", "none", "--offset-file", offsets)
		assert.Equal(t, "3\n", r.stdout)
		// Another key starts over; --from applies to it.
		r = c.ok(t, "tail", "s", "--live", "none", "--offset-file", offsets, "--key", "other", "--from", "now")
		assert.Empty(t, r.stdout)
		c.ok(t, "append", "s", "4")
		r = c.ok(t, "tail", "s", "--live", "none", "--offset-file", offsets, "--key", "other")
		assert.Equal(t, "4\n", r.stdout, "--from now was pinned and saved")
	})

	t.Run("interrupt saves; until-eof reports it", func(t *testing.T) {
		out := filepath.Join(dir, "out")
		want := "1\n2\n3\n4\n"
		for i, untilEOF := range []bool{false, true} {
			args := []string{"tail", "s", "--offset-file", offsets, "--key", "int", "--output", out}
			if untilEOF {
				args = append(args, "--until-eof")
			}
			cmd, _, stderr := c.start(t, args...)
			// Once it has written a message appended after it started, it
			// is following the stream (and handling signals).
			msg := fmt.Sprintf("%d", 5+i)
			c.ok(t, "append", "s", msg)
			want += msg + "\n"
			eventually(t, func() bool { b, _ := os.ReadFile(out); return string(b) == want }, "tail wrote the stream")
			require.NoError(t, cmd.Process.Signal(os.Interrupt))
			code := waitCode(t, cmd)
			if untilEOF {
				assert.Equal(t, 1, code, "interrupted before EOF with --until-eof")
				assert.Contains(t, stderr.String(), "interrupted before the end")
			} else {
				assert.Equal(t, 0, code, stderr.String())
			}
		}
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, want, string(b))
		r := c.ok(t, "tail", "s", "--live", "none", "--offset-file", offsets, "--key", "int", "--output", out)
		assert.Empty(t, r.stderr, "nothing to cut: the position was saved on interrupt")
	})

	t.Run("output must match the offset file", func(t *testing.T) {
		out := filepath.Join(dir, "o2")
		c.ok(t, "tail", "s", "--live", "none", "--offset-file", offsets, "--key", "o2", "--output", out)
		r := c.run(t, "tail", "s", "--live", "none", "--offset-file", offsets, "--key", "o2", "--output", filepath.Join(dir, "elsewhere"))
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "does not match")
		require.NoError(t, os.Truncate(out, 2))
		r = c.run(t, "tail", "s", "--live", "none", "--offset-file", offsets, "--key", "o2", "--output", out)
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "shorter")
		r = c.run(t, "tail", "s", "--live", "none", "--offset-file", offsets, "--output", out)
		assert.Equal(t, 1, r.code, "a key saved without --output")
		assert.Contains(t, r.stderr, "does not match")
	})

	t.Run("one process per offset file", func(t *testing.T) {
		cmd, stdout, _ := c.start(t, "tail", "s", "--offset-file", offsets, "--key", "lock")
		eventually(t, func() bool { return strings.HasPrefix(stdout.String(), "1\n2\n") }, "first tail runs")
		r := c.run(t, "tail", "s", "--live", "none", "--offset-file", offsets, "--key", "lock2")
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "locked", "a second tail on the same offset file is refused")
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		assert.Equal(t, 0, waitCode(t, cmd))
	})

	t.Run("the SDK's default key: shared with a Reader, and the old full-URL key moved", func(t *testing.T) {
		ctx := context.Background()
		c.ok(t, "create", "sp ace", "--json", "--data", "[1,2]")
		f := filepath.Join(dir, "shared")
		r := c.ok(t, "tail", "sp ace", "--live", "none", "--offset-file", f)
		assert.Equal(t, "1\n2\n", r.stdout)
		st, err := offsetstore.OpenFile(f)
		require.NoError(t, err)
		cl, err := durable.NewClient(srv.URL())
		require.NoError(t, err)
		rd, err := durable.NewReader(cl, "sp ace", durable.JSONCodec[json.RawMessage]{}, durable.WithStore(st), durable.WithLive(durable.LiveNone))
		require.NoError(t, err)
		_, err = rd.Next(ctx)
		require.ErrorIs(t, err, durable.ErrCaughtUp, "a Reader with the default key resumes where tail stopped")
		require.NoError(t, rd.Close(ctx))

		// A position saved by an earlier release under the full URL.
		pos, ok, err := st.Load(ctx, "/v1/stream/sp%20ace")
		require.NoError(t, err)
		require.True(t, ok)
		require.NoError(t, st.Save(ctx, srv.StreamURL("old"), pos))
		require.NoError(t, st.Close())
		c.ok(t, "create", "old", "--json", "--data", "[1,2]")
		c.ok(t, "append", "old", "3")
		r = c.ok(t, "tail", "old", "--live", "none", "--offset-file", f)
		assert.Equal(t, "3\n", r.stdout, "resumed from the old key")
		assert.Contains(t, r.stderr, "now kept under key /v1/stream/old")
	})

	t.Run("corrupt offset file", func(t *testing.T) {
		bad := filepath.Join(dir, "bad")
		require.NoError(t, os.WriteFile(bad, []byte("{garbage"), 0o644))
		r := c.run(t, "tail", "s", "--live", "none", "--offset-file", bad)
		assert.Equal(t, 1, r.code)
		assert.Contains(t, r.stderr, "corrupt")
	})
}

// TestTailKillRestart is issue 6 done-when 2: a tail writing to an output
// file, killed with SIGKILL and restarted five times while append runs,
// leaves the output equal to the stream, line for line.
func TestTailKillRestart(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"json", "bytes"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			testTailKillRestart(t, kind == "json")
		})
	}
}

// testTailKillRestart runs the kill-restart test on a JSON stream (one
// NDJSON line per message) or a byte stream (the bytes as appended).
func testTailKillRestart(t *testing.T, isJSON bool) {
	dir := t.TempDir()
	// The server is a "durable serve" child process.
	serve, serveOut, _ := cli{}.start(t, "serve", "--addr", "127.0.0.1:0", "--long-poll-timeout", "1s")
	var url string
	eventually(t, func() bool {
		url, _, _ = strings.Cut(serveOut.String(), "\n")
		return strings.HasPrefix(url, "http://") && strings.Contains(serveOut.String(), "\n")
	}, "durable serve printed its URL")
	c := cli{env: []string{envServer + "=" + url}}
	if isJSON {
		c.ok(t, "create", "events", "--json")
	} else {
		c.ok(t, "create", "events", "--content-type", "text/plain")
	}

	// The appender: lines fed through a pipe at a steady pace.
	const total = 3000
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	// JSON: plain appends; bytes: through an idempotent producer.
	appArgs := []string{"append", "events", "--stream"}
	if !isJSON {
		appArgs = append(appArgs, "--producer-id", "feeder", "--linger", "2ms")
	}
	app, _, appErr := c.withStdinReader(pr).start(t, appArgs...)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		defer pw.Close()
		tick := time.NewTicker(5 * time.Millisecond) // 1000 lines a second
		defer tick.Stop()
		w := bufio.NewWriter(pw)
		for i := range total {
			fmt.Fprintf(w, "{\"n\":%d,\"pad\":\"%s\"}\n", i, strings.Repeat("x", i%50))
			if i%5 == 4 {
				if w.Flush() != nil {
					return
				}
				<-tick.C
			}
		}
		_ = w.Flush()
	}()

	offsets, out := filepath.Join(dir, "offsets"), filepath.Join(dir, "out")
	args := []string{"tail", "events", "--offset-file", offsets, "--output", out}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 6))
	for i := range 5 {
		tail, _, tailErr := c.start(t, args...)
		// Let it write something (or, the first time, start), then kill it.
		d := time.Duration(100+rng.IntN(300)) * time.Millisecond
		time.Sleep(d)
		require.NoError(t, tail.Process.Kill())
		select {
		case <-fed:
			t.Fatalf("append finished before kill %d", i+1)
		default:
		}
		code := waitCode(t, tail)
		require.Equal(t, -int(syscall.SIGKILL), code, "run %d ended by itself: %s", i, tailErr.String())
		t.Logf("run %d killed after %v: %s", i, d, strings.TrimSpace(tailErr.String()))
	}
	<-fed
	require.Equal(t, 0, waitCode(t, app), appErr.String())
	c.ok(t, "close", "events")

	// The last run reads to the end of the closed stream.
	r := c.ok(t, append(args, "--until-eof")...)
	assert.Empty(t, r.stdout, "with --output nothing goes to stdout")

	got, err := os.ReadFile(out)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	require.Len(t, lines, total)
	for i, l := range lines {
		want := fmt.Sprintf("{\"n\":%d,\"pad\":\"%s\"}", i, strings.Repeat("x", i%50))
		if l != want {
			t.Fatalf("line %d = %q, want %q", i+1, l, want)
		}
	}
	// And the stream itself, read with the Client, is the same.
	r = c.ok(t, "tail", "events", "--live", "none")
	assert.Equal(t, string(got), r.stdout)

	st, err := offsetstore.OpenFile(offsets)
	require.NoError(t, err)
	p, ok, err := st.Load(context.Background(), defaultStreamPrefix+"events")
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, st.Close())
	m, err := decodeOutputMeta(p.Meta)
	require.NoError(t, err)
	assert.Equal(t, int64(len(got)), m.Length)

	require.NoError(t, serve.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 0, waitCode(t, serve))
}

// TestTailStdoutKill checks the stdout promise: killed with SIGKILL and
// restarted, a tail with --offset-file prints every message, and repeats at
// most the last line of the killed run.
func TestTailStdoutKill(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	const total = 400
	var in strings.Builder
	for i := range total {
		fmt.Fprintf(&in, "%d\n", i)
	}
	c.ok(t, "create", "s", "--json")
	c.withStdin(in.String()).ok(t, "append", "s", "--max-batch-bytes", "300")
	c.ok(t, "close", "s")
	offsets := filepath.Join(t.TempDir(), "offsets")
	args := []string{"tail", "s", "--offset-file", offsets}

	next := 0 // the first message not yet seen
	repeats := 0
	for run := 0; ; run++ {
		cmd, stdout, stderr := c.start(t, args...)
		killed := false
		if run < 3 {
			// Kill it once it has printed something new.
			eventually(t, func() bool { return strings.Count(stdout.String(), "\n") > 1 || cmd.ProcessState != nil }, "tail prints")
			killed = cmd.Process.Kill() == nil
		}
		code := waitCode(t, cmd)
		lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
		if lines[0] != "" {
			first := atoiT(t, lines[0])
			switch first {
			case next:
			case next - 1:
				repeats++
			default:
				t.Fatalf("run %d starts at %d, want %d (or %d repeated)", run, first, next, next-1)
			}
			for i, l := range lines {
				require.Equal(t, first+i, atoiT(t, l), "run %d line %d", run, i)
			}
			next = first + len(lines)
		}
		if !killed || code == 0 {
			require.Equal(t, 0, code, stderr.String())
			break
		}
	}
	assert.Equal(t, total, next)
	t.Logf("%d of 3 kills repeated a line", repeats)
}

func atoiT(t *testing.T, s string) int {
	t.Helper()
	var n int
	_, err := fmt.Sscanf(s, "%d", &n)
	require.NoError(t, err, "line %q", s)
	return n
}

func TestTailFollows(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	for _, live := range []string{"long-poll", "sse", "auto"} {
		t.Run(live, func(t *testing.T) {
			t.Parallel()
			name := "f-" + live
			c.ok(t, "create", name, "--json", "--data", "[0]")
			cmd, stdout, stderr := c.start(t, "tail", name, "--live", live)
			eventually(t, func() bool { return stdout.String() == "0\n" }, "catch-up")
			c.ok(t, "append", name, "1")
			eventually(t, func() bool { return stdout.String() == "0\n1\n" }, "live message")
			c.ok(t, "close", name, "2")
			assert.Equal(t, 0, waitCode(t, cmd), stderr.String())
			assert.Equal(t, "0\n1\n2\n", stdout.String())
			assert.Contains(t, stderr.String(), "end of stream")
		})
	}
	t.Run("deleted while tailing", func(t *testing.T) {
		t.Parallel()
		c.ok(t, "create", "gone", "--json", "--data", "[0]")
		cmd, stdout, stderr := c.start(t, "tail", "gone")
		eventually(t, func() bool { return stdout.String() == "0\n" }, "catch-up")
		c.ok(t, "delete", "gone")
		assert.Equal(t, 1, waitCode(t, cmd), stderr.String())
	})
}

func TestAppendInterrupted(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	c.ok(t, "create", "s", "--json")
	for _, producer := range []bool{false, true} {
		pr, pw, err := os.Pipe()
		require.NoError(t, err)
		args := []string{"append", "s", "--stream"}
		if producer {
			args = append(args, "--producer-id", "w")
		}
		cmd, _, stderr := c.withStdinReader(pr).start(t, args...)
		_, err = io.WriteString(pw, "1\n")
		require.NoError(t, err)
		want := 1
		if producer {
			want = 2
		}
		eventually(t, func() bool { s, _ := readStream(srv, "s"); return strings.Count(s, "1\n") == want }, "first line appended")
		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		assert.Equal(t, 1, waitCode(t, cmd))
		assert.Equal(t, "durable append: interrupted (1 message appended before)\n", stderr.String(), "producer %t", producer)
		pw.Close()
	}
	// Interrupted while an append is on its way (the server holds it): the
	// error still says so.
	c.ok(t, "create", "slow", "--json")
	srv.InjectFault(testserver.Fault{Path: "slow", Method: http.MethodPost, Delay: 5 * time.Second})
	pr, pw, err := os.Pipe()
	require.NoError(t, err)
	defer pw.Close()
	cmd, _, stderr := c.withStdinReader(pr).start(t, "append", "slow", "--stream")
	_, err = io.WriteString(pw, "1\n")
	require.NoError(t, err)
	eventually(t, func() bool { return srv.Requests("slow", http.MethodPost) == 1 }, "append reached the server")
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 1, waitCode(t, cmd))
	assert.Contains(t, stderr.String(), "interrupted")

	// Interrupted while reading stdin (without --stream): nothing sent,
	// and it said it was waiting for the end of the input.
	c.ok(t, "create", "whole", "--json")
	pr, pw2, err := os.Pipe()
	require.NoError(t, err)
	defer pw2.Close()
	cmd, _, stderr = c.withStdinReader(pr).start(t, "append", "whole")
	_, err = io.WriteString(pw2, "1\n")
	require.NoError(t, err)
	eventually(t, func() bool { return strings.Contains(stderr.String(), "reading stdin to its end") }, "append says it waits for the end of stdin")
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	assert.Equal(t, 1, waitCode(t, cmd))
	assert.Contains(t, stderr.String(), "interrupted while reading stdin: nothing was appended")
	assert.Zero(t, srv.Requests("whole", http.MethodPost))
}

// TestTailRidesOutRestart restarts the server (same data directory, same
// address) under a live tail writing to an output file: tail retries until
// the server is back and the output holds every message exactly once.
func TestTailRidesOutRestart(t *testing.T) {
	t.Parallel()
	for _, live := range []string{"sse", "auto", "long-poll"} {
		t.Run(live, func(t *testing.T) {
			t.Parallel()
			data := t.TempDir()
			opts := []testserver.Option{testserver.WithDataDir(data), testserver.WithLongPollTimeout(500 * time.Millisecond)}
			srv, err := testserver.Start("127.0.0.1:0", opts...)
			require.NoError(t, err)
			t.Cleanup(srv.Close)
			addr := strings.TrimPrefix(srv.URL(), "http://")
			c := withServer(srv)
			c.ok(t, "create", "s", "--json")
			want := ""
			appendN := func(from, to int) {
				for i := from; i < to; i++ {
					c.ok(t, "append", "s", fmtInt(i))
					want += fmtInt(i) + "\n"
				}
			}
			appendN(0, 5)

			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			cmd, _, stderr := c.start(t, "tail", "s", "--live", live, "--offset-file", filepath.Join(dir, "offsets"), "--output", out, "--until-eof")
			fileIs := func(s string) func() bool {
				return func() bool { b, _ := os.ReadFile(out); return string(b) == s }
			}
			eventually(t, fileIs(want), "tail caught up")
			appendN(5, 8)
			eventually(t, fileIs(want), "tail follows live")

			srv.Close()
			eventually(t, func() bool { return strings.Contains(stderr.String(), "retrying") }, "tail reports the outage")
			// While the server is down, its address drops every
			// connection: wait until tail has tried it twice.
			ln, err := net.Listen("tcp", addr)
			require.NoError(t, err)
			var tries atomic.Int32
			go func() {
				for {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					tries.Add(1)
					conn.Close()
				}
			}()
			eventually(t, func() bool { return tries.Load() >= 2 }, "tail retries")
			require.NoError(t, ln.Close())
			require.Nil(t, cmd.ProcessState, "tail is still running")
			srv2, err := testserver.Start(addr, opts...)
			require.NoError(t, err)
			t.Cleanup(srv2.Close)
			appendN(8, 12)
			eventually(t, fileIs(want), "tail reads again after the restart")
			c.ok(t, "close", "s", "12")
			want += "12\n"
			assert.Equal(t, 0, waitCode(t, cmd), stderr.String())
			b, err := os.ReadFile(out)
			require.NoError(t, err)
			assert.Equal(t, want, string(b), "every message exactly once")
			assert.Contains(t, stderr.String(), "reading again")
		})
	}
}

// TestTailLiveTransport counts the server's requests: with SSE one
// connection carries every live message, with long-poll each message costs
// a request.
func TestTailLiveTransport(t *testing.T) {
	t.Parallel()
	const n = 15
	for _, tt := range []struct {
		live    string
		minGets int
		maxGets int
	}{
		{"sse", 1, 4},
		{"auto", 1, 4},
		{"long-poll", n, 1000},
	} {
		t.Run(tt.live, func(t *testing.T) {
			t.Parallel()
			srv := newServer(t, testserver.WithLongPollTimeout(30*time.Second))
			c := withServer(srv)
			c.ok(t, "create", "s", "--json", "--data", "[0]")
			cmd, stdout, stderr := c.start(t, "tail", "s", "--live", tt.live)
			eventually(t, func() bool { return stdout.String() == "0\n" }, "catch-up")
			want := "0\n"
			for i := 1; i <= n; i++ {
				c.ok(t, "append", "s", fmtInt(i))
				want += fmtInt(i) + "\n"
				eventually(t, func() bool { return stdout.String() == want }, "live message")
			}
			gets := srv.Requests("s", http.MethodGet)
			c.ok(t, "close", "s")
			assert.Equal(t, 0, waitCode(t, cmd), stderr.String())
			assert.GreaterOrEqual(t, gets, tt.minGets)
			assert.LessOrEqual(t, gets, tt.maxGets, "GET requests for %d live messages", n)
		})
	}
}

// TestTailRetryFor bounds the retries: with the server gone, tail gives up
// after --retry-for and says so.
func TestTailRetryFor(t *testing.T) {
	t.Parallel()
	srv, err := testserver.Start("127.0.0.1:0")
	require.NoError(t, err)
	c := withServer(srv)
	c.ok(t, "create", "s", "--json", "--data", "[0]")
	cmd, stdout, stderr := c.start(t, "tail", "s", "--retry-for", "1s")
	eventually(t, func() bool { return stdout.String() == "0\n" }, "catch-up")
	srv.Close()
	assert.Equal(t, 1, waitCode(t, cmd))
	assert.Contains(t, stderr.String(), "; retrying for up to 1s (--retry-for)\n", "it did retry (the budget counts from the first failure)")
	assert.Contains(t, stderr.String(), "gave up after retrying for 1s (--retry-for)")
	assert.Contains(t, stderr.String(), "check --server")
}

// TestInterruptedAtStart interrupts tail and append while their first
// request (a HEAD) is on its way: they say they were interrupted, not what
// the request returned.
func TestInterruptedAtStart(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := withServer(srv)
	c.ok(t, "create", "s", "--json")
	srv.InjectFault(testserver.Fault{Path: "s", Method: http.MethodHead, Delay: 20 * time.Second})
	for i, tt := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"tail", "s"}, 0, ""},
		{[]string{"tail", "s", "--until-eof"}, 1, "durable tail: interrupted before the end of the stream (nothing saved: give --offset-file to resume)\n"},
		{[]string{"append", "s", "1"}, 1, "durable append: interrupted: nothing was appended\n"},
	} {
		cmd, _, stderr := c.start(t, tt.args...)
		eventually(t, func() bool { return srv.Requests("s", http.MethodHead) == i+1 }, "the HEAD reached the server")
		require.NoError(t, cmd.Process.Signal(os.Interrupt))
		assert.Equal(t, tt.code, waitCode(t, cmd), "%v", tt.args)
		assert.Equal(t, tt.stderr, stderr.String(), "%v", tt.args)
	}
	assert.Zero(t, srv.Requests("s", http.MethodPost))
}
