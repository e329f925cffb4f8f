// Package hostile is a kit of misbehaving Durable Streams servers for
// security and robustness tests of client code: endless bodies, huge SSE
// lines and JSON messages, millions of tiny chunks, offsets that go
// backwards or never advance, redirects to another host, and slowloris
// responses.
//
// Each constructor starts an httptest server on 127.0.0.1 that answers
// every path the same way and records the requests it receives (method,
// path and query, headers) in a bounded history. Generated bodies are
// produced lazily from a small buffer, so a 1 GiB response costs the
// server kilobytes. Every handler watches its request context, and Close
// returns promptly even while a handler is in the middle of a stream.
//
// Only GET requests are hostile (and, for Redirect, every request); HEAD,
// PUT, POST and DELETE get minimal well-formed answers so that a client can
// get as far as reading.
package hostile

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// Default settings; see the With options.
const (
	DefaultHistory  = 64
	DefaultInterval = 10 * time.Millisecond
)

// writeStep is the size of each write of a generated body in normal delivery.
const writeStep = 32 << 10

// Option changes one setting of a hostile server.
type Option func(*config)

type config struct {
	history       int
	contentType   string
	declareLength bool
	interval      time.Duration
	status        int
	body          []byte
	bodySet       bool
	slowHeaders   bool
}

func newConfig(defaultCT string, opts []Option) config {
	c := config{
		history:     DefaultHistory,
		contentType: defaultCT,
		interval:    DefaultInterval,
		status:      http.StatusTemporaryRedirect,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithHistory sets how many requests the Recorder retains (default
// DefaultHistory; at least 1).
func WithHistory(n int) Option { return func(c *config) { c.history = n } }

// WithContentType sets the stream content type the server claims; each
// constructor documents its default.
func WithContentType(ct string) Option { return func(c *config) { c.contentType = ct } }

// WithContentLength makes finite non-SSE bodies declare their true
// Content-Length instead of using chunked encoding.
func WithContentLength() Option { return func(c *config) { c.declareLength = true } }

// WithInterval sets the pause between SSE events of OffsetBackwards and
// OffsetRepeat (default DefaultInterval).
func WithInterval(d time.Duration) Option { return func(c *config) { c.interval = d } }

// WithStatus sets the redirect status of Redirect (default 307).
func WithStatus(code int) Option { return func(c *config) { c.status = code } }

// WithBody sets the data each OffsetBackwards / OffsetRepeat response
// carries (may be empty: an empty body that never reaches up-to-date).
func WithBody(b []byte) Option {
	return func(c *config) { c.body, c.bodySet = append([]byte(nil), b...), true }
}

// WithSlowHeaders makes Slowloris dribble the status line and headers too,
// not only the body (the connection is hijacked and closed at the end).
func WithSlowHeaders() Option { return func(c *config) { c.slowHeaders = true } }

// Server is a running hostile server.
type Server struct {
	// URL is the base URL, "http://127.0.0.1:PORT".
	URL string

	rec    *Recorder
	target *Server
	ts     *httptest.Server
	ctx    context.Context // base of every request context; cancelled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // running handlers, hijacked ones included
}

// handler serves one request; ctx is cancelled when the client goes away
// or the server closes.
type handler func(ctx context.Context, w http.ResponseWriter, r *http.Request)

func start(cfg config, h handler) *Server {
	s := &Server{rec: newRecorder(cfg.history)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.rec.record(r)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		h(r.Context(), &sentCounter{ResponseWriter: w, rec: s.rec}, r)
	}))
	s.ts.Config.BaseContext = func(net.Listener) context.Context { return s.ctx }
	s.ts.Config.ErrorLog = discardLogger()
	s.ts.Start()
	s.URL = s.ts.URL
	return s
}

// sentCounter counts the body bytes a handler writes (Recorder.Sent).
type sentCounter struct {
	http.ResponseWriter
	rec *Recorder
}

func (w *sentCounter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.rec.sent.Add(int64(n))
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *sentCounter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Recorder returns the server's request history.
func (s *Server) Recorder() *Recorder { return s.rec }

// Target returns the second host a Redirect server sends clients to, with
// its own Recorder; nil for every other server.
func (s *Server) Target() *Server { return s.target }

// StreamURL returns URL + "/v1/stream/" + name, a stream URL in the usual
// layout (the server answers every path alike).
func (s *Server) StreamURL(name string) string { return s.URL + "/v1/stream/" + name }

// Close cancels every handler, closes every connection and waits for the
// handlers to return; then it closes the Target, if any. It is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.ts.CloseClientConnections() // unblocks writes to clients that stopped reading
	s.ts.Close()
	s.wg.Wait()
	if s.target != nil {
		s.target.Close()
	}
}

// offset formats n as a 16-digit, lexicographically sortable offset.
func offset(n int64) string { return fmt.Sprintf("%016d", max(n, 0)) }

func isSSE(r *http.Request) bool { return r.URL.Query().Get(protocol.QueryLive) == protocol.LiveSSE }

// control returns an SSE control event.
func control(next string, upToDate bool) string {
	ev := fmt.Sprintf(`{"streamNextOffset":%q,"streamCursor":"1"`, next)
	if upToDate {
		ev += `,"upToDate":true`
	}
	return "event: control\ndata: " + ev + "}\n\n"
}

// answerNonGET gives minimal well-formed answers to every method but GET
// and reports whether it answered.
func answerNonGET(w http.ResponseWriter, r *http.Request, ct string) bool {
	if r.Method == http.MethodGet {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	h := w.Header()
	h.Set(protocol.HeaderNextOffset, offset(1))
	switch r.Method {
	case http.MethodHead:
		h.Set("Content-Type", ct)
		w.WriteHeader(http.StatusOK)
	case http.MethodPut:
		h.Set("Content-Type", ct)
		w.WriteHeader(http.StatusCreated)
	case http.MethodPost, http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
	return true
}

// setReadHeaders sets the headers of a read response: the SSE content type
// (and base64 marker for binary streams) or the stream's content type, and
// the protocol headers.
func setReadHeaders(w http.ResponseWriter, r *http.Request, ct, next string, upToDate bool) {
	h := w.Header()
	if isSSE(r) {
		h.Set("Content-Type", "text/event-stream")
		if !protocol.IsTextual(ct) {
			h.Set(protocol.HeaderSSEDataEncoding, "base64")
		}
	} else {
		h.Set("Content-Type", ct)
		h.Set(protocol.HeaderNextOffset, next)
		h.Set(protocol.HeaderCursor, "1")
		if upToDate {
			h.Set(protocol.HeaderUpToDate, "true")
		}
	}
	h.Set("Cache-Control", "no-store")
}

// deliver writes body to w in pieces of step bytes, flushing after each
// when flush is set and pausing interval between pieces, until the body
// ends, a write fails or ctx is done.
func deliver(ctx context.Context, w http.ResponseWriter, body io.Reader, step int, flush bool, interval time.Duration) {
	rc := http.NewResponseController(w)
	buf := make([]byte, step)
	var t *time.Timer
	if interval > 0 {
		t = time.NewTimer(interval)
		defer t.Stop()
	}
	for ctx.Err() == nil {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flush && rc.Flush() != nil {
				return
			}
		}
		if err != nil {
			return
		}
		if t != nil {
			t.Reset(interval)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	}
}
