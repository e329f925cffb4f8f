package testserver

import (
	"crypto/tls"
	"net/http"
	"strings"
	"time"
)

// Defaults for the server configuration.
const (
	DefaultPrefix           = "/v1/stream/"
	DefaultLongPollTimeout  = 30 * time.Second
	DefaultSSECloseInterval = 60 * time.Second
	DefaultChunkLimit       = 1 << 20  // bytes of stream data per catch-up response
	DefaultMaxBodySize      = 64 << 20 // bytes per request body
	DefaultCursorInterval   = 20 * time.Second
	DefaultOrderGrace       = 20 * time.Millisecond // see WithProducerOrdering

	// HTTP2MaxConcurrentStreams is how many requests the server lets one
	// HTTP/2 connection carry at once (net/http's default is 250). Each
	// pending long-poll or open SSE response holds a stream, so 10,000 live
	// readers need only ten connections; a Go client opens another
	// connection when one is full.
	HTTP2MaxConcurrentStreams = 1000
)

// cursorEpoch is the protocol's default cursor epoch (2024-10-09T00:00:00Z).
var cursorEpoch = time.Date(2024, 10, 9, 0, 0, 0, 0, time.UTC)

// Option configures a Server.
type Option func(*config)

type config struct {
	prefix           string
	dataDir          string
	longPollTimeout  time.Duration
	sseCloseInterval time.Duration
	chunkLimit       int
	maxBodySize      int64
	clock            func() time.Time
	faultControl     bool
	cursorInterval   time.Duration
	noSync           bool
	orderProducers   bool
	orderGrace       time.Duration
	tls              *tls.Config // nil = plain HTTP
	registry         bool        // keep the __registry__ stream (registry.go)
	middleware       []func(http.Handler) http.Handler
	subs             subsConfig // subscriptions.go
	h2c              bool       // also serve HTTP/2 without TLS (prior knowledge)
}

func defaultConfig() config {
	return config{
		prefix:           DefaultPrefix,
		longPollTimeout:  DefaultLongPollTimeout,
		sseCloseInterval: DefaultSSECloseInterval,
		chunkLimit:       DefaultChunkLimit,
		maxBodySize:      DefaultMaxBodySize,
		clock:            time.Now,
		cursorInterval:   DefaultCursorInterval,
		orderProducers:   true,
		orderGrace:       DefaultOrderGrace,
	}
}

// validate normalises the configuration; invalid values fall back to the
// documented defaults only where the option documents that.
func (c *config) validate() {
	if !strings.HasPrefix(c.prefix, "/") {
		c.prefix = "/" + c.prefix
	}
	if !strings.HasSuffix(c.prefix, "/") {
		c.prefix += "/"
	}
	if c.longPollTimeout <= 0 {
		c.longPollTimeout = DefaultLongPollTimeout
	}
	if c.sseCloseInterval <= 0 {
		c.sseCloseInterval = DefaultSSECloseInterval
	}
	if c.chunkLimit <= 0 {
		c.chunkLimit = DefaultChunkLimit
	}
	if c.maxBodySize <= 0 {
		c.maxBodySize = DefaultMaxBodySize
	}
	if c.clock == nil {
		c.clock = time.Now
	}
	if c.cursorInterval <= 0 {
		c.cursorInterval = DefaultCursorInterval
	}
}

// WithPrefix sets the URL path under which streams live (default
// "/v1/stream/"). A missing leading or trailing slash is added.
func WithPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithDataDir keeps streams in dir (created if missing) so that a server
// restarted on the same directory serves the same streams. Empty means
// memory only (the default).
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithLongPollTimeout sets how long a long-poll read waits for data before
// answering 204 (default 30s; zero or negative keeps the default).
func WithLongPollTimeout(d time.Duration) Option {
	return func(c *config) { c.longPollTimeout = d }
}

// WithSSECloseInterval sets how long an SSE response stays open before the
// server ends it so the client reconnects (default 60s; zero or negative
// keeps the default).
func WithSSECloseInterval(d time.Duration) Option {
	return func(c *config) { c.sseCloseInterval = d }
}

// WithChunkLimit sets the most stream bytes one catch-up or long-poll
// response carries (default 1 MiB). A JSON response always carries at
// least one whole message.
func WithChunkLimit(bytes int) Option { return func(c *config) { c.chunkLimit = bytes } }

// WithMaxBodySize sets the largest request body accepted; larger bodies get
// 413 (default 64 MiB).
func WithMaxBodySize(bytes int64) Option { return func(c *config) { c.maxBodySize = bytes } }

// WithClock sets the time source used for TTL / expiry and cursors
// (default time.Now). Long-poll and SSE waits use real timers.
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithFaultControl enables the HTTP control endpoints under
// /__ds/testserver/ (faults and request accounting; see "Fault control over
// HTTP" in the package documentation) so tests in other processes can drive
// them. Disabled by default.
func WithFaultControl(enabled bool) Option { return func(c *config) { c.faultControl = enabled } }

// WithCursorInterval sets the length of a cursor interval (default 20s).
func WithCursorInterval(d time.Duration) Option { return func(c *config) { c.cursorInterval = d } }

// WithoutSync disables fsync in data-directory mode. Acknowledged writes then
// survive a killed process (they reach the kernel before the response) but
// not a machine crash. Useful for fast disk-backed benchmarks.
func WithoutSync() Option { return func(c *config) { c.noSync = true } }

// WithProducerOrdering sets how the server orders a producer's pipelined
// appends (default on, with a grace of DefaultOrderGrace). A request whose
// Producer-Seq is ahead of the producer's state overtook the requests
// before it, which were sent first on other connections (the protocol,
// section 5.2: requests can arrive out of order). With ordering on, it waits for them:
// for as long as one is being handled by the server (up to 5 s), and for
// up to grace for those that have not reached it yet; then it is validated,
// and answered with a sequence gap (409) only if the gap is still there.
// Off (on false; grace is then ignored), every request is validated the
// moment it reaches the stream, as a strictly first-come server does:
// tests use that to provoke real out-of-order gaps. A grace <= 0 keeps only
// the wait for requests being handled.
func WithProducerOrdering(on bool, grace time.Duration) Option {
	return func(c *config) { c.orderProducers, c.orderGrace = on, max(grace, 0) }
}

// WithMiddleware wraps the server's handler (the stream protocol, with its
// headers, faults and request accounting) in mw, for Start and Handler. A
// request that mw answers itself never reaches the server, so it is not
// counted; `durable serve` uses this to serve its Test UI at /ui/. Given more
// than once, the first middleware given is the outermost.
func WithMiddleware(mw func(http.Handler) http.Handler) Option {
	return func(c *config) { c.middleware = append(c.middleware, mw) }
}

// WithUnencryptedHTTP2 makes a plain-HTTP server also accept HTTP/2 without
// TLS ("h2c", with prior knowledge: the client starts with the HTTP/2
// preface, as net/http does when its Protocols hold only
// UnencryptedHTTP2). HTTP/1.1 keeps working on the same port. Over TLS the
// server always offers HTTP/2 and HTTP/1.1 by ALPN, and this option changes
// nothing. Default off.
func WithUnencryptedHTTP2(enabled bool) Option { return func(c *config) { c.h2c = enabled } }
