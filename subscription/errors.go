package subscription

import (
	"errors"
	"fmt"
	"strings"

	"github.com/durablego/durable"
)

// Sentinel errors, one for each error code the subscription API answers
// with. Every error of a request this package sends is an *Error whose Err
// is one of these (the server named the code) or the Client's
// *durable.Error (a status without a code, such as a 503, which wraps
// durable.ErrServer; a network failure; the context's end); test with
// errors.Is.
var (
	// ErrInvalidRequest is INVALID_REQUEST (400): the server refused the
	// request's body, the subscription id or a stream path.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotFound is SUBSCRIPTION_NOT_FOUND (404): no subscription has this
	// id, or it was deleted.
	ErrNotFound = errors.New("subscription not found")
	// ErrConfigConflict is SUBSCRIPTION_ALREADY_EXISTS (409): a
	// subscription with this id exists with another configuration.
	ErrConfigConflict = errors.New("subscription exists with a different configuration")
	// ErrWebhookURLRejected is WEBHOOK_URL_REJECTED (400): the server's
	// SSRF rules refused the webhook URL.
	ErrWebhookURLRejected = errors.New("webhook URL rejected")
	// ErrTokenInvalid is TOKEN_INVALID (401): the claim or callback token
	// is missing, malformed, or not this subscription's.
	ErrTokenInvalid = errors.New("token invalid")
	// ErrTokenExpired is TOKEN_EXPIRED (401).
	ErrTokenExpired = errors.New("token expired")
	// ErrFenced is FENCED (409): the wake is no longer the current one (its
	// lease ran out and another wake was issued, or it ended): the request
	// was not applied, and its holder must stop touching the streams.
	ErrFenced = errors.New("wake fenced")
	// ErrAlreadyClaimed is ALREADY_CLAIMED (409): another worker holds the
	// lease (Error.Holder names it).
	ErrAlreadyClaimed = errors.New("lease already claimed")
	// ErrNoPendingWork is NO_PENDING_WORK (409): nothing to claim.
	ErrNoPendingWork = errors.New("no pending work")
	// ErrInvalidOffset is INVALID_OFFSET (409): an ack names a stream the
	// subscription does not link, or an offset before the acked offset,
	// beyond the tail, or not on a message boundary. No ack of the request
	// was applied.
	ErrInvalidOffset = errors.New("invalid ack offset")
)

// codes maps the wire error codes to the sentinels.
var codes = map[string]error{
	"INVALID_REQUEST":             ErrInvalidRequest,
	"SUBSCRIPTION_NOT_FOUND":      ErrNotFound,
	"SUBSCRIPTION_ALREADY_EXISTS": ErrConfigConflict,
	"WEBHOOK_URL_REJECTED":        ErrWebhookURLRejected,
	"TOKEN_INVALID":               ErrTokenInvalid,
	"TOKEN_EXPIRED":               ErrTokenExpired,
	"FENCED":                      ErrFenced,
	"ALREADY_CLAIMED":             ErrAlreadyClaimed,
	"NO_PENDING_WORK":             ErrNoPendingWork,
	"INVALID_OFFSET":              ErrInvalidOffset,
}

// Error describes a failed subscription request.
type Error struct {
	// Op is the operation: "create", "get", "delete", "add streams",
	// "remove stream", "claim", "ack", "heartbeat", "release", "callback"
	// or "jwks".
	Op string
	// Subscription is the subscription's id ("" for "jwks").
	Subscription string
	// Stream is the stream the request was about, when it was about one
	// ("remove stream"), or "".
	Stream string
	// URL is the request's URL, credentials redacted ("" when nothing was
	// sent).
	URL string
	// Status is the HTTP status, 0 when none was received.
	Status int
	// Code is the server's error code (for example "FENCED"), "" when the
	// answer had none.
	Code string
	// Message is the server's message, bounded and on one line.
	Message string
	// Holder is the worker holding the lease, with ErrAlreadyClaimed.
	Holder string
	// Generation is the subscription's current generation when the server
	// said it (ErrAlreadyClaimed, and ErrFenced on some servers), else 0.
	Generation int64
	// Err is the sentinel of Code, or the Client's *durable.Error.
	Err error
}

// Error implements error, in the shape of the Client's errors:
// "subscription <op> "<id>": <what> (HTTP <status>): <server's message>".
// The claim token never appears in it.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("subscription ")
	b.WriteString(e.Op)
	if e.Subscription != "" {
		fmt.Fprintf(&b, " %q", e.Subscription)
	}
	if e.Stream != "" {
		fmt.Fprintf(&b, " stream %q", e.Stream)
	}
	var de *durable.Error
	if errors.As(e.Err, &de) {
		// The Client's error says what failed; its operation and URL are
		// said above (the URL is in the URL field).
		head := "durable: " + de.Op
		if de.URL != "" {
			head += " " + de.URL
		}
		rest := strings.TrimPrefix(strings.TrimPrefix(de.Error(), head), ": ")
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(rest, "durable: "))
		return b.String()
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Holder != "" {
		fmt.Fprintf(&b, " by %q (generation %d)", e.Holder, e.Generation)
	}
	if e.Status >= 300 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" && (e.Err == nil || !strings.EqualFold(e.Message, e.Err.Error())) {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the sentinel or cause.
func (e *Error) Unwrap() error { return e.Err }

// IsLost reports whether err means that a wake's lease is gone for good:
// fenced, a token the server no longer accepts, or the subscription
// deleted. A worker that gets one stops touching the wake's streams.
func IsLost(err error) bool {
	return errors.Is(err, ErrFenced) || errors.Is(err, ErrTokenInvalid) ||
		errors.Is(err, ErrTokenExpired) || errors.Is(err, ErrNotFound)
}
