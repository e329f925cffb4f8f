package testserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

// Limits on request input.
const (
	maxPathLen   = 1024 // bytes of stream path
	maxOffsetLen = 256  // bytes of an offset query value
	maxSeqLen    = 1024 // bytes of a Stream-Seq value
	maxIDLen     = 1024 // bytes of a Producer-Id value
)

// reservedSegment is the first path segment reserved for protocol control
// APIs (PROTOCOL.md section 6).
const reservedSegment = "__ds"

// controlPrefix is the path of the testserver's own control API, served at
// the root and under the stream prefix when fault control is enabled.
const controlPrefix = "/__ds/testserver/"

// Server is an in-process Durable Streams server. Create one with New or
// Start; it is safe for concurrent use.
type Server struct {
	cfg config

	ln      net.Listener
	httpSrv *http.Server
	url     string
	handler http.Handler

	mu      sync.Mutex
	streams map[string]*stream
	nextID  uint64
	waiting map[string]int // live readers blocked per stream path (for tests)

	cert *x509.Certificate // TLS leaf, nil for plain HTTP

	faults   faultSet
	counters counters

	baseCtx   context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // serving goroutine
	handlers  sync.WaitGroup // running handlers
	hmu       sync.Mutex     // guards closing and handlers.Add
	closing   bool
	closeOnce sync.Once
	disk      *diskStore
	seqs      seqTracker  // producer requests being handled (order.go)
	subs      *subManager // nil unless WithSubscriptions (subscriptions.go)
}

// New starts a server on 127.0.0.1 with a free port, like httptest.NewServer.
// It panics if it cannot listen or open its data directory.
func New(opts ...Option) *Server {
	s, err := Start("127.0.0.1:0", opts...)
	if err != nil {
		panic("testserver: " + err.Error())
	}
	return s
}

// Start starts a server listening on addr (host:port; port 0 picks a free
// one). It is what `durable serve` runs.
func Start(addr string, opts ...Option) (*Server, error) {
	s, err := newServer(opts...)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err == nil && s.cfg.tls != nil {
		if err = s.setupTLS(); err != nil {
			ln.Close()
		}
	}
	if err != nil {
		s.cancel()
		s.closeDisk()
		return nil, err
	}
	s.url = "http://" + ln.Addr().String()
	if s.cfg.tls != nil {
		s.url = "https://" + ln.Addr().String()
		ln = tls.NewListener(ln, s.cfg.tls)
	}
	s.ln = ln
	s.httpSrv = &http.Server{
		Handler:           s.handler,
		Protocols:         s.protocols(),
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: HTTP2MaxConcurrentStreams},
		ConnState:         s.counters.connState,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		ErrorLog:          log.New(io.Discard, "", 0), // silent, like the rest of the SDK
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.httpSrv.Serve(ln)
	}()
	return s, nil
}

// protocols is what the server speaks: HTTP/1.1 always, HTTP/2 over TLS
// (offered by ALPN), and HTTP/2 over plain TCP with WithUnencryptedHTTP2.
func (s *Server) protocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(s.cfg.h2c)
	return &p
}

func newServer(opts ...Option) (*Server, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	cfg.validate()
	s := &Server{
		cfg:     cfg,
		streams: map[string]*stream{},
		waiting: map[string]int{},
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	s.counters.init()
	s.handler = http.HandlerFunc(s.serveHTTP)
	for _, mw := range slices.Backward(cfg.middleware) {
		s.handler = mw(s.handler)
	}
	if cfg.dataDir != "" {
		if err := s.openDisk(); err != nil {
			s.cancel()
			return nil, err
		}
	}
	s.mu.Lock()
	s.syncRegistryLocked(cfg.clock())
	s.mu.Unlock()
	if cfg.subs.enabled {
		m, err := newSubManager(s)
		if err != nil {
			s.cancel()
			s.closeDisk()
			return nil, err
		}
		s.subs = m
	}
	return s, nil
}

// URL returns the base URL, e.g. "http://127.0.0.1:PORT" ("https://..."
// with WithTLS).
func (s *Server) URL() string { return s.url }

// StreamURL returns the URL of the stream at path (relative to the prefix).
func (s *Server) StreamURL(path string) string {
	return s.url + s.cfg.prefix + strings.TrimPrefix(path, "/")
}

// Handler returns the server's HTTP handler, to mount it in another mux.
// Requests must carry the full prefix in their path.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the server: waiting long-polls and SSE responses end at
// once, the listener and every connection close, and Close returns after
// the serving goroutines have finished. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.cancel() // wakes every long-poll, SSE and fault delay
		if s.httpSrv != nil {
			// Handlers return at once; the timeout only matters for a
			// client that stopped reading (a blocked write).
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := s.httpSrv.Shutdown(ctx); err != nil {
				_ = s.httpSrv.Close()
			}
			cancel()
		}
		s.wg.Wait()
		s.hmu.Lock()
		s.closing = true
		s.hmu.Unlock()
		s.handlers.Wait()
		if s.subs != nil {
			s.subs.shutdown()
		}
		s.closeDisk()
	})
}

