// Package subscription is the client side of Durable Streams
// subscriptions: server-side consumers over many streams (a glob pattern
// and/or streams named explicitly) that keep one acked offset per stream,
// wake workers when a stream has data past it, and hand out one lease at a
// time, fenced by generation.
//
// # Working a subscription
//
// A Worker (NewWorker, NewBatchWorker) runs in every process that shares a
// pull-wake subscription. It follows the subscription's wake stream (and
// polls, for a server that drops wake events), claims the lease when there
// is work, reads each stream with pending messages from its acked offset
// with a durable.Reader, and hands the messages to the handler in order,
// one at a time per stream (WithConcurrency streams at once). Progress is
// acked as the handler returns (WithAckInterval); acks renew the lease and
// heartbeats keep it while a handler takes long. When every pending stream
// is caught up the Worker acks with done and claims again if there is more.
//
// Delivery is at-least-once and in order per stream. Messages handled but
// not acked when a worker dies, stalls past its lease or fails are
// delivered again from the acked offset; an acked message never is. Only
// the end of a read is an offset the server accepts in an ack, so a
// message in the middle of a read is acked with the rest of the read. A
// handler error acks the progress before it, releases the lease and waits a
// backoff (WithRetry) before claiming again. When the server refuses a wake
// (ErrFenced: its lease ran out and another worker has it), the Worker
// stops touching the wake's streams at once: the handler's context ends,
// nothing more is read, acked or released. A lease that runs out on this
// side before a renewal succeeded stops the handlers too.
//
// # Spreading load
//
// One subscription has one lease, so one active worker however many
// processes run. Sharding spreads streams named <prefix>/<shard>/<key> over
// N subscriptions; a Worker WithShards(N) works all of them, holding one
// lease at a time by default (WithMaxLeases), so N workers work at once.
//
// # Webhooks
//
// A Receiver is the http.Handler of a webhook subscription. It verifies
// each delivery's Webhook-Signature (Ed25519 over the timestamp and the raw
// body, with the server's keys from its JWKS, a bounded timestamp window
// and replay protection; see Verifier) before anything else, then works the
// wake as a Worker does and acks through the subscription's callback
// endpoint: before answering by default, in the background WithAsync.
//
// # Management and low level
//
// Open returns a handle on one subscription of a server: Create, Get,
// Delete, AddStreams and RemoveStream manage it; Claim, Ack, Heartbeat and
// Release are the lease calls of a pull-wake subscription.
//
// Every request goes through the *durable.Client: its headers and
// HeaderFunc, its retry policy (transient failures of every request but a
// claim are retried), its logger (silent by default), its redaction of
// URLs and its hooks (durable.WithHooks): every request reaches
// HookRequest and HookRetry with an Op of "subscription claim",
// "subscription ack", ...; the Readers of a Worker report to HookRead and
// HookUpToDate; and every ack is a commit, reported to HookCommit with the
// subscription's id as Key (a refused ack with its error, ErrFenced for a
// fenced wake). Every error of a request is an *Error wrapping one sentinel per
// error code of the protocol (ErrFenced, ErrAlreadyClaimed,
// ErrNoPendingWork, ErrInvalidOffset, ErrTokenInvalid, ErrTokenExpired,
// ErrNotFound, ErrConfigConflict, ErrWebhookURLRejected, ErrInvalidRequest)
// or the Client's *durable.Error.
//
// A wake's Token is its credential: it is sent only as an
// "Authorization: Bearer" header and never printed or logged (it formats
// as "[redacted]").
package subscription
