//go:build interop

package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/testsupport/syncbuf"
)

// env is where the interop tests find Node, the npm packages and durable.
type env struct {
	dir     string // holds node_modules, node-server.mjs and ts-client.mjs
	node    string // node binary
	durable string // built cmd/durable
}

// needEnv returns the interop environment, failing the test (never skipping)
// when a part is missing: the build tag makes the tests opt-in, the
// environment makes them runnable.
func needEnv(t *testing.T) env {
	t.Helper()
	e := env{
		dir:     os.Getenv("DURABLE_INTEROP_DIR"),
		node:    os.Getenv("DURABLE_INTEROP_NODE"),
		durable: os.Getenv("DURABLE_INTEROP_DURABLE"),
	}
	var missing []string
	check := func(name, path string, dir bool) {
		if path == "" {
			missing = append(missing, name+" is not set")
			return
		}
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			missing = append(missing, fmt.Sprintf("%s=%s: %v", name, path, err))
		case fi.IsDir() != dir:
			missing = append(missing, fmt.Sprintf("%s=%s: wrong kind of file", name, path))
		}
	}
	check("DURABLE_INTEROP_DIR", e.dir, true)
	check("DURABLE_INTEROP_NODE", e.node, false)
	check("DURABLE_INTEROP_DURABLE", e.durable, false)
	if e.dir != "" {
		for _, f := range []string{"node-server.mjs", "ts-client.mjs", "node_modules/@durable-streams/server", "node_modules/@durable-streams/client"} {
			if _, err := os.Stat(filepath.Join(e.dir, f)); err != nil {
				missing = append(missing, fmt.Sprintf("DURABLE_INTEROP_DIR lacks %s", f))
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("interop environment incomplete (run .ci/steps/30-interop.sh):\n  %s", strings.Join(missing, "\n  "))
	}
	return e
}

// ---- child processes ----

// proc is a child process whose stdout lines are delivered on a channel and
// whose stderr is kept for failure reports.
type proc struct {
	name   string
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at EOF
	stderr *syncbuf.Buffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, valid after done
}

// startProc starts argv in dir; the test's cleanup stops it (SIGTERM, then
// SIGKILL after a grace period) and waits for it, so no child outlives the
// test.
func startProc(t *testing.T, name, dir string, extraEnv []string, argv ...string) *proc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), extraEnv...)
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 64), stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start %v: %v", name, argv, err)
	}
	stdoutDone := make(chan struct{})
	go func() {
		defer close(stdoutDone)
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() {
		<-stdoutDone // Wait must not run before the pipe is drained
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends the process if it is still running and waits for it.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	select {
	case <-p.done:
	case <-timer.C:
		t.Logf("%s did not stop on SIGTERM; killing it", p.name)
		_ = p.cmd.Process.Kill()
		// Drain stdout so the reader goroutine can finish.
		for range p.lines {
		}
		<-p.done
	}
}

// firstLine waits for the first stdout line (a server's base URL).
func (p *proc) firstLine(t *testing.T, timeout time.Duration) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.done
			t.Fatalf("%s exited before printing its URL (%v); stderr:\n%s", p.name, p.err, p.stderr)
		}
		return strings.TrimSpace(line)
	case <-timer.C:
		t.Fatalf("%s printed no URL within %v; stderr:\n%s", p.name, timeout, p.stderr)
	}
	return ""
}

// startDurableServe starts `durable serve` on a free loopback port and
// returns its base URL.
func startDurableServe(t *testing.T, e env, extra ...string) (string, *proc) {
	t.Helper()
	argv := append([]string{e.durable, "serve", "--addr", "127.0.0.1:0"}, extra...)
	p := startProc(t, "durable serve", e.dir, nil, argv...)
	u := p.firstLine(t, 10*time.Second)
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("durable serve printed %q, not a loopback URL; stderr:\n%s", u, p.stderr)
	}
	return u, p
}

// startNodeServer starts the Node reference server (node-server.mjs) and
// returns its base URL. extraEnv adds variables (WEBHOOKS=1 turns on its
// webhook subscriptions).
func startNodeServer(t *testing.T, e env, longPoll time.Duration, extraEnv ...string) (string, *proc) {
	t.Helper()
	p := startProc(t, "Node reference server", e.dir,
		append([]string{fmt.Sprintf("LONG_POLL_TIMEOUT_MS=%d", longPoll.Milliseconds())}, extraEnv...),
		e.node, "node-server.mjs")
	u := p.firstLine(t, 20*time.Second)
	if !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Fatalf("node-server.mjs printed %q, not a loopback URL; stderr:\n%s", u, p.stderr)
	}
	return u, p
}

// ---- recording HTTP transport ----

