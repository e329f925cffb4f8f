package subscription

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/link"
)

// Subscription is a handle on one subscription of a server: its
// management (Create, Get, Delete, AddStreams, RemoveStream) and its
// low-level lease calls (Claim, Ack, Heartbeat, Release). It holds no
// state beyond the Client and the id, sends no request until a method is
// called, and is safe for concurrent use.
type Subscription struct {
	c  *durable.Client
	l  link.Client
	id string
}

// maxIDLen bounds a subscription id.
const maxIDLen = 256

// Open returns a handle on the subscription id of c's server. The id is
// the client-chosen name of the subscription: 1 to 256 bytes, no '/',
// '?', '#' or control characters. An invalid id or a nil Client is an
// error wrapping durable.ErrInvalidArgument.
func Open(c *durable.Client, id string) (*Subscription, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil Client", durable.ErrInvalidArgument)
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	l, err := clientLink(c)
	if err != nil {
		return nil, err
	}
	return &Subscription{c: c, l: l, id: id}, nil
}

func checkID(id string) error {
	if id == "" || len(id) > maxIDLen || strings.ContainsAny(id, "/?#%") || id == "." || id == ".." {
		return fmt.Errorf("%w: subscription id %q must be 1 to %d bytes without '/', '?', '#' or '%%'", durable.ErrInvalidArgument, id, maxIDLen)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: subscription id %q contains a control character", durable.ErrInvalidArgument, id)
		}
	}
	return nil
}

// ID returns the subscription's id.
func (s *Subscription) ID() string { return s.id }

// path returns the path of the subscription's API below the stream root.
func (s *Subscription) path(action string) string {
	p := "__ds/subscriptions/" + s.id
	if action != "" {
		p += "/" + action
	}
	return p
}

// call sends one request about this subscription. Every request but a
// claim is safe to send again, and is retried on transient failures.
func (s *Subscription) call(ctx context.Context, op, method, action string, body any, token Token) (*reply, error) {
	return send(ctx, s.c, &request{op: op, sub: s.id, method: method, path: s.path(action), body: body, token: token,
		idempotent: op != "claim"})
}

// Create creates the subscription with cfg, or re-confirms it when it
// exists with exactly this configuration; created tells which. A
// subscription with this id and another configuration is
// ErrConfigConflict; a webhook URL the server refuses is
// ErrWebhookURLRejected. cfg is checked before anything is sent (an error
// wrapping durable.ErrInvalidArgument).
func (s *Subscription) Create(ctx context.Context, cfg Config) (info *Info, created bool, err error) {
	if err := cfg.validate(); err != nil {
		return nil, false, &Error{Op: "create", Subscription: s.id, Err: err}
	}
	r, err := s.call(ctx, "create", http.MethodPut, "", cfg, Token{})
	if err != nil {
		return nil, false, err
	}
	info, err = s.decodeInfo("create", r)
	return info, r.status == http.StatusCreated, err
}

// Get reads the subscription: its configuration, links with acked
// offsets, and status. A missing subscription is ErrNotFound.
func (s *Subscription) Get(ctx context.Context) (*Info, error) {
	r, err := s.call(ctx, "get", http.MethodGet, "", nil, Token{})
	if err != nil {
		return nil, err
	}
	return s.decodeInfo("get", r)
}

func (s *Subscription) decodeInfo(op string, r *reply) (*Info, error) {
	var in Info
	if err := json.Unmarshal(r.body, &in); err != nil {
		return nil, &Error{Op: op, Subscription: s.id, Status: r.status, Err: fmt.Errorf("%w: %w", durable.ErrProtocol, err)}
	}
	return &in, nil
}

// Delete deletes the subscription. Its wake in flight ends: later acks,
// releases and callbacks for it fail. Deleting a subscription that does
// not exist is not an error.
func (s *Subscription) Delete(ctx context.Context) error {
	_, err := s.call(ctx, "delete", http.MethodDelete, "", nil, Token{})
	return err
}

// AddStreams links streams by name (paths relative to the stream root),
// at their current tails. Adding a linked stream again changes nothing.
func (s *Subscription) AddStreams(ctx context.Context, streams ...string) error {
	if len(streams) == 0 {
		return &Error{Op: "add streams", Subscription: s.id, Err: fmt.Errorf("%w: no streams", durable.ErrInvalidArgument)}
	}
	body := struct {
		Streams []string `json:"streams"`
	}{streams}
	_, err := s.call(ctx, "add streams", http.MethodPost, "streams", body, Token{})
	return err
}

// RemoveStream removes the explicit link of stream; a link by the pattern
// stays while the pattern matches. Removing a link that does not exist is
// not an error.
func (s *Subscription) RemoveStream(ctx context.Context, stream string) error {
	p := strings.Trim(stream, "/")
	if p == "" {
		return &Error{Op: "remove stream", Subscription: s.id, Err: fmt.Errorf("%w: empty stream path", durable.ErrInvalidArgument)}
	}
	_, err := send(ctx, s.c, &request{op: "remove stream", sub: s.id, stream: p, method: http.MethodDelete, path: s.path("streams/" + p)})
	return err
}
