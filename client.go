package durable

// Internal helpers for the Reader and Writer (same package): single
// attempts, which they run inside their own use of the one retry loop
// (internal/retry):
//
//	c.streamURL(stream) (string, error)            resolve a stream path or full URL
//	c.send(ctx, *call) (*response, error)          one request, or the retry loop with cl.retry (transport.go)
//	c.appendOnce(ctx, url, data, AppendOptions)    one POST, no retry; (AppendResult, error)
//	c.readOnce(ctx, url, ReadOptions)              one GET (none / long-poll / SSE-until-control), no retry
//	c.headOnce(ctx, url)                           one HEAD, no retry
//	c.requestHeader(ctx, protocol http.Header)     static + HeaderFunc + protocol headers + User-Agent
//	classifier(safe), c.retryLogger(ctx, op, url)  classification and logging for retry.Do
//
// Every operation error is an *Error (see errors.go); a single attempt never
// sleeps.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Offset is an opaque, lexicographically ordered position in a stream, as
// returned by the server in Stream-Next-Offset. Two values are sentinels a
// client may send but a server never returns.
type Offset string

// Sentinel offsets.
const (
	OffsetStart Offset = "-1"  // the beginning of the stream
	OffsetNow   Offset = "now" // the current tail: skip existing data
)

// Client talks to one Durable Streams server. Create it once with
// NewClient; it is safe for concurrent use and holds no per-stream state.
type Client struct {
	base *url.URL
	cfg  config
	hc   *http.Client
	log  *slog.Logger
}

// NewClient returns a client for the server whose stream URLs start with
// baseURL, the streams root (for example "http://localhost:4437/v1/stream/").
// A base URL with no path at all, such as "http://localhost:4437" (the
// address `durable serve` prints), means the usual layout of that server:
// streams under /v1/stream/, as with the reference server and testserver.
// Give a path ("http://host/" for streams at the root of a server, or
// "http://host/streams/") to use another layout. Stream names given to
// operations are resolved against the base URL; full http(s) URLs are used
// as they are. Options are validated here; an invalid one is an error
// wrapping ErrInvalidArgument.
func NewClient(baseURL string, opts ...Option) (*Client, error) {
	base, err := url.Parse(baseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("%w: base URL %q must be an absolute http(s) URL", ErrInvalidArgument, redactURL(baseURL))
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("%w: base URL %q must not have a query or fragment", ErrInvalidArgument, redactURL(baseURL))
	}
	if base.Path == "" {
		// The server's address alone (what `durable serve` prints): the
		// usual layout, streams under /v1/stream/.
		base.Path = defaultStreamsRoot
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
		if base.RawPath != "" {
			base.RawPath += "/"
		}
	}
	cfg := defaultConfig()
	_, errs := applyOptions("NewClient", opts, func(o Option) func(*config) { return o.client }, &cfg)
	cfg.errs = append(errs, cfg.errs...)
	if cfg.headers.Get("User-Agent") == "" {
		cfg.headers.Set("User-Agent", defaultUserAgent)
	}
	if cfg.h2c && cfg.httpClient != nil {
		cfg.fail("WithUnencryptedHTTP2 and WithHTTPClient: set the protocols on your own transport")
	}
	if cfg.h2c && base.Scheme != "http" {
		cfg.fail("WithUnencryptedHTTP2 with an %s base URL: over TLS HTTP/2 is negotiated by itself", base.Scheme)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var hc http.Client
	if cfg.httpClient != nil {
		hc = *cfg.httpClient
	} else {
		hc.Transport = defaultTransport(cfg.h2c)
	}
	hc.CheckRedirect = sameOriginRedirects(hc.CheckRedirect)
	return &Client{base: base, cfg: cfg, hc: &hc, log: cfg.logger}, nil
}

// defaultStreamsRoot is the path of the streams root of a server given by
// its address alone.
const defaultStreamsRoot = "/v1/stream/"

// defaultIdleConnsPerHost is how many idle connections the default
// transport keeps per host. net/http keeps 2, which makes a pipelining Writer,
// several Writers or many long-polling Readers on one Client close and
// re-dial connections all the time.
const defaultIdleConnsPerHost = 64

// h2cDialsPerHost bounds the connections of an HTTP/2-only (h2c) default
// transport that are being dialled or still have room for more streams.
// Without it, 10,000 Readers started at once on a cold Client dial 10,000
// connections, because none of them knows yet that the first connection
// will carry the others (net/http then closes the extra ones). A connection
// found full stops counting, so this never caps the total: a Client keeps
// opening connections while every open one is full.
const h2cDialsPerHost = 8

// defaultTransport is a clone of http.DefaultTransport that keeps
// defaultIdleConnsPerHost idle connections per host. Like its original it
// negotiates HTTP/2 over TLS (ForceAttemptHTTP2); with h2c it speaks only
// HTTP/2, without TLS on http:// URLs. Either way a connection carries at
// most the server's SETTINGS_MAX_CONCURRENT_STREAMS requests, and a request
// that finds every connection full opens another instead of waiting
// (net/http's default, HTTP2Config.StrictMaxConcurrentRequests false): a
// long-poll must never queue behind 10,000 others.
func defaultTransport(h2c bool) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = defaultIdleConnsPerHost
	if t.MaxIdleConns < defaultIdleConnsPerHost {
		t.MaxIdleConns = defaultIdleConnsPerHost
	}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		t.Protocols = &p
		t.MaxConnsPerHost = h2cDialsPerHost
	}
	return t
}