// keyHeaders are the headers worth showing in a failure report.
var keyHeaders = []string{
	"Content-Type", "Content-Length", "Content-Encoding", "Location", "ETag", "If-None-Match", "Retry-After",
	"Stream-Next-Offset", "Stream-Up-To-Date", "Stream-Closed", "Stream-Cursor", "Stream-Seq",
	"Stream-TTL", "Stream-Expires-At", "Stream-Sse-Data-Encoding",
	"Producer-Id", "Producer-Epoch", "Producer-Seq", "Producer-Expected-Seq", "Producer-Received-Seq",
}

const excerptLimit = 160

// exchange is one recorded HTTP request and its response.
type exchange struct {
	n          int
	start      time.Time
	dur        time.Duration
	method     string
	url        string
	reqHeader  http.Header
	reqBody    []byte
	reqLen     int
	status     int
	respHeader http.Header
	respBody   []byte
	respLen    int
	err        error
}

// recorder is an http.RoundTripper that keeps the last max exchanges, so a
// failing test can show the HTTP conversation that broke.
type recorder struct {
	base http.RoundTripper
	max  int

	mu   sync.Mutex
	seq  int
	ring []*exchange
}

func newRecorder(max int) *recorder {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	return &recorder{base: tr, max: max}
}

func pick(h http.Header) http.Header {
	out := http.Header{}
	for _, k := range keyHeaders {
		if v := h.Values(k); len(v) > 0 {
			out[k] = v
		}
	}
	return out
}

// RoundTrip implements http.RoundTripper.
func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	ex := &exchange{start: time.Now(), method: req.Method, url: req.URL.String(), reqHeader: pick(req.Header)}
	if req.Body != nil && req.Body != http.NoBody {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		ex.reqLen = len(body)
		ex.reqBody = excerpt(body)
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	r.mu.Lock()
	r.seq++
	ex.n = r.seq
	r.ring = append(r.ring, ex)
	if len(r.ring) > r.max {
		r.ring = r.ring[len(r.ring)-r.max:]
	}
	r.mu.Unlock()

	resp, err := r.base.RoundTrip(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	ex.dur = time.Since(ex.start)
	if err != nil {
		ex.err = err
		return nil, err
	}
	ex.status = resp.StatusCode
	ex.respHeader = pick(resp.Header)
	resp.Body = &recordingBody{ReadCloser: resp.Body, r: r, ex: ex}
	return resp, nil
}

func excerpt(b []byte) []byte {
	if len(b) > excerptLimit {
		b = b[:excerptLimit]
	}
	return append([]byte(nil), b...)
}

// recordingBody copies the first bytes of a response body into its exchange
// as the caller reads them (streaming bodies included).
type recordingBody struct {
	io.ReadCloser
	r  *recorder
	ex *exchange
}

func (b *recordingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.r.mu.Lock()
	b.ex.respLen += n
	if room := excerptLimit - len(b.ex.respBody); room > 0 {
		b.ex.respBody = append(b.ex.respBody, p[:min(n, room)]...)
	}
	if err != nil && !errors.Is(err, io.EOF) && b.ex.err == nil {
		b.ex.err = err
	}
	b.r.mu.Unlock()
	return n, err
}

// dump formats the recorded exchanges, oldest first.
func (r *recorder) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var sb strings.Builder
	for _, ex := range r.ring {
		fmt.Fprintf(&sb, "  #%d %s %s  (%v)\n", ex.n, ex.method, ex.url, ex.dur.Round(time.Millisecond))
		writeHeaders(&sb, "    > ", ex.reqHeader)
		if ex.reqLen > 0 {
			fmt.Fprintf(&sb, "    > body (%d bytes): %q\n", ex.reqLen, ex.reqBody)
		}
		if ex.status != 0 {
			fmt.Fprintf(&sb, "    < %d %s\n", ex.status, http.StatusText(ex.status))
			writeHeaders(&sb, "    < ", ex.respHeader)
			if ex.respLen > 0 {
				fmt.Fprintf(&sb, "    < body (%d bytes read): %q\n", ex.respLen, ex.respBody)
			}
		}
		if ex.err != nil {
			fmt.Fprintf(&sb, "    ! %v\n", ex.err)
		}
	}
	return sb.String()
}

func writeHeaders(sb *strings.Builder, prefix string, h http.Header) {
	for _, k := range keyHeaders {
		if v, ok := h[k]; ok {
			fmt.Fprintf(sb, "%s%s: %s\n", prefix, k, strings.Join(v, ", "))
		}
	}
}

// client returns a durable.Client for base whose HTTP exchanges are recorded.
// When the test fails, the last exchanges are logged, labelled with side
// (which implementation was on the other end).
func newRecordedClient(t *testing.T, base, side string, opts ...durable.Option) (*durable.Client, *recorder) {
	t.Helper()
	rec := newRecorder(40)
	hc := &http.Client{Transport: rec}
	opts = append([]durable.Option{durable.WithHTTPClient(hc)}, opts...)
	c, err := durable.NewClient(base, opts...)
	if err != nil {
		t.Fatalf("NewClient(%s): %v", base, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last HTTP exchanges of the Go SDK with %s (oldest first):\n%s", side, rec.dump())
		}
		rec.base.(*http.Transport).CloseIdleConnections()
	})
	return c, rec
}

