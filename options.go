package durable

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/durablego/durable/internal/retry"
)

// Option configures a Client, a Reader or a Writer: pass it to NewClient,
// NewReader or NewWriter. Each With… function says which of them it
// applies to and what its default is. Options are checked once, by the
// constructor, which fails with an error wrapping ErrInvalidArgument
// (instead of falling back to a default) for a value that makes no sense,
// an option given to a constructor it does not apply to, an option given
// twice (only WithHeader and WithHooks may be repeated), and options that
// contradict each other.
type Option struct {
	name   string // the With… function, for errors
	repeat bool   // may be given more than once
	client func(*config)
	reader func(*readerConfig)
	writer func(*writerConfig)
}

// applyOptions applies to cfg the options meant for the constructor ctor
// (pick selects their function) and returns what was wrong with them, and
// the names of the options given.
func applyOptions[C any](ctor string, opts []Option, pick func(Option) func(*C), cfg *C) (given map[string]bool, errs []error) {
	given = map[string]bool{}
	for _, o := range opts {
		f := pick(o)
		switch {
		case o.name == "":
			errs = append(errs, errors.New("a zero Option (make options with the With… functions)"))
		case f == nil:
			errs = append(errs, fmt.Errorf("%s does not apply to %s", o.name, ctor))
		case given[o.name] && !o.repeat:
			errs = append(errs, fmt.Errorf("%s given twice", o.name))
		default:
			given[o.name] = true
			f(cfg)
		}
	}
	return given, errs
}

// invalid wraps the errors of a constructor's options in ErrInvalidArgument
// (nil without errors).
func invalid(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidArgument, errors.Join(errs...))
}

// RetryPolicy is a backoff schedule for retrying transient failures
// (network errors, 408, 429 and 5xx answers; see IsRetryable). Give it with
// WithRetry.
//
// The wait before retry n (n = 1, 2, ...) is Initial·Multiplier^(n-1), capped
// at Max, then randomised by ±Jitter (a fraction in [0, 1]). A server's
// Retry-After is a floor under that wait. The budget counts from the first
// failure of an outage and starts afresh after any successful response:
// retries stop after MaxAttempts attempts in a row (0 = no limit on
// attempts) or once MaxElapsed has passed since the first failure (0 = no
// time limit); with both zero only the caller's context (or Close) ends the
// retries. RetryPolicy{MaxAttempts: 1} never retries (the other fields may
// then be zero).
type RetryPolicy struct {
	Initial     time.Duration // first wait; must be > 0
	Max         time.Duration // cap on a single wait; must be ≥ Initial
	Multiplier  float64       // growth per retry; must be ≥ 1
	Jitter      float64       // randomisation factor in [0, 1]
	MaxAttempts int           // attempts in a row, the first included; 0 = unlimited, 1 = never retry
	MaxElapsed  time.Duration // give up this long after the first failure; 0 = no limit
}

// defaultRetryPolicy is the policy of a Client's unary calls unless
// WithRetry is given: 100 ms doubling to at most 5 s, ±20 % jitter, at most
// 5 attempts within 30 s.
func defaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Initial:     100 * time.Millisecond,
		Max:         5 * time.Second,
		Multiplier:  2,
		Jitter:      0.2,
		MaxAttempts: 5,
		MaxElapsed:  30 * time.Second,
	}
}

// validate reports whether the policy is usable.
func (p RetryPolicy) validate() error {
	if err := p.internal().Validate(); err != nil {
		return fmt.Errorf("WithRetry: %w", err)
	}
	return nil
}

// internal converts the policy for the retry engine. A policy that never
// retries needs no schedule: its zero fields are made valid.
func (p RetryPolicy) internal() retry.Policy {
	if p.MaxAttempts == 1 && p.Initial == 0 && p.Max == 0 && p.Multiplier == 0 {
		p.Initial, p.Max, p.Multiplier = time.Millisecond, time.Millisecond, 1
	}
	return retry.Policy{Initial: p.Initial, Max: p.Max, Multiplier: p.Multiplier, Jitter: p.Jitter, MaxAttempts: p.MaxAttempts, MaxElapsed: p.MaxElapsed}
}

// Defaults for limits that have no option of their own yet.
const (
	defaultMaxResponseBytes = 64 << 20 // bytes of one response body held in memory
	defaultUserAgent        = "durable-go/0.1"
)

type config struct {
	httpClient  *http.Client
	headers     http.Header
	headerFunc  func(context.Context) (http.Header, error)
	queryFunc   func(context.Context) (url.Values, error) // params.go
	logger      *slog.Logger
	retry       RetryPolicy
	timeout     time.Duration // 0 = none
	maxResponse int64
	h2c         bool // WithUnencryptedHTTP2
	hooks       hookSet
	errs        []error
}

func defaultConfig() config {
	return config{
		headers:     http.Header{},
		logger:      slog.New(slog.DiscardHandler),
		retry:       defaultRetryPolicy(),
		maxResponse: defaultMaxResponseBytes,
	}
}

func (c *config) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *config) validate() error {
	if err := c.retry.validate(); err != nil {
		c.errs = append(c.errs, err)
	}
	return invalid(c.errs)
}

// clientOption makes an Option of NewClient only.
func clientOption(name string, f func(*config)) Option { return Option{name: name, client: f} }

