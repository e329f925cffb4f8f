package durable

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/hashicorp/go-retryablehttp"
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
	stream     bool        // leave the body open for the caller (SSE); otherwise it is read into memory
}

// response is what send returns on any HTTP status.
type response struct {
	status int
	header http.Header
	body   []byte         // read body (non-stream calls; an excerpt for non-2xx)
	raw    *http.Response // stream calls only, 2xx: open body the caller must close
	// secrets are the credential values the last attempt carried, scrubbed
	// from any excerpt of the body that goes into an error.
	secrets []string
}

// attemptState is the per-call state the retryablehttp hooks share.
type attemptState struct {
	c       *Client
	call    *call
	ctx     context.Context
	bo      backoff.BackOff
	start   time.Time
	wait    time.Duration
	attempt int
	stopped bool // CheckRetry said "no retry" for the current attempt's response
	body    []byte
}

// send performs a call through go-retryablehttp with a safe retry check:
// GET/HEAD/PUT/DELETE are retried on network errors, truncated bodies, 408,
// 429 and 5xx (not 501/505); POST only when it carries producer headers, is
// a close without data (idempotent by the protocol), or the failure was a
// dial error (nothing left the machine). Retry-After is a
// floor under the backoff wait; ctx bounds every wait.
func (c *Client) send(ctx context.Context, cl *call) (*response, error) {
	h, err := c.requestHeader(ctx, cl.header)
	if err != nil {
		return nil, c.opError(cl, 0, err)
	}
	var body any
	if cl.body != nil {
		body = cl.body
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, cl.method, cl.url, body)
	if err != nil {
		return nil, c.opError(cl, 0, fmt.Errorf("%w: %w", ErrInvalidArgument, err))
	}
	req.Header = h
	if err := c.applyQuery(ctx, req.Request, cl.url); err != nil {
		return nil, c.opError(cl, 0, err)
	}
	st := &attemptState{c: c, call: cl, ctx: ctx, start: time.Now()}
	retryMax := 0
	if cl.retry {
		st.bo = c.newBackOff()
		retryMax = math.MaxInt32
	}
	rc := &retryablehttp.Client{
		HTTPClient:   c.hc,
		Logger:       nil,
		RetryMax:     retryMax,
		CheckRetry:   st.checkRetry,
		Backoff:      func(_, _ time.Duration, _ int, _ *http.Response) time.Duration { return st.wait },
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
		RequestLogHook: func(_ retryablehttp.Logger, _ *http.Request, i int) {
			st.attempt = i + 1
			st.stopped = false
		},
		PrepareRetry: st.prepareRetry,
	}
	if !cl.stream {
		req.SetResponseHandler(st.readBody)
	}
	resp, err := rc.Do(req)
	if err != nil {
		scrubURLError(err)
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			err = fmt.Errorf("%w (%w)", ctxErr, err)
		}
		return nil, c.opError(cl, 0, err)
	}
	out := &response{status: resp.StatusCode, header: resp.Header, secrets: requestSecrets(resp.Request)}
	if cl.stream {
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			out.raw = resp
			return out, nil
		}
		// Error statuses: keep an excerpt for the message.
		out.body, _ = readLimited(resp, maxMessage)
		resp.Body.Close()
		return out, nil
	}
	out.body = st.body
	return out, nil
}

// readBody is the retryablehttp response handler of non-stream calls: it
// reads a 2xx body (bounded by WithMaxResponseSize) or an excerpt of an
// error body, and closes it. A truncated 2xx body is an error the retry
// check sees.
func (st *attemptState) readBody(resp *http.Response) error {
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		st.body, _ = readLimited(resp, maxMessage)
		return nil
	}
	b, err := readLimited(resp, st.c.cfg.maxResponse)
	if err != nil {
		return err
	}
	st.body = b
	return nil
}

