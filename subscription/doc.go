// Package subscription is the client side of Durable Streams
// subscriptions: server-side consumers over many streams (a glob pattern
// and/or streams named explicitly) that keep one acked offset per stream,
// wake workers when a stream has data past it, and hand out one lease at a
// time, fenced by generation.
//
// Open returns a handle on one subscription of a server (through a
// *durable.Client): Create, Get, Delete, AddStreams and RemoveStream manage
// it; Claim, Ack, Heartbeat and Release are the low-level lease calls of a
// pull-wake subscription.
//
// Every error of a request is an *Error wrapping one sentinel per error
// code of the protocol (ErrFenced, ErrAlreadyClaimed, ErrNoPendingWork,
// ErrInvalidOffset, ErrTokenInvalid, ErrTokenExpired, ErrNotFound,
// ErrConfigConflict, ErrWebhookURLRejected, ErrInvalidRequest).
//
// A wake's Token is its credential: it is sent only as an
// "Authorization: Bearer" header and never printed or logged (it formats
// as "[redacted]").
package subscription
