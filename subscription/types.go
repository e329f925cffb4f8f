package subscription

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/durablego/durable"
)

// Type is how a subscription delivers its wakes.
type Type string

// Subscription types.
const (
	// PullWake writes wake events to a wake stream; workers claim the lease
	// (Claim, Worker).
	PullWake Type = "pull-wake"
	// Webhook POSTs each wake, signed, to a URL (Receiver).
	Webhook Type = "webhook"
)

// Status is a subscription's delivery status.
type Status string

// Statuses.
const (
	StatusActive Status = "active" // delivering normally
	StatusFailed Status = "failed" // a webhook delivery failed; a retry is scheduled
)

// LinkType says how a stream came to be linked to a subscription.
type LinkType string

// Link types. A stream linked both ways shows as LinkExplicit.
const (
	LinkGlob     LinkType = "glob"     // matched by the pattern
	LinkExplicit LinkType = "explicit" // added by name
)

// Lease bounds (the server's, from the protocol).
const (
	MinLeaseTTL = time.Second
	MaxLeaseTTL = 10 * time.Minute
)

// Config is a subscription's configuration. Creating a subscription again
// with an identical Config re-confirms it; any difference is
// ErrConfigConflict.
type Config struct {
	// Type is PullWake or Webhook. Required.
	Type Type
	// Pattern is a glob over stream paths relative to the stream root:
	// "*" matches one path segment, "**" any number. Streams that match
	// when the subscription is created are linked at their tails (no
	// replay of history); streams that match later are linked from their
	// first append.
	Pattern string
	// Streams are stream paths linked by name, in addition to Pattern. At
	// least one of Pattern and Streams is required.
	Streams []string
	// WakeStream is the stream a PullWake subscription writes its wake
	// events to. Required for PullWake; the application creates it.
	WakeStream string
	// WebhookURL receives a Webhook subscription's wakes. Required for
	// Webhook; servers accept https URLs to public hosts (and loopback
	// ones only in development).
	WebhookURL string
	// LeaseTTL is how long a lease lasts without an ack or heartbeat,
	// from MinLeaseTTL to MaxLeaseTTL in whole milliseconds; 0 leaves the
	// server's default (30 s).
	LeaseTTL time.Duration
	// Description is free text for people.
	Description string
}

// validate checks what the client can check before sending.
func (c *Config) validate() error {
	var errs []string
	switch c.Type {
	case PullWake:
		if c.WakeStream == "" {
			errs = append(errs, "a pull-wake subscription needs WakeStream")
		}
		if c.WebhookURL != "" {
			errs = append(errs, "a pull-wake subscription takes no WebhookURL")
		}
	case Webhook:
		if c.WebhookURL == "" {
			errs = append(errs, "a webhook subscription needs WebhookURL")
		}
		if c.WakeStream != "" {
			errs = append(errs, "a webhook subscription takes no WakeStream")
		}
	default:
		errs = append(errs, fmt.Sprintf("Type must be %q or %q, not %q", PullWake, Webhook, c.Type))
	}
	if c.Pattern == "" && len(c.Streams) == 0 {
		errs = append(errs, "at least one of Pattern and Streams is required")
	}
	for _, s := range c.Streams {
		if strings.Trim(s, "/") == "" {
			errs = append(errs, "Streams holds an empty path")
			break
		}
	}
	if c.LeaseTTL != 0 && (c.LeaseTTL < MinLeaseTTL || c.LeaseTTL > MaxLeaseTTL || c.LeaseTTL%time.Millisecond != 0) {
		errs = append(errs, fmt.Sprintf("LeaseTTL %v is not whole milliseconds from %v to %v", c.LeaseTTL, MinLeaseTTL, MaxLeaseTTL))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", durable.ErrInvalidArgument, strings.Join(errs, "; "))
	}
	return nil
}

