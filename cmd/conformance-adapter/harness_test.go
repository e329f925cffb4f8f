package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is an in-process testserver (streams at the root, as the runner's
// reference server has them) behind a handler that records every request
// and can corrupt the body of chosen reads.
type env struct {
	srv *testserver.Server
	hs  *httptest.Server
	url string

	mu      sync.Mutex
	reqs    []*http.Request // clones: method, URL, headers
	corrupt atomic.Int32    // corrupt the body of this many next catch-up GETs
	direct  *durable.Client // bypasses the adapter (the runner's server-append)
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{srv: testserver.New(testserver.WithPrefix("/"), testserver.WithLongPollTimeout(300*time.Millisecond))}
	e.hs = httptest.NewServer(http.HandlerFunc(e.serve))
	t.Cleanup(e.hs.Close)
	t.Cleanup(e.srv.Close)
	e.url = e.hs.URL
	c, err := durable.NewClient(e.url + "/")
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	e.direct = c
	return e
}

func (e *env) serve(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.reqs = append(e.reqs, r.Clone(context.Background()))
	e.mu.Unlock()
	if r.Method == http.MethodGet && r.URL.Query().Get("live") == "" && e.corrupt.Load() > 0 {
		e.corrupt.Add(-1)
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if len(body) > 2 {
			body = body[:len(body)/2] // a complete response whose JSON is cut short
		}
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
		return
	}
	e.srv.Handler().ServeHTTP(w, r)
}

// requests returns the requests received so far for a path.
func (e *env) requests(path string) []*http.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*http.Request
	for _, r := range e.reqs {
		if r.URL.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// session drives the adapter's main loop in-process through pipes, as the
// runner drives the binary through stdin and stdout.
type session struct {
	t     *testing.T
	in    *io.PipeWriter
	lines chan []byte
	done  chan error
}

func startSession(t *testing.T) *session {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{t: t, in: inW, lines: make(chan []byte, 16), done: make(chan error, 1)}
	go func() {
		err := run(context.Background(), inR, outW)
		inR.Close()
		outW.Close()
		s.done <- err
	}()
	go func() {
		defer close(s.lines)
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			s.lines <- bytes.Clone(sc.Bytes())
		}
	}()
	t.Cleanup(func() {
		s.in.Close()
		for range s.lines {
		}
		select {
		case err := <-s.done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("adapter did not stop at EOF")
		}
	})
	return s
}

// do sends one command and returns its one result.
func (s *session) do(cmd map[string]any) map[string]any {
	s.t.Helper()
	line, err := json.Marshal(cmd)
	require.NoError(s.t, err)
	return s.doLine(line)
}

func (s *session) doLine(line []byte) map[string]any {
	s.t.Helper()
	_, err := s.in.Write(append(line, '\n'))
	require.NoError(s.t, err)
	select {
	case out, ok := <-s.lines:
		require.True(s.t, ok, "adapter closed stdout")
		var res map[string]any
		require.NoError(s.t, json.Unmarshal(out, &res), "stdout line is not JSON: %s", out)
		return res
	case <-time.After(30 * time.Second):
		s.t.Fatalf("no answer within 30 s to %s", line)
		return nil
	}
}

// init sends init for e.
func (s *session) init(e *env) map[string]any {
	s.t.Helper()
	res := s.do(map[string]any{"type": "init", "serverUrl": e.url})
	require.Equal(s.t, true, res["success"], "%v", res)
	return res
}

// ok asserts a successful result of type typ.
func ok(t *testing.T, res map[string]any, typ string) map[string]any {
	t.Helper()
	require.Equal(t, true, res["success"], "%v", res)
	require.Equal(t, typ, res["type"], "%v", res)
	return res
}

// fails asserts an error result for cmdType with code (and status, if > 0).
func fails(t *testing.T, res map[string]any, cmdType, code string, status int) map[string]any {
	t.Helper()
	require.Equal(t, false, res["success"], "%v", res)
	require.Equal(t, "error", res["type"], "%v", res)
	require.Equal(t, cmdType, res["commandType"], "%v", res)
	require.Equal(t, code, res["errorCode"], "%v", res)
	if status > 0 {
		require.EqualValues(t, status, res["status"], "%v", res)
	}
	require.NotEmpty(t, res["message"])
	return res
}

// data joins the chunks of a read result.
func data(res map[string]any) string {
	var b bytes.Buffer
	chunks, _ := res["chunks"].([]any)
	for _, c := range chunks {
		b.WriteString(c.(map[string]any)["data"].(string))
	}
	return b.String()
}

func chunkCount(res map[string]any) int {
	chunks, _ := res["chunks"].([]any)
	return len(chunks)
}

var streamN atomic.Int64

// newPath returns a fresh stream path.
func newPath() string { return "/s-" + strconv.FormatInt(streamN.Add(1), 10) }

// create creates a stream through the adapter.
func (s *session) create(ct string) string {
	s.t.Helper()
	p := newPath()
	cmd := map[string]any{"type": "create", "path": p}
	if ct != "" {
		cmd["contentType"] = ct
	}
	ok(s.t, s.do(cmd), "create")
	return p
}

// appendData appends through the adapter and returns the offset after it.
func (s *session) appendData(path, d string) string {
	s.t.Helper()
	res := ok(s.t, s.do(map[string]any{"type": "append", "path": path, "data": d}), "append")
	return res["offset"].(string)
}

// testserverFault fails the next count requests of method on path
// (relative to the server's prefix) with status.
func testserverFault(path, method string, status, count int) testserver.Fault {
	return testserver.Fault{Path: path, Method: method, Status: status, Count: count}
}

// appendLater appends d to path directly (not through the adapter) after
// delay, as the runner's server-append does while a read is waiting.
func (e *env) appendLater(t *testing.T, path, d string, delay time.Duration) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		time.Sleep(delay) // test only: let the read start waiting first
		info, err := e.direct.Head(context.Background(), e.url+path)
		if err == nil {
			_, err = e.direct.Append(context.Background(), e.url+path, []byte(d), durable.AppendOptions{ContentType: info.ContentType})
		}
		done <- err
	}()
	return done
}
