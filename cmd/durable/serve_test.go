package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestUsageAndUnknownCommand(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "usage: durable"},
		{[]string{"help"}, 0, "serve"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"serve", "--no-such-flag"}, 2, "unknown flag --no-such-flag"},
		{[]string{"serve", "extra"}, 2, "unexpected argument"},
		{[]string{"serve", "--addr", "256.0.0.1:bad"}, 1, "durable serve:"},
		{[]string{"serve", "--tls-cert", "x.pem"}, 2, "go together"},
		{[]string{"serve", "--h2c", "--tls-cert", "x.pem", "--tls-key", "x.key"}, 2, "--h2c is for plain HTTP"},
		{[]string{"serve", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"}, 1, "no such file"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(errb.String()+out.String(), tc.want) {
				t.Fatalf("code %d, stderr %q; want %d and %q", code, errb.String(), tc.code, tc.want)
			}
		})
	}
}

func TestServeInProcess(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--long-poll-timeout", "1h", "--data-dir", t.TempDir()}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSpace(line)
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("first line %q", line)
	}
	req, _ := http.NewRequest("PUT", base+"/v1/stream/x", strings.NewReader("hi"))
	req.Header.Set("Content-Type", "text/plain")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("PUT status %d", res.StatusCode)
	}
	// A waiting long-poll must not hold up shutdown.
	lp := make(chan error, 1)
	go func() {
		res, err := http.Get(base + "/v1/stream/x?offset=now&live=long-poll")
		if err == nil {
			res.Body.Close()
		}
		lp <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the long-poll arrive (test only)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not stop")
	}
	<-lp
	http.DefaultClient.CloseIdleConnections()
	_, _ = io.Copy(io.Discard, pr)
}

// TestServeH2C: with --h2c the server answers HTTP/2 with prior knowledge,
// and HTTP/1.1 on the same port.
func TestServeH2C(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--h2c"}, pw, io.Discard)
		pw.Close()
	}()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2 := &http.Client{Transport: &http.Transport{Protocols: &p}}
	defer func() {
		h2.CloseIdleConnections()
		http.DefaultClient.CloseIdleConnections()
		cancel()
		<-done
		_, _ = io.Copy(io.Discard, pr)
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	u := strings.TrimSpace(line) + "/v1/stream/h2c"
	for _, c := range []struct {
		hc    *http.Client
		major int
	}{{h2, 2}, {http.DefaultClient, 1}} {
		req, _ := http.NewRequest("PUT", u, strings.NewReader("x"))
		req.Header.Set("Content-Type", "text/plain")
		res, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.ProtoMajor != c.major || (res.StatusCode != 201 && res.StatusCode != 200) {
			t.Fatalf("PUT over %s: %d, want HTTP/%d", res.Proto, res.StatusCode, c.major)
		}
	}
}

// TestServeProducerOrdering: by default a producer's seq 1 that arrives
// before its seq 0 waits for it; with --producer-ordering=false it is a
// sequence gap at once.
func TestServeProducerOrdering(t *testing.T) {
	for _, ordered := range []bool{true, false} {
		t.Run(fmt.Sprint("ordering=", ordered), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", fmt.Sprint("--producer-ordering=", ordered), "--producer-order-grace", "5s"}, pw, io.Discard)
				pw.Close()
			}()
			defer func() {
				cancel()
				<-done
				http.DefaultClient.CloseIdleConnections()
				_, _ = io.Copy(io.Discard, pr)
			}()
			line, err := bufio.NewReader(pr).ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			u := strings.TrimSpace(line) + "/v1/stream/o"
			post := func(method, seq, body string) int {
				req, _ := http.NewRequest(method, u, strings.NewReader(body))
				req.Header.Set("Content-Type", "text/plain")
				if seq != "" {
					req.Header.Set("Producer-Id", "p")
					req.Header.Set("Producer-Epoch", "0")
					req.Header.Set("Producer-Seq", seq)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return 0
				}
				res.Body.Close()
				return res.StatusCode
			}
			if st := post("PUT", "", ""); st != 201 {
				t.Fatalf("PUT status %d", st)
			}
			if !ordered {
				// First come, first validated: seq 1 alone is a gap at once.
				if st := post("POST", "1", "b"); st != 409 {
					t.Fatalf("seq 1 before seq 0: %d, want 409", st)
				}
				if st := post("POST", "0", "a"); st != 200 {
					t.Fatalf("seq 0: %d, want 200", st)
				}
				return
			}
			first := make(chan int, 1)
			go func() { first <- post("POST", "1", "b") }()
			time.Sleep(100 * time.Millisecond) // seq 1 reaches the server first (if not, both land in order anyway)
			st0 := post("POST", "0", "a")
			st1 := <-first
			if st0 != 200 || st1 != 200 {
				t.Fatalf("seq 0: %d, seq 1: %d, want 200 and 200", st0, st1)
			}
		})
	}
}

func TestServeSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "DURABLE_TEST_RUN_MAIN=1", "DURABLE_TEST_ARGS=serve --addr 127.0.0.1:0 --faults")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "http://127.0.0.1:") {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("first line %q: %v", line, err)
			}
			res, err := http.Get(strings.TrimSpace(line) + "/__ds/testserver/requests")
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 200 {
				t.Fatalf("--faults control API status %d", res.StatusCode)
			}
			http.DefaultClient.CloseIdleConnections()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- cmd.Wait() }()
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("exit after %v: %v", sig, err)
				}
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-errc
				t.Fatalf("no exit after %v", sig)
			}
		})
	}
}

// startChild runs `durable serve` in a child process (this test binary
// re-executed) and returns its base URL.
func startChild(t *testing.T, args string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "DURABLE_TEST_RUN_MAIN=1", "DURABLE_TEST_ARGS="+args)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("serve printed %q: %v", line, err)
	}
	return cmd, strings.TrimSpace(line)
}

// TestServeKillKeepsAcknowledgedAppends: every append acknowledged before a
// SIGKILL is served after a restart on the same data directory.
func TestServeKillKeepsAcknowledgedAppends(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer client.CloseIdleConnections()
	do := func(method, u, ct, body string) (int, error) {
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	cmd, base := startChild(t, "serve --addr 127.0.0.1:0 --data-dir "+dir)
	u := base + "/v1/stream/k"
	if code, err := do("PUT", u, "application/json", ""); err != nil || code != 201 {
		t.Fatalf("create: %d %v", code, err)
	}
	// Append from a goroutine while the server is killed mid-stream.
	acked := make(chan int, 10000)
	go func() {
		defer close(acked)
		for i := 0; ; i++ {
			code, err := do("POST", u, "application/json", `{"n":`+strconv.Itoa(i)+`}`)
			if err != nil || code != 204 {
				return
			}
			acked <- i
		}
	}()
	n := 0
	for range acked {
		if n++; n == 200 {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	_ = cmd.Wait()
	client.CloseIdleConnections()

	cmd2, base2 := startChild(t, "serve --addr 127.0.0.1:0 --data-dir "+dir)
	defer func() {
		_ = cmd2.Process.Signal(syscall.SIGTERM)
		_ = cmd2.Wait()
	}()
	res, err := client.Get(base2 + "/v1/stream/k?offset=-1")
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]int
	err = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < n {
		t.Fatalf("%d messages after restart, %d were acknowledged", len(got), n)
	}
	for i, m := range got {
		if m["n"] != i {
			t.Fatalf("message %d is %v", i, m)
		}
	}
	client.CloseIdleConnections()
}
