package durable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/durablego/durable/internal/retry"
)

// Option configures a Client. Options are applied in order by NewClient and
// validated once there: a value that makes no sense (a nil HTTP client, a
// negative timeout, an empty header name) makes NewClient fail instead of
// being replaced by a default.
type Option func(*config)

// RetryPolicy is the backoff schedule of unary calls (and the shape the
// Reader and Writer use for theirs). It is turned into a
// github.com/cenkalti/backoff/v4 ExponentialBackOff.
//
// The wait before retry n (n = 1, 2, ...) is Initial·Multiplier^(n-1), capped
// at Max, then randomised by ±Jitter (a fraction in [0, 1]). A server's
// Retry-After is a floor under that wait. Retries stop after MaxAttempts
// attempts in total (0 = no limit on attempts) or once MaxElapsed has passed
// since the first attempt (0 = no time limit); with both zero only the
// caller's context ends the retries.
type RetryPolicy struct {
	Initial     time.Duration // first wait; must be > 0
	Max         time.Duration // cap on a single wait; must be ≥ Initial
	Multiplier  float64       // growth per retry; must be ≥ 1
	Jitter      float64       // randomisation factor in [0, 1]
	MaxAttempts int           // total attempts including the first; 0 = unlimited, 1 = never retry
	MaxElapsed  time.Duration // give up after this long; 0 = no limit
}

// DefaultRetryPolicy returns the policy a Client uses unless WithRetry is
// given: 100 ms doubling to at most 5 s, ±20 % jitter, at most 5 attempts
// within 30 s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Initial:     100 * time.Millisecond,
		Max:         5 * time.Second,
		Multiplier:  2,
		Jitter:      0.2,
		MaxAttempts: 5,
		MaxElapsed:  30 * time.Second,
	}
}

// NoRetry is a RetryPolicy that makes exactly one attempt.
func NoRetry() RetryPolicy {
	p := DefaultRetryPolicy()
	p.MaxAttempts = 1
	return p
}

// Validate reports whether the policy is usable.
func (p RetryPolicy) Validate() error {
	switch {
	case p.Initial <= 0:
		return fmt.Errorf("retry policy: Initial must be > 0, got %v", p.Initial)
	case p.Max < p.Initial:
		return fmt.Errorf("retry policy: Max (%v) must be ≥ Initial (%v)", p.Max, p.Initial)
	case !(p.Multiplier >= 1): // also rejects NaN
		return fmt.Errorf("retry policy: Multiplier must be ≥ 1, got %v", p.Multiplier)
	case !(p.Jitter >= 0 && p.Jitter <= 1):
		return fmt.Errorf("retry policy: Jitter must be in [0, 1], got %v", p.Jitter)
	case p.MaxAttempts < 0:
		return fmt.Errorf("retry policy: MaxAttempts must be ≥ 0, got %d", p.MaxAttempts)
	case p.MaxElapsed < 0:
		return fmt.Errorf("retry policy: MaxElapsed must be ≥ 0, got %v", p.MaxElapsed)
	}
	return nil
}

// internal converts the policy for the retry engine.
func (p RetryPolicy) internal() retry.Policy {
	return retry.Policy{Initial: p.Initial, Max: p.Max, Multiplier: p.Multiplier, Jitter: p.Jitter, MaxAttempts: p.MaxAttempts, MaxElapsed: p.MaxElapsed}
}

// HeaderFunc returns headers to add to one HTTP attempt, for example a
// freshly refreshed bearer token. It is called before every attempt,
// retries included, with the caller's context. An error aborts the call.
type HeaderFunc func(ctx context.Context) (http.Header, error)

// Defaults for limits that have no option of their own yet.
const (
	defaultMaxResponseSize = 64 << 20 // bytes of one response body held in memory
	defaultUserAgent       = "durable-go/0.1"
)

type config struct {
	httpClient  *http.Client
	headers     http.Header
	headerFunc  HeaderFunc
	queryFunc   QueryFunc // params.go
	logger      *slog.Logger
	retry       RetryPolicy
	timeout     time.Duration // 0 = none
	userAgent   string
	maxResponse int64
	h2c         bool // WithUnencryptedHTTP2
	hooks       hookSet
	errs        []error
}

func defaultConfig() config {
	return config{
		headers:     http.Header{},
		logger:      slog.New(slog.DiscardHandler),
		retry:       DefaultRetryPolicy(),
		userAgent:   defaultUserAgent,
		maxResponse: defaultMaxResponseSize,
	}
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *config) validate() error {
	if err := c.retry.Validate(); err != nil {
		c.errs = append(c.errs, err)
	}
	if len(c.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidArgument, errors.Join(c.errs...))
}

