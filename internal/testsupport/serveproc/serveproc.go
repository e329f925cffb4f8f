// Package serveproc runs `durable serve` in a process of its own, for
// benchmarks whose figures must not include the server's memory,
// goroutines and CPU scheduling (the scale and codec benchmarks). It builds
// cmd/durable with the go command once per test binary, so it works from
// the root module and from nested modules that replace it.
package serveproc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// build compiles github.com/durablego/durable/cmd/durable into a temporary
// directory (left for the operating system to clean: the binary is used
// until the test binary exits).
func build() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "durable-serveproc-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "durable")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/durablego/durable/cmd/durable").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build cmd/durable: %w\n%s", err, out)
		}
	})
	return binary, buildErr
}

// Server is one running `durable serve`.
type Server struct {
	// URL is the base URL the server printed, e.g. http://127.0.0.1:PORT.
	URL string
	cmd *exec.Cmd
}

// StreamURL returns the URL under which the server's streams live (the
// default prefix /v1/stream/), with path appended.
func (s *Server) StreamURL(path string) string { return s.URL + "/v1/stream/" + path }

// Start starts `durable serve --addr 127.0.0.1:0 args...` and waits for
// its URL. The server is stopped (SIGTERM, then SIGKILL after 10 s) when
// tb's cleanup runs.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	bin, err := build()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	s := &Server{cmd: cmd}
	tb.Cleanup(s.stop)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- strings.TrimSpace(sc.Text())
		}
		close(line)
		for sc.Scan() {
		}
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case u, ok := <-line:
		if !ok || !strings.HasPrefix(u, "http://127.0.0.1:") {
			tb.Fatalf("durable serve printed %q; stderr:\n%s", u, stderr.String())
		}
		s.URL = u
	case <-timer.C:
		tb.Fatalf("durable serve printed no URL within 30 s; stderr:\n%s", stderr.String())
	}
	return s
}

func (s *Server) stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}