// ---- data helpers ----

// splitJSON splits a JSON array body into its elements' raw bytes.
func splitJSON(body []byte) ([]string, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("not a JSON array: %.40q", body)
	}
	var out []string
	for dec.More() {
		var m json.RawMessage
		if err := dec.Decode(&m); err != nil {
			return nil, err
		}
		out = append(out, string(m))
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the JSON array: %.40q", body)
	}
	return out, nil
}

// jsonBody is the request body appending msgs (raw JSON values) as separate
// messages: one array.
func jsonBody(msgs ...string) []byte {
	return []byte("[" + strings.Join(msgs, ",") + "]")
}

// readAll reads a stream from offset with catch-up reads until it is up to
// date (or closed), returning the concatenated data (for JSON streams: the
// messages) and the last chunk.
func readAll(ctx context.Context, c *durable.Client, stream string, from durable.Offset, isJSON bool) (data []byte, msgs []string, last durable.Chunk, err error) {
	off := from
	for i := 0; i < 1000; i++ {
		ch, err := c.Read(ctx, stream, durable.ReadOptions{Offset: off})
		if err != nil {
			return data, msgs, last, err
		}
		last = ch
		if isJSON {
			m, err := splitJSON(ch.Data)
			if err != nil {
				return data, msgs, last, fmt.Errorf("read at %s: %w", off, err)
			}
			msgs = append(msgs, m...)
		} else {
			data = append(data, ch.Data...)
		}
		off = ch.NextOffset
		if ch.UpToDate || ch.Closed {
			return data, msgs, last, nil
		}
	}
	return data, msgs, last, errors.New("stream never became up to date in 1000 reads")
}

// diffBytes describes the first difference between want and got.
func diffBytes(want, got []byte) string {
	if bytes.Equal(want, got) {
		return ""
	}
	i := 0
	for i < len(want) && i < len(got) && want[i] == got[i] {
		i++
	}
	ctx := func(b []byte) []byte {
		lo, hi := max(0, i-8), min(len(b), i+24)
		return b[lo:hi]
	}
	return fmt.Sprintf("lengths want %d, got %d; first difference at byte %d: want …%q…, got …%q…", len(want), len(got), i, ctx(want), ctx(got))
}

// diffMessages describes the first difference between two message lists.
func diffMessages(want, got []string) string {
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i >= len(want):
			return fmt.Sprintf("%d messages, want %d; extra message %d: %q", len(got), len(want), i, got[i])
		case i >= len(got):
			return fmt.Sprintf("%d messages, want %d; missing message %d: %q", len(got), len(want), i, want[i])
		case want[i] != got[i]:
			return fmt.Sprintf("message %d differs: want %q, got %q", i, want[i], got[i])
		}
	}
	return ""
}

// allBytes is every byte value once, then a deterministic pseudo-random tail.
func testBytes(seed uint32, n int) []byte {
	b := make([]byte, 0, n)
	for i := 0; i < 256 && len(b) < n; i++ {
		b = append(b, byte(i))
	}
	x := seed
	for len(b) < n {
		x = x*1664525 + 1013904223
		b = append(b, byte(x>>24))
	}
	return b
}

// sseAll reads a stream over SSE from offset until EOF (the stream is
// closed), reconnecting from the last offset when the server ends a
// connection. It returns the data (for JSON streams: the messages), the number
// of connections made and the final chunk.
func sseAll(ctx context.Context, c *durable.Client, stream string, from durable.Offset, contentType string) (data []byte, msgs []string, conns int, last durable.Chunk, err error) {
	isJSON := contentType == "application/json"
	off := from
	for conns < 100 {
		conns++
		s, err := c.OpenSSE(ctx, stream, durable.ReadOptions{Offset: off, Cursor: last.Cursor, ContentType: contentType})
		if err != nil {
			return data, msgs, conns, last, err
		}
		for {
			ch, err := s.Next(ctx)
			if errors.Is(err, durable.ErrDisconnected) {
				break
			}
			if err != nil {
				s.Close()
				if errors.Is(err, io.EOF) && last.Closed {
					return data, msgs, conns, last, nil
				}
				return data, msgs, conns, last, err
			}
			last = ch
			off = ch.NextOffset
			if isJSON {
				m, err := splitJSON(ch.Data)
				if err != nil {
					s.Close()
					return data, msgs, conns, last, fmt.Errorf("SSE data at %s: %w", off, err)
				}
				msgs = append(msgs, m...)
			} else {
				data = append(data, ch.Data...)
			}
		}
		s.Close()
	}
	return data, msgs, conns, last, errors.New("more than 100 SSE connections without EOF")
}