// WithHTTPClient sets the HTTP client used for every request. The Client
// works on a shallow copy whose CheckRedirect refuses redirects to another
// scheme or host (so credentials never travel there) before consulting
// hc.CheckRedirect. Default: a client with a clone of
// http.DefaultTransport that keeps 64 idle connections per host (instead of
// 2, so pipelined appends and parallel long-polls reuse connections), and no
// overall timeout.
func WithHTTPClient(hc *http.Client) Option {
	return clientOption("WithHTTPClient", func(c *config) {
		if hc == nil {
			c.fail("WithHTTPClient: nil *http.Client")
			return
		}
		c.httpClient = hc
	})
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
	return clientOption("WithUnencryptedHTTP2", func(c *config) { c.h2c = true })
}

// WithHeader adds a static header sent with every request of the Client
// and of its Readers and Writers; it may be given several times. Protocol
// headers the Client sets itself (Content-Type, Stream-*, Producer-*) take
// precedence over it. A User-Agent given this way replaces the default
// ("durable-go/0.1"). NewClient only.
func WithHeader(key, value string) Option {
	return Option{name: "WithHeader", repeat: true, client: func(c *config) {
		if strings.TrimSpace(key) == "" || strings.ContainsAny(key, " \t\r\n:") {
			c.fail("WithHeader: invalid header name %q", key)
			return
		}
		if strings.ContainsAny(value, "\r\n") {
			c.fail("WithHeader: value of %q contains a line break", key)
			return
		}
		c.headers.Add(key, value)
	}}
}

// WithHeaderFunc sets a function called before every HTTP attempt (retries
// included), with the context of the call, whose headers are added to the
// request, overriding static headers of the same name: for example a
// freshly refreshed bearer token. An error it returns fails the call.
// NewClient only.
func WithHeaderFunc(fn func(ctx context.Context) (http.Header, error)) Option {
	return clientOption("WithHeaderFunc", func(c *config) {
		if fn == nil {
			c.fail("WithHeaderFunc: nil function")
			return
		}
		c.headerFunc = fn
	})
}

// WithLogger sets the logger of the Client and of its Readers and Writers:
// an outage is logged at Warn when it starts and at Info when it ends, each
// further retry and protocol oddities at Debug. NewClient only. Default:
// nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return clientOption("WithLogger", func(c *config) {
		if l == nil {
			c.fail("WithLogger: nil *slog.Logger")
			return
		}
		c.logger = l
	})
}

// WithRetry sets the schedule of retries of transient failures. Given to
// NewClient it applies to the Client's own calls (Create, Append,
// CloseStream, Head, Delete, Read, OpenSSE), whose default is 100 ms doubling to at most 5 s,
// ±20 % jitter, at most 5 attempts within 30 s. Given to NewReader it
// applies to the Reader's reads, whose default is 100 ms doubling to at
// most 10 s, ±20 % jitter and no limit (a Reader is meant to tail forever:
// only the caller's context or Close end its retries); with a bounded
// policy, Next returns the last failure once it is exhausted, and a later
// Next starts afresh. Given to NewWriter it applies to each batch, whose
// default is 100 ms doubling to at most 5 s, ±20 % jitter, any number of
// attempts within 2 minutes; when it gives up, the batch is lost and the
// Writer fails. Readers and Writers do not take the Client's policy.
func WithRetry(p RetryPolicy) Option {
	return Option{name: "WithRetry",
		client: func(c *config) { c.retry = p },
		reader: func(c *readerConfig) { c.retry = p },
		writer: func(c *writerConfig) { c.retry = p },
	}
}

// WithRequestTimeout bounds each request of the Client and of its Readers
// and Writers that is not a live wait: every attempt of a unary call, a
// Reader's catch-up reads, a Writer's appends. A request cut off by it is
// retried like any transient failure (it may have been applied). Live
// reads (long-poll, SSE) are bounded by the caller's context only, and the
// whole of a call by its context and the retry policy's MaxElapsed.
// NewClient only. Must be > 0. Default: none.
func WithRequestTimeout(d time.Duration) Option {
	return clientOption("WithRequestTimeout", func(c *config) {
		if d <= 0 {
			c.fail("WithRequestTimeout: must be > 0, got %v", d)
			return
		}
		c.timeout = d
	})
}

// WithMaxResponseBytes bounds the bytes held in memory for one read: a
// response body, the data between two SSE control events, one SSE line. A
// larger read fails with ErrResponseTooLarge, which is not retried. Given
// to NewClient it applies to the Client's calls and is the default of its
// Readers; given to NewReader it applies to that Reader. A Reader's heap is
// bounded by a small multiple of it (during catch-up it holds the read
// being handed out and reads the next one ahead, with their decoded
// values), whatever the stream's length. Must be > 0. Default: 64 MiB.
func WithMaxResponseBytes(n int64) Option {
	check := func(fail func(string, ...any)) bool {
		if n <= 0 {
			fail("WithMaxResponseBytes: must be > 0, got %d", n)
		}
		return n > 0
	}
	return Option{name: "WithMaxResponseBytes",
		client: func(c *config) {
			if check(c.fail) {
				c.maxResponse = n
			}
		},
		reader: func(c *readerConfig) {
			if check(c.fail) {
				c.maxChunk = n
			}
		},
	}
}

// WithHooks adds hooks: values implementing any of the Hook interfaces
// (HookRequest, HookRetry, HookRead, HookBatch, HookCommit, HookUpToDate,
// HookStart, HookFetch), called by the Client and by every Reader and
// Writer opened on it. A value implementing none of them is an error. It
// may be given several times. NewClient only. Default: none.
func WithHooks(hooks ...any) Option {
	return Option{name: "WithHooks", repeat: true, client: func(c *config) {
		for _, h := range hooks {
			if err := c.hooks.add(h); err != nil {
				c.errs = append(c.errs, err)
			}
		}
	}}
}