// MarshalJSON writes the body of a create request.
func (c Config) MarshalJSON() ([]byte, error) {
	type webhook struct {
		URL string `json:"url"`
	}
	var body struct {
		Type        Type     `json:"type"`
		Pattern     string   `json:"pattern,omitempty"`
		Streams     []string `json:"streams,omitempty"`
		Webhook     *webhook `json:"webhook,omitempty"`
		WakeStream  string   `json:"wake_stream,omitempty"`
		LeaseTTLms  int64    `json:"lease_ttl_ms,omitempty"`
		Description string   `json:"description,omitempty"`
	}
	body.Type, body.Pattern, body.Streams = c.Type, c.Pattern, c.Streams
	body.WakeStream, body.Description = c.WakeStream, c.Description
	body.LeaseTTLms = c.LeaseTTL.Milliseconds()
	if c.WebhookURL != "" {
		body.Webhook = &webhook{URL: c.WebhookURL}
	}
	return json.Marshal(body)
}

// Link is one stream linked to a subscription, with its acked offset: the
// last offset processed, inclusive, so the next read starts there. In a
// Wake it also carries the stream's tail.
type Link struct {
	Path     string         `json:"path"`
	LinkType LinkType       `json:"link_type"`
	Acked    durable.Offset `json:"acked_offset"`
	// Tail and Pending are set in a Wake: the stream's tail offset when
	// the wake was issued, and whether it is past Acked.
	Tail    durable.Offset `json:"tail_offset,omitempty"`
	Pending bool           `json:"has_pending,omitempty"`
}

// Signing says how a webhook subscription's deliveries are signed.
type Signing struct {
	Alg     string `json:"alg"`      // "ed25519"
	KID     string `json:"kid"`      // the active key's id
	JWKSURL string `json:"jwks_url"` // where the public keys are
}

// Info is a subscription as the server shows it.
type Info struct {
	ID          string
	Type        Type
	Pattern     string
	Links       []Link // the linked streams and their acked offsets
	WakeStream  string
	WebhookURL  string
	Signing     *Signing // webhook subscriptions, when the server says
	LeaseTTL    time.Duration
	CreatedAt   time.Time // zero when the server sent none or an unreadable one
	Status      Status
	Description string
	// Generation is the current wake generation, when the server reports
	// it (durable serve does; the protocol does not require it), else 0.
	Generation int64
	// NextAttempt is when a failed webhook delivery is tried again, when
	// the server reports it, else zero.
	NextAttempt time.Time
}

// Link returns the link of path and whether the subscription has one.
func (in *Info) Link(path string) (Link, bool) {
	for _, l := range in.Links {
		if l.Path == path {
			return l, true
		}
	}
	return Link{}, false
}

// infoJSON is a subscription as the server shows it.
type infoJSON struct {
	ID          string   `json:"id"`
	Type        Type     `json:"type"`
	Pattern     string   `json:"pattern,omitempty"`
	Streams     []Link   `json:"streams"`
	WakeStream  string   `json:"wake_stream,omitempty"`
	Webhook     *hookObj `json:"webhook,omitempty"`
	LeaseTTLms  int64    `json:"lease_ttl_ms"`
	CreatedAt   string   `json:"created_at,omitempty"`
	Status      Status   `json:"status"`
	Description string   `json:"description,omitempty"`
	Generation  int64    `json:"generation,omitempty"`
	NextAttempt string   `json:"next_attempt_at,omitempty"`
}

type hookObj struct {
	URL     string   `json:"url"`
	Signing *Signing `json:"signing,omitempty"`
}

