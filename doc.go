// Package durable is a client for the Durable Streams protocol:
// append-only, offset-addressed byte and JSON streams over plain HTTP.
//
// Services use three types:
//
//   - Reader[T] (NewReader) tails a stream from a persisted position:
//     catch-up reads, then long-poll or SSE, with backoff on failures and
//     no message delivered twice. With an offsetstore.File it resumes after
//     a restart exactly where it was; see Reader for what each commit
//     policy guarantees.
//   - Writer[T] (NewWriter) appends values from workers: it batches,
//     pipelines and sends every batch as an idempotent producer, so a retry
//     never duplicates and a lost batch is always reported (Flush, Close).
//   - Client (NewClient) holds the base URL, HTTP client, headers, logger
//     and retry policy, and offers each stream operation as one call.
//
// Go methods cannot have type parameters, so typed readers and writers are
// opened with package functions, their T given by the codec:
// NewReader(client, "orders", JSONCodec[Event]{}, ...).
// The testserver package is a complete in-process Durable Streams server
// for tests and local development.
//
// A Client (NewClient) is created once per service and is safe for
// concurrent use. It offers every stream operation as one call: Create
// (PUT, optionally closed, with initial data, or as a fork), Append and
// AppendJSON (POST, optionally with Stream-Seq or idempotent producer
// headers), CloseStream (POST with Stream-Closed), Head, Delete, Read (one
// catch-up, long-poll or SSE request) and OpenSSE (a streaming SSE
// connection).
//
// # Errors
//
// Every failure is an *Error carrying the operation, the stream URL (with
// credentials and secret-looking query values redacted), the HTTP status
// and a bounded excerpt of the server's message. Its Err field is a
// sentinel such as ErrNotFound, ErrStreamClosed or ErrStaleEpoch, or the
// underlying network or context error; use errors.Is. IsRetryable tells
// transient failures from permanent ones.
//
// # Retries
//
// Unary calls, the Reader and the Writer share one retry engine: one
// classifier of transient failures and one loop of jittered exponential
// backoff (RetryPolicy, on github.com/cenkalti/backoff/v4), honouring
// Retry-After as a floor and the caller's context for every wait. A retry
// budget (MaxAttempts, MaxElapsed) counts from the first failure of an
// outage and starts afresh after any successful response. Retries are safe
// by construction: GET, HEAD, PUT and DELETE are retried on network errors,
// 408, 429 and 5xx; a POST is retried only when it carries idempotent
// producer headers, is a close without data, or failed while dialing (so
// it never left the machine). A plain append whose fate is unknown is
// returned as an error rather than risk a duplicate.
//
// # Hooks
//
// WithHooks gives a Client hooks: values implementing any of the small
// single-method interfaces HookRequest (every HTTP request: operation,
// stream, method, status, attempt, latency, error), HookRetry (every retry
// with its cause and wait), HookRead (messages and bytes a Reader
// delivered), HookBatch (every settled batch of a Writer: producer,
// messages, bytes, latency, and the error of a lost or fenced batch),
// HookCommit (every save to a Reader's store, with its latency) and
// HookUpToDate (a Reader reaching the tail or falling behind); for tracing,
// HookStart (a Writer's batch or a Reader's read starting: the hook may give
// it a context, which the events that follow carry, and headers for its
// requests) and HookFetch (a Reader's read ended: offsets, bytes, up to
// date). Every Reader and Writer opened on the Client reports to its hooks.
// Metrics and tracing plugins are built on these alone.
//
// Headers from WithHeaderFunc are computed again for every attempt, so a
// token refreshed between attempts is used on the retry. Redirects to
// another scheme or host are refused, so credentials never leave the
// server they were meant for. The Client logs nothing unless WithLogger is
// given.
package durable