// sameOriginRedirects refuses a redirect to another scheme or host (so
// Authorization and custom credential headers are never sent there), then
// defers to next, or to net/http's limit of 10 redirects.
func sameOriginRedirects(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		orig := via[0].URL
		if req.URL.Scheme != orig.Scheme || !strings.EqualFold(req.URL.Host, orig.Host) {
			return fmt.Errorf("%w: to %s", ErrCrossHostRedirect, redactURL(req.URL.String()))
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return fmt.Errorf("%w: stopped after 10 redirects", ErrProtocol)
		}
		return nil
	}
}

// URL resolves a stream name to its full URL: a name relative to the base
// URL ("orders" or "tenant/orders"), or an absolute http(s) URL on the base
// URL's scheme and host, used as is (its own query kept). A name that is
// empty, contains "." / ".." segments, '?' or '#', or a URL on another
// origin (which would receive the Client's credentials) is rejected with
// ErrInvalidArgument.
func (c *Client) URL(stream string) (string, error) {
	return c.streamURL(stream)
}

func (c *Client) streamURL(stream string) (string, error) {
	if strings.HasPrefix(stream, "http://") || strings.HasPrefix(stream, "https://") {
		u, err := url.Parse(stream)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("%w: stream URL %q", ErrInvalidArgument, redactURL(stream))
		}
		// Static and HeaderFunc headers (credentials) go with every request,
		// so a full URL must stay on the base URL's origin.
		if u.Scheme != c.base.Scheme || !strings.EqualFold(u.Host, c.base.Host) {
			return "", fmt.Errorf("%w: stream URL %q is not on %s://%s", ErrInvalidArgument, redactURL(stream), c.base.Scheme, c.base.Host)
		}
		if u.User == nil && c.base.User != nil {
			u.User = c.base.User
		}
		return u.String(), nil
	}
	name := strings.TrimLeft(stream, "/")
	if name == "" {
		return "", fmt.Errorf("%w: empty stream name", ErrInvalidArgument)
	}
	if strings.ContainsAny(name, "?#") {
		return "", fmt.Errorf("%w: stream name %q contains '?' or '#'", ErrInvalidArgument, redactURL(stream))
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "." || seg == ".." {
			return "", fmt.Errorf("%w: stream name %q contains a %q segment", ErrInvalidArgument, stream, seg)
		}
		for _, r := range seg {
			if r < 0x20 || r == 0x7f {
				return "", fmt.Errorf("%w: stream name %q contains a control character", ErrInvalidArgument, stream)
			}
		}
	}
	u := *c.base
	u.Path = c.base.Path + name
	u.RawPath = ""
	return u.String(), nil
}

// requestHeader builds the headers of one attempt: static headers, then the
// HeaderFunc's (replacing static ones of the same name), then the protocol
// headers of the call.
func (c *Client) requestHeader(ctx context.Context, protocol http.Header) (http.Header, error) {
	h := c.cfg.headers.Clone()
	if h == nil {
		h = http.Header{}
	}
	if c.cfg.headerFunc != nil {
		extra, err := c.cfg.headerFunc(ctx)
		if err != nil {
			return nil, fmt.Errorf("header function: %w", err)
		}
		for k, vs := range extra {
			h[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
		}
	}
	for k, vs := range protocol {
		h[k] = append([]string(nil), vs...)
	}
	return h, nil
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date
// (relative to now). It returns false when absent or unparsable; negative
// results are clamped to zero.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, ok := parseUint(v); ok {
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		d = 0
	}
	return d, true
}

func parseUint(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
		n = n*10 + int64(v[i]-'0')
	}
	return n, true
}

// CloseIdleConnections closes idle keep-alive connections of the Client's
// HTTP transport. The Client needs no other release; this only frees
// sockets early (for example at the end of a test).
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }
