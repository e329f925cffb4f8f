package testserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// Fault describes a failure the server injects into matching requests.
// A request matches when its stream path (relative to the prefix) equals
// Path (or Path is empty) and its method equals Method (or Method is
// empty). The first matching fault applies.
type Fault struct {
	Path   string // stream path relative to the prefix ("" = any)
	Method string // HTTP method ("" = any)

	Status     int           // respond with this status instead of handling (0 = none)
	RetryAfter time.Duration // with Status: Retry-After header (whole seconds, rounded up)
	Delay      time.Duration // wait (ends early if the client or server goes away) before handling
	Drop       bool          // close the connection without a response
	Truncate   bool          // send headers and part of the body, then close the connection
	AfterApply bool          // with Drop/Truncate/Status: run the real handler first, then fail the response

	Count       int     // apply to the next Count matching requests (0 = until cleared)
	Probability float64 // 0 = always; else the chance a matching request is hit
}

type faultEntry struct {
	f    Fault
	left int // remaining uses when f.Count > 0
}

type faultSet struct {
	mu     sync.Mutex
	faults []*faultEntry
}

// InjectFault adds a fault. Faults are checked in the order they were added.
func (s *Server) InjectFault(f Fault) {
	f.Path = s.relPath(f.Path)
	f.Method = strings.ToUpper(f.Method)
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = append(s.faults.faults, &faultEntry{f: f, left: f.Count})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	s.faults.faults = nil
}

func (fs *faultSet) match(path, method string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, e := range fs.faults {
		if e.f.Path != "" && e.f.Path != path {
			continue
		}
		if e.f.Method != "" && e.f.Method != method {
			continue
		}
		if p := e.f.Probability; p > 0 && p < 1 && rand.Float64() >= p {
			continue
		}
		if e.f.Count > 0 {
			e.left--
			if e.left <= 0 {
				fs.faults = append(fs.faults[:i:i], fs.faults[i+1:]...)
			}
		}
		return e.f, true
	}
	return Fault{}, false
}

// applyFault injects f into the request. It reports whether the response
// has been written (otherwise the caller handles the request normally).
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f Fault, path string) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
		case <-s.baseCtx.Done():
		}
		t.Stop()
		if s.shuttingDown() {
			httpError(w, http.StatusServiceUnavailable, "server closing")
			return true
		}
		if r.Context().Err() != nil {
			return true // the client went away
		}
	}
	if f.Status == 0 && !f.Drop && !f.Truncate {
		return false
	}
	readOnly := r.Method == http.MethodGet || r.Method == http.MethodHead
	if f.AfterApply || (f.Truncate && readOnly) {
		rec := newRecorder(w.Header(), r)
		s.route(rec, rec.req, path)
		rec.cancel()
		switch {
		case f.Drop:
			dropConn(w)
		case f.Status != 0:
			writeStatusFault(w, f)
		default:
			truncateResponse(w, rec)
		}
		return true
	}
	if f.Drop {
		dropConn(w)
		return true
	}
	if !readOnly {
		_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, s.cfg.maxBodySize))
	}
	if f.Truncate {
		// Not applied: a cut-off error response.
		rec := newRecorder(w.Header(), r)
		rec.cancel()
		rec.h.Set("Content-Type", "text/plain; charset=utf-8")
		rec.status = http.StatusInternalServerError
		rec.buf.WriteString("injected fault: truncated response\n")
		truncateResponse(w, rec)
		return true
	}
	writeStatusFault(w, f)
	return true
}

