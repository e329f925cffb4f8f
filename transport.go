package durable

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/durablego/durable/internal/retry"
)

// call describes one logical request.
type call struct {
	op         string      // for errors and logs
	method     string      // HTTP method
	url        string      // full URL, query included
	header     http.Header // protocol headers of this call
	body       []byte      // request body (nil = none)
	retry      bool        // follow the client's RetryPolicy
	producer   bool        // POST carries Producer-* headers: the server deduplicates, so retries are safe
	idempotent bool        // POST that is idempotent by the protocol (close-only)
	stream     bool        // leave a 2xx body open for the caller; otherwise it is read into memory
}

// safe reports whether sending the call again cannot apply it twice.
func (cl *call) safe() bool {
	return cl.method != http.MethodPost || cl.producer || cl.idempotent
}

// response is what send returns for a 2xx or 304 answer.
type response struct {
	status int
	header http.Header
	body   []byte         // read body (non-stream calls; an excerpt for error statuses)
	raw    *http.Response // stream calls only, 2xx: open body the caller must close
	// req is the attempt's request: the credential values it carried
	// (requestSecrets) are scrubbed from any excerpt of the body that goes
	// into an error. They are listed only then, not for every answer.
	req *http.Request
}

// send performs a call: one attempt, or with cl.retry the Client's retry
// loop (retry.Do with the Client's RetryPolicy), each attempt of a call
// that is not a stream bounded by WithRequestTimeout. An answer with an error
// status (3xx other than 304, 4xx, 5xx) is returned as the *Error of
// statusError; every other failure is an *Error too.
func (c *Client) send(ctx context.Context, cl *call) (*response, error) {
	if !cl.retry {
		return c.attempt(ctx, cl)
	}
	var resp *response
	err := retry.Do(ctx, retry.NewSchedule(c.cfg.retry.internal()), func(ctx context.Context) error {
		if cl.stream {
			var err error
			resp, err = c.attempt(ctx, cl)
			return err
		}
		actx, cancel := c.withAttemptTimeout(ctx)
		defer cancel()
		var err error
		resp, err = c.attempt(actx, cl)
		return c.timedOut(ctx, actx, cl.op, cl.url, err)
	}, classifier(cl.safe()), c.retryLogger(ctx, cl.op, cl.url))
	if err != nil {
		return nil, c.interrupted(ctx, err)
	}
	return resp, nil
}

// interrupted adds ctx's error to the last failure of a retry loop that
// ctx ended.
func (c *Client) interrupted(ctx context.Context, err error) error {
	ctxErr := ctx.Err()
	if ctxErr == nil || errors.Is(err, ctxErr) {
		return err
	}
	var e *Error
	if errors.As(err, &e) {
		cp := *e
		cp.Err = fmt.Errorf("%w while retrying after: %w", ctxErr, e.Err)
		return &cp
	}
	return fmt.Errorf("%w while retrying after: %w", ctxErr, err)
}

// attempt sends one HTTP request of cl, with fresh headers (the
// HeaderFunc is called for every attempt) and query.
func (c *Client) attempt(ctx context.Context, cl *call) (*response, error) {
	h, err := c.requestHeader(ctx, cl.header)
	if err != nil {
		return nil, c.opError(cl, 0, err)
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, cl.url, body)
	if err != nil {
		return nil, c.opError(cl, 0, fmt.Errorf("%w: %w", ErrInvalidArgument, err))
	}
	req.Header = h
	addOpHeader(ctx, h)
	if err := c.applyQuery(ctx, req, cl.url); err != nil {
		return nil, c.opError(cl, 0, err)
	}
	start := time.Now()
	res, err := c.hc.Do(req)
	if err != nil {
		e := c.opError(cl, 0, transportCause(err))
		c.requested(ctx, cl, start, 0, e)
		return nil, e
	}
	out := &response{status: res.StatusCode, header: res.Header, req: req}
	if res.StatusCode >= 300 && res.StatusCode != http.StatusNotModified {
		out.body = readExcerpt(res.Body)
		drainClose(res.Body)
		e := c.statusError(cl, out)
		c.requested(ctx, cl, start, res.StatusCode, e)
		return nil, e
	}
	c.requested(ctx, cl, start, res.StatusCode, nil)
	if cl.stream {
		out.raw = res
		return out, nil
	}
	defer res.Body.Close()
	if out.body, err = readBody(nil, res.Body, res.ContentLength, c.cfg.maxResponse); err != nil {
		return nil, &Error{Op: cl.op, URL: redactURL(cl.url), Status: res.StatusCode, Err: err}
	}
	return out, nil
}