// serveHTTP is the root handler: accounting, faults, common headers, routing.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.hmu.Lock()
	if s.closing {
		s.hmu.Unlock()
		httpError(w, http.StatusServiceUnavailable, "server closed")
		return
	}
	s.handlers.Add(1)
	s.hmu.Unlock()
	defer s.handlers.Done()
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	setCORS(h, r)

	if s.cfg.faultControl {
		if p, ok := s.controlPath(r.URL.Path); ok {
			s.serveControl(w, r, p)
			return
		}
	}
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !strings.HasPrefix(r.URL.Path, s.cfg.prefix) {
		httpError(w, http.StatusNotFound, "not found")
		return
	}
	path, status, msg := s.streamPath(r)
	if s.subs != nil {
		if p, ok := s.dsRoutePath(r); ok {
			path, status = p, 0
		}
	}
	s.counters.add(path, r.Method, r.Proto)
	if status != 0 {
		httpError(w, status, msg)
		return
	}
	if f, ok := s.faults.match(path, r.Method); ok {
		if s.applyFault(w, r, f, path) {
			return
		}
	}
	s.route(w, r, path)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, path string) {
	if s.subs != nil && isDSPath(path) {
		s.subs.serve(w, r, path)
		return
	}
	switch r.Method {
	case http.MethodPut:
		s.handleCreate(w, r, path)
	case http.MethodPost:
		s.handleAppend(w, r, path)
	case http.MethodGet:
		s.handleRead(w, r, path)
	case http.MethodHead:
		s.handleHead(w, r, path)
	case http.MethodDelete:
		s.handleDelete(w, r, path)
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
		httpError(w, http.StatusMethodNotAllowed, "method not allowed")
	}
}

// streamPath extracts and validates the stream path of r (relative to the
// prefix). On a bad path it returns a 4xx status and message.
func (s *Server) streamPath(r *http.Request) (string, int, string) {
	raw := r.URL.EscapedPath()
	if !strings.HasPrefix(raw, s.cfg.prefix) {
		return "", http.StatusBadRequest, "bad path encoding"
	}
	raw = raw[len(s.cfg.prefix):]
	low := strings.ToLower(raw)
	if strings.Contains(low, "%2f") || strings.Contains(low, "%5c") || strings.Contains(low, "%00") {
		return "", http.StatusBadRequest, "encoded slash or NUL in path"
	}
	p := r.URL.Path[len(s.cfg.prefix):]
	return validateStreamPath(p)
}

// validateStreamPath checks a decoded stream path relative to the prefix.
func validateStreamPath(p string) (string, int, string) {
	if p == "" {
		return "", http.StatusNotFound, "no stream path"
	}
	if len(p) > maxPathLen {
		return p, http.StatusBadRequest, "stream path too long"
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return p, http.StatusBadRequest, "invalid character in stream path"
		}
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return p, http.StatusBadRequest, "empty segment in stream path"
		case ".", "..":
			return p, http.StatusBadRequest, "path traversal in stream path"
		}
	}
	if p == reservedSegment || strings.HasPrefix(p, reservedSegment+"/") {
		return p, http.StatusNotFound, "reserved __ds path"
	}
	return p, 0, ""
}

// setCORS adds permissive CORS headers (the server is for development and
// tests) exposing every protocol header to browsers.
func setCORS(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		origin = "*"
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if origin != "*" {
		h.Add("Vary", "Origin")
	}
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders+", "+req)
	} else {
		h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	}
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	h.Set("Access-Control-Max-Age", "86400")
}

var corsAllowHeaders = strings.Join([]string{
	"Content-Type", "Authorization", "If-None-Match", "Cache-Control",
	protocol.HeaderTTL, protocol.HeaderExpiresAt, protocol.HeaderSeq, protocol.HeaderClosed,
	protocol.HeaderForkedFrom, protocol.HeaderForkOffset, protocol.HeaderForkSubOffset,
	protocol.HeaderProducerID, protocol.HeaderProducerEpoch, protocol.HeaderProducerSeq,
}, ", ")

var corsExposeHeaders = strings.Join([]string{
	"Content-Type", "ETag", "Location", "Cache-Control", "Retry-After",
	protocol.HeaderNextOffset, protocol.HeaderCursor, protocol.HeaderUpToDate, protocol.HeaderClosed,
	protocol.HeaderTTL, protocol.HeaderExpiresAt, protocol.HeaderSSEDataEncoding,
	protocol.HeaderProducerEpoch, protocol.HeaderProducerSeq,
	protocol.HeaderProducerExpected, protocol.HeaderProducerReceived,
}, ", ")

// httpError writes a short plain-text error.
func httpError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Del("ETag")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// Waiting returns how many live reads (long-polls and SSE responses) are
// waiting for data on the stream at path (relative to the prefix; "" = on
// every stream). Tests use it to append only once their readers wait.
func (s *Server) Waiting(path string) int {
	path = s.relPath(path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if path != "" {
		return s.waiting[path]
	}
	n := 0
	for _, w := range s.waiting {
		n += w
	}
	return n
}

// waitOn blocks until wake is closed, the timer fires (nil = never), the
// request ends or the server closes, and reports which.
func (s *Server) waitOn(r *http.Request, path string, wake <-chan struct{}, timer <-chan time.Time) waitResult {
	s.mu.Lock()
	s.waiting[path]++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.waiting[path]--; s.waiting[path] <= 0 {
			delete(s.waiting, path)
		}
		s.mu.Unlock()
	}()
	select {
	case <-wake:
		return waitWoken
	case <-timer:
		return waitTimeout
	case <-r.Context().Done():
	case <-s.baseCtx.Done():
	}
	if s.shuttingDown() {
		return waitShutdown
	}
	return waitGone
}

// shuttingDown reports whether Close has begun. Requests served by the server's
// own listener have contexts derived from its context (BaseContext), so a
// shutdown ends them too: a request whose context is done while closing is
// answered as a shutdown, not taken for a client gone away (which gets no
// answer at all).
func (s *Server) shuttingDown() bool { return s.baseCtx.Err() != nil }

type waitResult int

const (
	waitWoken waitResult = iota
	waitTimeout
	waitGone
	waitShutdown
)
