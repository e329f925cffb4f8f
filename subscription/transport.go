package subscription

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode"

	"github.com/durablego/durable"
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
}

// reply is a successful (2xx) answer.
type reply struct {
	status int
	body   []byte
}

// maxReply bounds the body of an answer of the subscription API.
const maxReply = 16 << 20

// send sends r once through c and returns a 2xx answer, or an *Error.
func send(ctx context.Context, c *durable.Client, r *request) (*reply, error) {
	u, err := c.URL(r.path)
	if err != nil {
		return nil, r.fail(0, err)
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, r.fail(0, fmt.Errorf("%w: %w", durable.ErrInvalidArgument, err))
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, r.fail(0, err)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !r.token.IsZero() {
		req.Header.Set("Authorization", "Bearer "+r.token.v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, r.fail(0, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return nil, r.fail(resp.StatusCode, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, r.statusError(resp.StatusCode, b)
	}
	return &reply{status: resp.StatusCode, body: b}, nil
}

// fail wraps a failure without an answer of the API.
func (r *request) fail(status int, err error) *Error {
	return &Error{Op: r.op, Subscription: r.sub, Stream: r.stream, Status: status, Err: err}
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

// statusError turns a non-2xx answer into an *Error: the code's sentinel
// when the body names a known code, else durable's sentinel of the status.
func (r *request) statusError(status int, body []byte) *Error {
	e := r.fail(status, nil)
	var a apiError
	if json.Unmarshal(body, &a) == nil && a.Error.Code != "" {
		e.Code, e.Message = a.Error.Code, oneLine(a.Error.Message)
		e.Holder, e.Generation = a.Error.Holder, a.Error.Generation
		e.Err = codes[a.Error.Code]
	} else {
		e.Message = oneLine(string(body))
	}
	if e.Err == nil {
		e.Err = statusSentinel(status)
	}
	return e
}

// statusSentinel is durable's sentinel for a status no code refined.
func statusSentinel(status int) error {
	switch {
	case status == http.StatusBadRequest:
		return durable.ErrBadRequest
	case status == http.StatusUnauthorized:
		return durable.ErrUnauthorized
	case status == http.StatusForbidden:
		return durable.ErrForbidden
	case status == http.StatusNotFound:
		return durable.ErrNotFound
	case status == http.StatusTooManyRequests:
		return durable.ErrRateLimited
	case status == http.StatusMethodNotAllowed, status == http.StatusNotImplemented:
		return durable.ErrNotSupported
	case status >= 500:
		return durable.ErrServer
	}
	return durable.ErrUnexpectedStatus
}

// oneLine bounds a server message to 512 bytes on one printable line.
func oneLine(s string) string {
	if len(s) > 512 {
		s = s[:512]
	}
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}
