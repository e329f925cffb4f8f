// Package link lets the other packages of this module send requests
// through a *durable.Client, with everything the Client adds to a request
// (static headers, the HeaderFunc, the QueryFunc, the User-Agent, the
// retry policy and classifier, redaction of URLs and secrets in errors, the
// logger and the hooks), without the root package exporting any of it. The
// root package registers itself here when it is initialised; a package
// importing both gets the link with Of(client).
package link

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/durablego/durable/internal/retry"
)

// Request is one request to send through a Client.
type Request struct {
	// Op names the operation in errors, logs and hooks ("subscribe",
	// "claim", ...).
	Op string
	// Method is the HTTP method.
	Method string
	// Target is a path relative to the Client's base URL (the streams
	// root, as stream names are: "__ds/subscriptions/x") or a full URL on
	// the Client's origin.
	Target string
	// Header holds the request's own headers; they take precedence over
	// the Client's static and HeaderFunc headers.
	Header http.Header
	// Body is the request body (nil: none).
	Body []byte
	// Retry makes the Client retry transient failures with its retry
	// policy; without it exactly one attempt is made.
	Retry bool
	// Idempotent marks a POST that is safe to send again (GET, HEAD, PUT
	// and DELETE always are): only then is a POST retried after it may
	// have reached the server.
	Idempotent bool
	// Open leaves the body of a 2xx answer open in Response.Open (for a
	// streaming answer); otherwise it is read into Response.Body, bounded
	// by the Client's maximum response size.
	Open bool
}

// Response is the answer to a Request with a 2xx or 304 status; any other
// status is returned as the Client's error (a *durable.Error).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
	Open   io.ReadCloser // with Request.Open: the body, which the caller must close
}

// Client is what a *durable.Client offers through the link.
type Client interface {
	// Do sends req. Every failure is a *durable.Error carrying req.Op, the
	// redacted URL and the status.
	Do(ctx context.Context, req Request) (*Response, error)
	// URL resolves a target as Request.Target is resolved.
	URL(target string) (string, error)
	// Policy is the Client's retry policy for unary calls.
	Policy() retry.Policy
	// Classify is the retry classification of an error returned by Do (or
	// of any failure), as the Client's own loops use it: idempotent as in
	// retry.Failure.
	Classify(err error, idempotent bool) (bool, time.Duration)
	// Notify returns the function that logs (and reports to the hooks)
	// the steps of a retry episode of op on url, for retry.Do.
	Notify(ctx context.Context, op, url string) func(retry.Event)
	// Logger is the Client's logger (it discards everything by default).
	Logger() *slog.Logger
	// Redact removes credentials from a URL for errors and logs.
	Redact(url string) string
	// Commit reports a position that was saved, or refused (err), to the
	// Client's commit hooks, as a Reader's saves are: target is resolved as
	// Request.Target is, key names the consumer (a subscription's acks are
	// its commits).
	Commit(target, key, offset string, latency time.Duration, err error)
}

var of func(any) (Client, bool)

// Register is called by the root package's init with the function that
// links a *durable.Client.
func Register(f func(any) (Client, bool)) { of = f }

// Of returns the link of c, a *durable.Client; false for anything else.
func Of(c any) (Client, bool) {
	if of == nil {
		return nil, false
	}
	return of(c)
}