func writeStatusFault(w http.ResponseWriter, f Fault) {
	h := w.Header()
	for _, k := range []string{protocol.HeaderNextOffset, protocol.HeaderClosed, protocol.HeaderUpToDate,
		protocol.HeaderCursor, protocol.HeaderProducerEpoch, protocol.HeaderProducerSeq, "Location", "Content-Length"} {
		h.Del(k)
	}
	if f.RetryAfter > 0 {
		secs := int64((f.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	httpError(w, f.Status, "injected fault")
}

// dropConn closes the client connection without writing a response. Over
// HTTP/2, where one connection carries many requests, it resets the
// request's stream instead.
func dropConn(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// truncateResponse sends the recorded status and headers and only half of
// the recorded body (announcing the full length), then closes the
// connection, so the client sees a body cut short. Over HTTP/2 it resets
// the request's stream after the half body instead (truncateStream).
func truncateResponse(w http.ResponseWriter, rec *recorder) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		truncateStream(w, rec)
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	defer conn.Close()
	body := rec.buf.Bytes()
	half := len(body) / 2
	h := rec.h.Clone()
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	h.Set("Connection", "close")
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	fmt.Fprintf(brw, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	if rec.flushed || len(body) == 0 {
		// Streaming (SSE) or empty: chunked framing with a cut-off chunk.
		h.Set("Transfer-Encoding", "chunked")
		_ = h.Write(brw)
		brw.WriteString("\r\n")
		fmt.Fprintf(brw, "%x\r\n", len(body)+1)
		brw.Write(body[:half])
	} else {
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_ = h.Write(brw)
		brw.WriteString("\r\n")
		brw.Write(body[:half])
	}
	_ = brw.Flush()
}

// truncateStream is truncateResponse for a response that cannot be
// hijacked (HTTP/2): the recorded status and headers, half of the body
// (announcing its full length unless it was streamed), then a reset of the
// stream, which the client reads as a body cut short.
func truncateStream(w http.ResponseWriter, rec *recorder) {
	body := rec.buf.Bytes()
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	for k, vs := range rec.h {
		h[k] = vs
	}
	h.Del("Transfer-Encoding")
	h.Del("Content-Length")
	if !rec.flushed && len(body) > 0 {
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(body[:len(body)/2])
	_ = http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// recorder captures a handler's response for faults applied after the
// real handler ran. A Flush (SSE) ends the handler by cancelling its
// request context, so a streaming response is cut after its first flush.
type recorder struct {
	h       http.Header
	status  int
	buf     bytes.Buffer
	req     *http.Request
	cancel  context.CancelFunc
	flushed bool
}

func newRecorder(base http.Header, r *http.Request) *recorder {
	ctx, cancel := context.WithCancel(r.Context())
	return &recorder{h: base.Clone(), req: r.WithContext(ctx), cancel: cancel}
}

func (rc *recorder) Header() http.Header { return rc.h }
func (rc *recorder) WriteHeader(code int) {
	if rc.status == 0 {
		rc.status = code
	}
}
func (rc *recorder) Write(p []byte) (int, error) {
	if rc.status == 0 {
		rc.status = http.StatusOK
	}
	if rc.flushed {
		return 0, io.ErrClosedPipe
	}
	return rc.buf.Write(p)
}
func (rc *recorder) Flush() {
	rc.flushed = true
	rc.cancel()
}

var _ http.Flusher = (*recorder)(nil)

// ---------------------------------------------------------------- accounting

type countKey struct{ path, method string }

type counters struct {
	mu     sync.Mutex
	m      map[countKey]int
	protos map[string]int // requests by r.Proto ("HTTP/1.1", "HTTP/2.0")
	conns  ConnectionStats
}

func (c *counters) init() { c.m, c.protos = map[countKey]int{}, map[string]int{} }

func (c *counters) add(path, method, proto string) {
	c.mu.Lock()
	c.m[countKey{path, method}]++
	c.protos[proto]++
	c.mu.Unlock()
}

// connState is the http.Server's ConnState hook: it counts connections.
func (c *counters) connState(_ net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateNew:
		c.conns.Accepted++
		c.conns.Open++
		c.conns.MaxOpen = max(c.conns.MaxOpen, c.conns.Open)
	case http.StateClosed, http.StateHijacked:
		c.conns.Open--
	}
}

// ConnectionStats counts a Server's client connections (TCP, or TLS over
// TCP), since it started.
type ConnectionStats struct {
	Accepted int // connections accepted
	Open     int // accepted and not yet closed (or hijacked by a fault)
	MaxOpen  int // the most open at one time
}

// ProtocolRequests returns how many requests counted by Requests arrived
// over each HTTP version, keyed by the request's Proto ("HTTP/1.1",
// "HTTP/2.0"): what a test checks to know which protocol a client really
// spoke.
func (s *Server) ProtocolRequests() map[string]int {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return maps.Clone(s.counters.protos)
}

// Connections counts the server's client connections; ResetRequests does
// not reset it. An HTTP/2 connection carries many requests at once, an
// HTTP/1.1 connection one at a time.
func (s *Server) Connections() ConnectionStats {
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	return s.counters.conns
}

// Requests returns how many requests reached the server for the stream
// path (relative to the prefix) and method; "" matches any path or method.
// Every request under the prefix counts, including rejected and faulted
// ones; control-API requests do not.
func (s *Server) Requests(path, method string) int {
	path = s.relPath(path)
	s.counters.mu.Lock()
	defer s.counters.mu.Unlock()
	n := 0
	for k, v := range s.counters.m {
		if (path == "" || k.path == path) && (method == "" || k.method == method) {
			n += v
		}
	}
	return n
}

// ResetRequests sets every request count to zero (those of
// ProtocolRequests too).
func (s *Server) ResetRequests() {
	s.counters.mu.Lock()
	s.counters.m, s.counters.protos = map[countKey]int{}, map[string]int{}
	s.counters.mu.Unlock()
}

// relPath accepts a stream path with or without the prefix or a leading
// slash, or a full stream URL, and returns it relative to the prefix.
func (s *Server) relPath(p string) string {
	if strings.Contains(p, "://") {
		if u, err := url.Parse(p); err == nil {
			p = u.Path
		}
	}
	if strings.HasPrefix(p, s.cfg.prefix) {
		return p[len(s.cfg.prefix):]
	}
	return strings.TrimPrefix(p, "/")
}