// MarshalJSON writes the subscription in the server's shape (fields it
// does not have left out).
func (in Info) MarshalJSON() ([]byte, error) {
	v := infoJSON{
		ID: in.ID, Type: in.Type, Pattern: in.Pattern, Streams: in.Links, WakeStream: in.WakeStream,
		LeaseTTLms: in.LeaseTTL.Milliseconds(), Status: in.Status, Description: in.Description, Generation: in.Generation,
	}
	if v.Streams == nil {
		v.Streams = []Link{}
	}
	if in.WebhookURL != "" {
		v.Webhook = &hookObj{URL: in.WebhookURL, Signing: in.Signing}
	}
	if !in.CreatedAt.IsZero() {
		v.CreatedAt = in.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	if !in.NextAttempt.IsZero() {
		v.NextAttempt = in.NextAttempt.UTC().Format(time.RFC3339Nano)
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads a subscription as the server shows it.
func (in *Info) UnmarshalJSON(b []byte) error {
	var v struct {
		ID          string  `json:"id"`
		SubID       string  `json:"subscription_id"`
		Type        Type    `json:"type"`
		Pattern     *string `json:"pattern"`
		Streams     []Link  `json:"streams"`
		WakeStream  *string `json:"wake_stream"`
		LeaseTTLms  int64   `json:"lease_ttl_ms"`
		CreatedAt   string  `json:"created_at"`
		Status      Status  `json:"status"`
		Description *string `json:"description"`
		Generation  int64   `json:"generation"`
		NextAttempt any     `json:"next_attempt_at"`
		Webhook     *struct {
			URL     string   `json:"url"`
			Signing *Signing `json:"signing"`
		} `json:"webhook"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	ttl, ok := leaseDuration(v.LeaseTTLms)
	if !ok {
		return fmt.Errorf("lease_ttl_ms %d out of range", v.LeaseTTLms)
	}
	*in = Info{
		ID: v.ID, Type: v.Type, Links: v.Streams, LeaseTTL: ttl,
		Status: v.Status, Generation: v.Generation,
	}
	if in.ID == "" {
		in.ID = v.SubID
	}
	in.Pattern = deref(v.Pattern)
	in.WakeStream = deref(v.WakeStream)
	in.Description = deref(v.Description)
	if v.Webhook != nil {
		in.WebhookURL, in.Signing = v.Webhook.URL, v.Webhook.Signing
	}
	if t, err := time.Parse(time.RFC3339Nano, v.CreatedAt); err == nil {
		in.CreatedAt = t
	}
	in.NextAttempt = parseTimeValue(v.NextAttempt)
	return nil
}

// leaseDuration converts a lease_ttl_ms from the server; a negative value
// or one past a day (the protocol's bound is ten minutes) is refused.
func leaseDuration(ms int64) (time.Duration, bool) {
	if ms < 0 || ms > (24*time.Hour).Milliseconds() {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// parseTimeValue reads an RFC 3339 string or Unix milliseconds (servers
// differ); anything else is the zero time.
func parseTimeValue(v any) time.Time {
	switch x := v.(type) {
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t
		}
	case float64:
		if x > 0 {
			return time.UnixMilli(int64(x))
		}
	}
	return time.Time{}
}

// Wake is one wake of a subscription: a claimed pull-wake lease, or a
// webhook delivery. Its Token is its credential; the Wake can be logged
// and printed whole, the Token shows as "[redacted]".
type Wake struct {
	// Subscription is the subscription's id.
	Subscription string `json:"subscription_id"`
	// ID is the wake's id (unique per wake).
	ID string `json:"wake_id"`
	// Generation is the subscription's fencing counter for this wake.
	Generation int64 `json:"generation"`
	// Token authorizes the wake's acks, heartbeats, release and callbacks.
	Token Token `json:"token"`
	// Links are the subscription's streams with their acked and tail
	// offsets when the wake was issued (or claimed).
	Links []Link `json:"streams"`
	// LeaseTTL is the lease's length (claims; 0 for webhook deliveries,
	// whose lease length the delivery does not say).
	LeaseTTL time.Duration `json:"-"`
	// CallbackURL is where a webhook wake's callbacks go, as the server
	// said ("" for pull-wake). This package sends callbacks to the same
	// path under the Client's base URL, so credentials never go to another
	// origin.
	CallbackURL string `json:"callback_url,omitempty"`

	webhook bool // delivered by webhook (set by the Receiver)
}

// IsWebhook reports whether the wake came by webhook (acks go to the
// callback endpoint) rather than from a claim: it was delivered to a
// Receiver, or has a CallbackURL.
func (w *Wake) IsWebhook() bool { return w.webhook || w.CallbackURL != "" }

// Pending returns the links with pending work.
func (w *Wake) Pending() []Link {
	var out []Link
	for _, l := range w.Links {
		if l.Pending {
			out = append(out, l)
		}
	}
	return out
}

// Ack is the progress of one stream: Offset is the last offset processed,
// inclusive (a server offset, such as a message's Position.Offset once
// Position.Skip is 0), so the stream's next read starts there.
type Ack struct {
	Stream string         `json:"stream"`
	Offset durable.Offset `json:"offset"`
}
