package subscription

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/durablego/durable"
)

// claimAnswer is the answer of a successful claim.
type claimAnswer struct {
	WakeID     string `json:"wake_id"`
	Generation int64  `json:"generation"`
	Token      Token  `json:"token"`
	Streams    []Link `json:"streams"`
	LeaseTTLms int64  `json:"lease_ttl_ms"`
}

// Claim takes the lease of a pull-wake subscription for worker (a name
// for people and for ErrAlreadyClaimed's Holder) and returns the wake:
// its id, generation, token, and every linked stream with its acked and
// tail offsets. The lease lasts Wake.LeaseTTL; Ack without done and
// Heartbeat renew it, Ack with done and Release end it.
//
// When another worker holds the lease the error is ErrAlreadyClaimed;
// when no linked stream has data past its acked offset it is
// ErrNoPendingWork.
func (s *Subscription) Claim(ctx context.Context, worker string) (*Wake, error) {
	if worker == "" {
		return nil, &Error{Op: "claim", Subscription: s.id, Err: fmt.Errorf("%w: empty worker name", durable.ErrInvalidArgument)}
	}
	body := struct {
		Worker string `json:"worker"`
	}{worker}
	r, err := s.call(ctx, "claim", http.MethodPost, "claim", body, Token{})
	if err != nil {
		return nil, err
	}
	var a claimAnswer
	err = json.Unmarshal(r.body, &a)
	ttl, ok := leaseDuration(a.LeaseTTLms)
	if err == nil && (a.WakeID == "" || a.Token.IsZero() || !ok) {
		err = fmt.Errorf("claim answer without wake_id or token, or with lease_ttl_ms %d", a.LeaseTTLms)
	}
	if err != nil {
		return nil, &Error{Op: "claim", Subscription: s.id, Status: r.status, Err: fmt.Errorf("%w: %w", durable.ErrProtocol, err)}
	}
	return &Wake{Subscription: s.id, ID: a.WakeID, Generation: a.Generation, Token: a.Token, Links: a.Streams, LeaseTTL: ttl}, nil
}

// ackBody is the body of an ack, a release or a callback.
type ackBody struct {
	WakeID     string `json:"wake_id"`
	Generation int64  `json:"generation"`
	Acks       []Ack  `json:"acks"`
	Done       bool   `json:"done,omitempty"`
}

// ackAnswer is the answer of an ack or a callback.
type ackAnswer struct {
	OK       bool `json:"ok"`
	NextWake bool `json:"next_wake"`
}

// Ack records the progress of w's streams: each Ack's offset becomes the
// stream's acked offset (the last offset processed, inclusive). Without
// done it also renews the lease (a heartbeat, with or without acks); with
// done it ends the wake, and nextWake says whether the server issued the
// next wake at once because work is pending. A wake that came by webhook
// is acked through the subscription's callback endpoint.
//
// ErrFenced means the wake is no longer current: nothing was applied and
// its holder must stop. ErrInvalidOffset means an offset was refused
// (none of the acks was applied).
func (s *Subscription) Ack(ctx context.Context, w *Wake, done bool, acks ...Ack) (nextWake bool, err error) {
	op := "ack"
	if len(acks) == 0 && !done {
		op = "heartbeat"
	}
	return s.ack(ctx, op, w, done, acks)
}

// Heartbeat renews w's lease without recording progress.
func (s *Subscription) Heartbeat(ctx context.Context, w *Wake) error {
	_, err := s.ack(ctx, "heartbeat", w, false, nil)
	return err
}

// Release gives w's lease back without recording progress: pending work
// is woken again, for this or another worker. A webhook wake is released
// by a callback with done and no acks.
func (s *Subscription) Release(ctx context.Context, w *Wake) error {
	if err := s.checkWake("release", w); err != nil {
		return err
	}
	if w.IsWebhook() {
		_, err := s.ack(ctx, "release", w, true, nil)
		return err
	}
	_, err := s.call(ctx, "release", http.MethodPost, "release", ackBody{WakeID: w.ID, Generation: w.Generation}, w.Token)
	return err
}

func (s *Subscription) ack(ctx context.Context, op string, w *Wake, done bool, acks []Ack) (bool, error) {
	if err := s.checkWake(op, w); err != nil {
		return false, err
	}
	if acks == nil {
		acks = []Ack{}
	}
	action := "ack"
	if w.IsWebhook() {
		action = "callback"
	}
	r, err := s.call(ctx, op, http.MethodPost, action, ackBody{WakeID: w.ID, Generation: w.Generation, Acks: acks, Done: done}, w.Token)
	if err != nil {
		return false, err
	}
	var a ackAnswer
	_ = json.Unmarshal(r.body, &a) // an answer without a body acked all the same
	return a.NextWake, nil
}

func (s *Subscription) checkWake(op string, w *Wake) error {
	switch {
	case w == nil:
		return &Error{Op: op, Subscription: s.id, Err: fmt.Errorf("%w: nil Wake", durable.ErrInvalidArgument)}
	case w.Subscription != s.id:
		return &Error{Op: op, Subscription: s.id, Err: fmt.Errorf("%w: wake of subscription %q", durable.ErrInvalidArgument, w.Subscription)}
	case w.Token.IsZero():
		return &Error{Op: op, Subscription: s.id, Err: fmt.Errorf("%w: wake without a token", durable.ErrInvalidArgument)}
	}
	return nil
}