// requested reports one request to the hooks, and logs it at Debug.
func (c *Client) requested(ctx context.Context, cl *call, start time.Time, status int, err error) {
	debug := c.log.Enabled(ctx, slog.LevelDebug)
	if len(c.cfg.hooks.request) == 0 && !debug {
		return
	}
	var e error // no typed nil in the event
	if err != nil {
		e = err
	}
	ev := RequestEvent{Context: ctx, Op: cl.op, Stream: streamOf(cl.url), Method: cl.method, Status: status,
		Attempt: retry.Attempt(ctx), Latency: time.Since(start), Err: e, Bytes: len(cl.body)}
	if debug {
		args := []any{"op", ev.Op, "method", ev.Method, "url", redactURL(cl.url), "status", ev.Status,
			"attempt", ev.Attempt, "latency", ev.Latency.Round(time.Microsecond)}
		if e != nil {
			args = append(args, "error", e)
		}
		c.log.DebugContext(ctx, "durable: request", args...)
	}
	c.cfg.hooks.onRequest(ev)
}

// transportCause is the error of a request that got no answer, marked as
// such for the classifier, without net/http's *url.Error wrapper: the
// operation and the (redacted) URL are said by the *Error around it.
func transportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return retry.NoAnswer(err)
}

// drainClose reads what is left of a small error body before closing it,
// so that its connection goes back to the pool; a large rest is not worth
// it.
func drainClose(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 4<<10)
	body.Close()
}

// opError wraps a transport-level failure (no usable response).
func (c *Client) opError(cl *call, status int, err error) *Error {
	return &Error{Op: cl.op, URL: redactURL(cl.url), Status: status, Err: err}
}

// classifier returns the retry classification of the failures of a call
// (safe: sending it again cannot apply it twice): retry.Classify, fed
// with the status and Retry-After of an *Error.
func classifier(safe bool) func(error) (bool, time.Duration) {
	return func(err error) (bool, time.Duration) { return retry.Classify(failureOf(err, safe)) }
}

// failureOf describes err for the classifier.
func failureOf(err error, safe bool) retry.Failure {
	f := retry.Failure{Err: err, Idempotent: safe}
	var e *Error
	if errors.As(err, &e) {
		f.Status, f.RetryAfter, f.Err = e.Status, e.RetryAfter, e.Err
	}
	return f
}

// retryLogger is the one place retries are logged and reported to the
// hooks, for unary calls, the Reader and the Writer alike: the first
// failure of an episode at Warn (with the redacted URL, the error and the
// wait), later ones at Debug, and the recovery at Info.
func (c *Client) retryLogger(ctx context.Context, op, rawURL string) func(retry.Event) {
	return func(ev retry.Event) {
		u := redactURL(rawURL)
		level := slog.LevelDebug
		switch {
		case ev.Recovered:
			c.log.InfoContext(ctx, "durable: recovered", "op", op, "url", u, "failures", ev.Attempt, "after", ev.Elapsed.Round(time.Millisecond))
			c.cfg.hooks.onRetry(RetryEvent{Context: ctx, Op: op, Stream: streamOf(rawURL), Attempt: ev.Attempt, Recovered: true, Elapsed: ev.Elapsed})
			return
		case ev.Attempt == 1:
			level = slog.LevelWarn
		}
		c.log.Log(ctx, level, "durable: retrying", "op", op, "url", u, "attempt", ev.Attempt, "error", ev.Err, "wait", ev.Wait)
		c.cfg.hooks.onRetry(RetryEvent{Context: ctx, Op: op, Stream: streamOf(rawURL), Attempt: ev.Attempt, Wait: ev.Wait, Err: ev.Err})
	}
}