// readLimited reads at most limit bytes of resp.Body; a longer body is
// ErrResponseTooLarge, except for error excerpts (limit == maxMessage) where
// the rest is simply not read.
func readLimited(resp *http.Response, limit int64) ([]byte, error) {
	excerptOnly := limit == maxMessage
	if !excerptOnly && resp.ContentLength > limit {
		return nil, fmt.Errorf("%w: Content-Length %d > %d", ErrResponseTooLarge, resp.ContentLength, limit)
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength <= limit {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := io.Copy(&buf, io.LimitReader(resp.Body, limit+1))
	if excerptOnly {
		b := buf.Bytes()
		if len(b) > maxMessage {
			b = b[:maxMessage]
		}
		return b, nil
	}
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// prepareRetry rebuilds the headers of a retry, calling the HeaderFunc
// again so that a refreshed token is used.
func (st *attemptState) prepareRetry(req *http.Request) error {
	h, err := st.c.requestHeader(st.ctx, st.call.header)
	if err != nil {
		return err
	}
	req.Header = h
	return st.c.applyQuery(st.ctx, req, st.call.url)
}

// checkRetry is the retryablehttp CheckRetry of one call.
func (st *attemptState) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return false, ctxErr
	}
	scrubURLError(err)
	if !st.call.retry || (st.stopped && err == nil) {
		return false, nil
	}
	retry, floor := st.retryable(resp, err)
	if !retry {
		st.stopped = true
		return false, nil
	}
	d := st.bo.NextBackOff()
	if d == backoff.Stop {
		st.stopped = true
		return false, nil
	}
	if floor > d {
		d = floor
	}
	if max := st.c.cfg.retry.MaxElapsed; max > 0 && time.Since(st.start)+d > max {
		st.stopped = true
		return false, nil
	}
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
		// The wait would outlive the caller: give up now with the real error.
		st.stopped = true
		return false, nil
	}
	st.wait = d
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	st.c.log.DebugContext(ctx, "durable: retrying", "op", st.call.op, "url", redactURL(st.call.url),
		"attempt", st.attempt, "status", status, "error", err, "wait", d)
	return true, nil
}

// retryable decides whether an attempt's outcome may be retried, and the
// server's Retry-After floor.
func (st *attemptState) retryable(resp *http.Response, err error) (bool, time.Duration) {
	safe := st.call.method != http.MethodPost || st.call.producer || st.call.idempotent
	if err != nil {
		switch {
		case errors.Is(err, ErrResponseTooLarge), errors.Is(err, ErrCrossHostRedirect), errors.Is(err, ErrProtocol),
			errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), isTLSConfigError(err):
			return false, 0
		case isDialError(err):
			return true, 0
		default:
			return safe, 0
		}
	}
	if resp == nil || !retryableStatus(resp.StatusCode) || !safe {
		return false, 0
	}
	floor, _ := retryAfter(resp.Header, time.Now())
	return true, floor
}

// scrubURLError redacts the URL net/http puts in its *url.Error (query
// secrets included) so that neither logs nor error strings carry it.
func scrubURLError(err error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = redactURL(ue.URL)
	}
}

// opError wraps a transport-level failure (no usable response).
func (c *Client) opError(cl *call, status int, err error) *Error {
	return &Error{Op: cl.op, URL: redactURL(cl.url), Status: status, Err: err}
}

// newBackOff returns a fresh backoff built from the client's RetryPolicy.
func (c *Client) newBackOff() backoff.BackOff { return newBackOffFrom(c.cfg.retry) }

// newBackOffFrom builds a backoff/v4 schedule from p (which must be valid):
// exponential with jitter, stopping after p.MaxAttempts attempts (i.e.
// MaxAttempts-1 retries) or p.MaxElapsed, whichever is set and first.
func newBackOffFrom(p RetryPolicy) backoff.BackOff {
	eb := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.Initial),
		backoff.WithMaxInterval(p.Max),
		backoff.WithMultiplier(p.Multiplier),
		backoff.WithRandomizationFactor(p.Jitter),
		backoff.WithMaxElapsedTime(p.MaxElapsed),
	)
	var b backoff.BackOff = eb
	if p.MaxAttempts > 0 {
		b = backoff.WithMaxRetries(b, uint64(p.MaxAttempts-1))
	}
	b.Reset()
	return b
}
