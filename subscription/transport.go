package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/link"
)

// request is one call of the subscription API.
type request struct {
	op     string // for errors: "create", "ack", ...
	sub    string // subscription id, for errors
	stream string // stream the call is about, for errors
	method string
	path   string // relative to the Client's base URL, e.g. "__ds/subscriptions/x/ack"
	body   any    // marshalled to JSON; nil = no body
	token  Token  // sent as Authorization: Bearer when set
	// idempotent marks a POST that is safe to send again (an ack, a
	// release, a callback, adding streams): it is retried like GET, PUT
	// and DELETE. A claim is not: one retried after it reached the server
	// would find its own lease held.
	idempotent bool
}

// reply is a successful (2xx) answer.
type reply struct {
	status int
	body   []byte
}

// clientLink returns the link of c, through which every request goes:
// the Client's headers, HeaderFunc, retry policy and classifier, logger
// and redaction apply.
func clientLink(c *durable.Client) (link.Client, error) {
	l, ok := link.Of(c)
	if !ok {
		return nil, fmt.Errorf("%w: nil Client", durable.ErrInvalidArgument)
	}
	return l, nil
}

// send sends r through c, retrying transient failures with the Client's
// retry policy (bounded by ctx), and returns a 2xx answer or an *Error.
func send(ctx context.Context, c *durable.Client, r *request) (*reply, error) {
	l, err := clientLink(c)
	if err != nil {
		return nil, r.fail(err)
	}
	req := link.Request{Op: "subscription " + r.op, Method: r.method, Target: r.path, Retry: true, Idempotent: r.idempotent}
	if r.body != nil {
		if req.Body, err = json.Marshal(r.body); err != nil {
			return nil, r.fail(fmt.Errorf("%w: %w", durable.ErrInvalidArgument, err))
		}
		req.Header = http.Header{"Content-Type": {"application/json"}}
	}
	if !r.token.IsZero() {
		if req.Header == nil {
			req.Header = http.Header{}
		}
		req.Header.Set("Authorization", "Bearer "+r.token.v)
	}
	resp, err := l.Do(ctx, req)
	if err != nil {
		return nil, r.refine(err)
	}
	return &reply{status: resp.Status, body: resp.Body}, nil
}

// fail wraps a failure found before anything was sent.
func (r *request) fail(err error) *Error {
	return &Error{Op: r.op, Subscription: r.sub, Stream: r.stream, Err: err}
}

// apiError is the error body of the subscription API:
// {"error":{"code":C,"message":M,...}}.
type apiError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		Holder     string `json:"current_holder"`
		Generation int64  `json:"generation"`
	} `json:"error"`
}

// refine turns the Client's error into an *Error: an answer whose body
// names a known code wraps that code's sentinel; any other failure (a
// status without a code, a network error, the context) wraps the Client's
// *durable.Error, and so its sentinel.
func (r *request) refine(err error) *Error {
	e := r.fail(err)
	var de *durable.Error
	if !errors.As(err, &de) {
		return e
	}
	e.URL, e.Status = de.URL, de.Status
	if de.Status < 300 {
		return e
	}
	var a apiError
	if json.Unmarshal([]byte(de.Message), &a) == nil && a.Error.Code != "" {
		e.Code, e.Message = a.Error.Code, a.Error.Message
		e.Holder, e.Generation = a.Error.Holder, a.Error.Generation
		if sentinel, ok := codes[a.Error.Code]; ok {
			e.Err = sentinel
		}
	}
	return e
}
