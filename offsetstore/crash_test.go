package offsetstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The crash and lock tests re-execute the test binary as a child process.
// TestMain calls crashChild first; when these variables are set it runs the
// child's part and the process exits without running tests.
const (
	envChildMode = "DURABLE_OFFSETSTORE_CHILD"
	envChildPath = "DURABLE_OFFSETSTORE_PATH"
)

func crashChild() bool {
	mode := os.Getenv(envChildMode)
	if mode == "" {
		return false
	}
	if err := runChild(mode, os.Getenv(envChildPath)); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	return true
}

// posFor is the position the child saves as its n-th save: all fields derive
// from n so that a torn record would be visible.
func posFor(n int64) Position {
	return Position{Offset: fmt.Sprintf("%016d", n), Skip: n, Meta: strconv.FormatInt(n, 10)}
}

func runChild(mode, path string) error {
	ctx := context.Background()
	f, err := OpenFile(path)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	switch mode {
	case "hold":
		// Hold the lock until stdin closes.
		fmt.Fprintln(out, "locked")
		out.Flush()
		_, _ = io.Copy(io.Discard, os.Stdin)
		return f.Close()
	case "save":
		pos, _, err := f.Load(ctx, "a")
		if err != nil {
			return err
		}
		posB, _, err := f.Load(ctx, "b")
		if err != nil {
			return err
		}
		// A second goroutine saves another key and an epoch concurrently,
		// so that coalesced writes are exercised too.
		go func() {
			for i := posB.Skip + 1; ; i++ {
				if f.Save(ctx, "b", posFor(i)) != nil || f.SaveEpoch(ctx, "p", i) != nil {
					return
				}
			}
		}()
		fmt.Fprintln(out, "ready")
		out.Flush()
		for n := pos.Skip + 1; ; n++ {
			if err := f.Save(ctx, "a", posFor(n)); err != nil {
				return err
			}
			// Acknowledge: this save returned, so it must survive.
			fmt.Fprintln(out, n)
			out.Flush()
		}
	}
	return fmt.Errorf("unknown mode %q", mode)
}

func startChild(t *testing.T, mode, path string) (*exec.Cmd, io.WriteCloser, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildMode+"="+mode, envChildPath+"="+path)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, stdin, bufio.NewScanner(stdout)
}

func TestFileLockAcrossProcesses(t *testing.T) {
	t.Parallel()
	for _, release := range []string{"close", "kill"} {
		t.Run(release, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "offsets.json")
			cmd, stdin, out := startChild(t, "hold", path)
			if !out.Scan() || out.Text() != "locked" {
				t.Fatalf("child did not lock: %q %v", out.Text(), out.Err())
			}
			f, err := OpenFile(path)
			if !errors.Is(err, ErrLocked) {
				if f != nil {
					f.Close()
				}
				t.Fatalf("OpenFile while child holds it: err = %v, want ErrLocked", err)
			}
			host, _ := os.Hostname()
			want := fmt.Sprintf("offsetstore: lock %s: offset file is locked by process %d on host %s since ", path, cmd.Process.Pid, host)
			if !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("error %q does not name the holder (want prefix %q)", err, want)
			}
			if release == "close" {
				stdin.Close()
			} else {
				_ = cmd.Process.Kill()
			}
			_ = cmd.Wait()
			f, err = OpenFile(path)
			if err != nil {
				t.Fatalf("OpenFile after the child's %s: %v", release, err)
			}
			f.Close()
		})
	}
}

// TestFileCrash kills a child process with SIGKILL at a random moment while
// it saves increasing positions in a tight loop, 50 times. Every time, the
// file must open, hold a consistent record, not go backwards, and include
// every save the child saw return.
func TestFileCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary 50 times")
	}
	const runs = 50
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "offsets.json")
	seed := time.Now().UnixNano()
	if s := os.Getenv("DURABLE_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseInt(s, 10, 64); err != nil {
			t.Fatalf("DURABLE_CRASH_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay the kill schedule with DURABLE_CRASH_SEED)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	var prev, prevB, totalAcks int64
	var early int
	for run := range runs {
		cmd, _, out := startChild(t, "save", path)
		var acked atomic.Int64
		ready := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			first := true
			for out.Scan() {
				if first {
					close(ready)
					first = false
					continue
				}
				n, err := strconv.ParseInt(out.Text(), 10, 64)
				if err != nil {
					t.Errorf("bad ack %q", out.Text())
					return
				}
				acked.Store(n)
			}
			if first {
				close(ready)
			}
		})
		// Kill at a random moment: sometimes while the child starts up and
		// opens the file, mostly while it saves.
		if rng.IntN(10) > 0 {
			<-ready
		}
		timer := time.NewTimer(time.Duration(rng.Int64N(int64(60 * time.Millisecond))))
		<-timer.C
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		wg.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != -1 {
			t.Fatalf("run %d: child ended with %v before it was killed", run, err)
		}

		f, err := OpenFile(path)
		if err != nil {
			t.Fatalf("run %d: file does not open after SIGKILL: %v", run, err)
		}
		pos, ok, err := f.Load(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		posB, _, _ := f.Load(ctx, "b")
		epoch, _, _ := f.LoadEpoch(ctx, "p")
		f.Close()
		a := acked.Load()
		if a == 0 {
			early++
		} else {
			totalAcks += a - prev
		}
		if ok && pos != posFor(pos.Skip) || posB.Skip != 0 && posB != posFor(posB.Skip) {
			t.Fatalf("run %d: inconsistent record %+v / %+v", run, pos, posB)
		}
		if pos.Skip < prev {
			t.Fatalf("run %d: position went backwards: %d < %d", run, pos.Skip, prev)
		}
		if posB.Skip < prevB {
			t.Fatalf("run %d: position b went backwards: %d < %d", run, posB.Skip, prevB)
		}
		if pos.Skip < a {
			t.Fatalf("run %d: acknowledged save %d lost (file has %d)", run, a, pos.Skip)
		}
		if epoch > posB.Skip {
			t.Fatalf("run %d: epoch %d ahead of the save before it (%d)", run, epoch, posB.Skip)
		}
		prev, prevB = pos.Skip, posB.Skip
	}
	t.Logf("%d kills; final position %d; %d acknowledged saves; %d kills before the first ack", runs, prev, totalAcks, early)
	if prev == 0 {
		t.Fatal("the child never saved anything")
	}
}