// WithHTTPClient sets the HTTP client used for every request. The Client
// works on a shallow copy whose CheckRedirect refuses redirects to another
// scheme or host (so credentials never travel there) before consulting
// hc.CheckRedirect. Default: a client with a clone of
// http.DefaultTransport that keeps 64 idle connections per host (instead of
// 2, so pipelined appends and parallel long-polls reuse connections), and no
// overall timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *config) {
		if hc == nil {
			c.fail("WithHTTPClient: nil *http.Client")
			return
		}
		c.httpClient = hc
	}
}

// WithUnencryptedHTTP2 makes the Client speak HTTP/2 without TLS ("h2c",
// with prior knowledge) to an http:// base URL, so that many Readers and
// Writers share a few TCP connections: each pending long-poll, SSE response
// or append is one stream on a connection instead of a connection of its
// own. The server must accept HTTP/2 on its plain port (`durable serve
// --h2c`, testserver.WithUnencryptedHTTP2, or Go's http.Server with
// Protocols holding UnencryptedHTTP2); an HTTP/1.1-only server fails every
// request. When a connection carries as many streams as the server allows,
// the Client opens another; it dials at most 8 at a time, so that requests
// started together share the first connections instead of each dialling
// its own.
//
// Over TLS (an https:// base URL) the default transport already negotiates
// HTTP/2 when the server offers it, so NewClient rejects this option there,
// and beside WithHTTPClient, whose transport decides the protocols (set its
// Protocols to hold only UnencryptedHTTP2 for the same effect).
func WithUnencryptedHTTP2() Option {
	return func(c *config) { c.h2c = true }
}

// WithHeader adds a static header sent with every request. Protocol
// headers the Client sets itself (Content-Type, Stream-*, Producer-*) take
// precedence over it.
func WithHeader(key, value string) Option {
	return func(c *config) {
		if strings.TrimSpace(key) == "" || strings.ContainsAny(key, " \t\r\n:") {
			c.fail("WithHeader: invalid header name %q", key)
			return
		}
		if strings.ContainsAny(value, "\r\n") {
			c.fail("WithHeader: value of %q contains a line break", key)
			return
		}
		c.headers.Add(key, value)
	}
}

// WithHeaderFunc sets a function called before every HTTP attempt (retries
// included) whose headers are added to the request, overriding static
// headers of the same name. Use it for tokens that expire.
func WithHeaderFunc(fn HeaderFunc) Option {
	return func(c *config) {
		if fn == nil {
			c.fail("WithHeaderFunc: nil function")
			return
		}
		c.headerFunc = fn
	}
}

// WithLogger sets the logger for retries and protocol oddities (debug and
// warn levels). Default: nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			c.fail("WithLogger: nil *slog.Logger")
			return
		}
		c.logger = l
	}
}

// WithRetry sets the retry policy of unary calls. Default:
// DefaultRetryPolicy(). Use NoRetry() to disable retries.
func WithRetry(p RetryPolicy) Option {
	return func(c *config) { c.retry = p }
}

// WithTimeout bounds each unary call (Create, Append, CloseStream, Head,
// Delete and non-live Read), all its retries and waits included. Live reads
// (long-poll, SSE) are bounded by the caller's context only. A Writer
// bounds each append attempt, and a Reader each catch-up read, by it and
// retries an attempt that ran out of time. Must be > 0.
// Default: no timeout beyond the caller's context.
func WithTimeout(d time.Duration) Option {
	return func(c *config) {
		if d <= 0 {
			c.fail("WithTimeout: must be > 0, got %v", d)
			return
		}
		c.timeout = d
	}
}

// WithUserAgent sets the User-Agent header. Must not be empty.
func WithUserAgent(ua string) Option {
	return func(c *config) {
		if strings.TrimSpace(ua) == "" || strings.ContainsAny(ua, "\r\n") {
			c.fail("WithUserAgent: invalid user agent %q", ua)
			return
		}
		c.userAgent = ua
	}
}

// WithMaxResponseSize bounds how many bytes of one response body (a read
// chunk, or one SSE event) the Client holds in memory; a larger body fails
// with ErrResponseTooLarge. Must be > 0. Default: 64 MiB.
func WithMaxResponseSize(n int64) Option {
	return func(c *config) {
		if n <= 0 {
			c.fail("WithMaxResponseSize: must be > 0, got %d", n)
			return
		}
		c.maxResponse = n
	}
}

// WithHooks adds hooks: values implementing any of the Hook interfaces
// (HookRequest, HookRetry, HookRead, HookBatch, HookCommit, HookUpToDate),
// called by the Client and by every Reader and Writer opened on it. A value
// implementing none of them is an error. Default: none.
func WithHooks(hooks ...any) Option {
	return func(c *config) {
		for _, h := range hooks {
			if err := c.hooks.add(h); err != nil {
				c.errs = append(c.errs, err)
			}
		}
	}
}
