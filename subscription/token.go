package subscription

import (
	"encoding/json"
	"fmt"
	"log/slog"
)

// Token is a claim token (pull-wake) or callback token (webhook): the
// credential of one wake, sent as "Authorization: Bearer" on its acks,
// heartbeats, releases and callbacks and nowhere else (never in a URL).
//
// A Token never prints: fmt (every verb), log/slog and encoding/json all
// show "[redacted]" or nothing, so a Wake can be logged whole. Reveal
// returns the value for the rare program that must hand a wake to another
// process.
type Token struct{ v string }

// redacted is what a Token prints as.
const redacted = "[redacted]"

// NewToken wraps a raw token value, for a wake handed over by another
// process (see Reveal).
func NewToken(v string) Token { return Token{v: v} }

// Reveal returns the raw token. Keep it out of logs and URLs.
func (t Token) Reveal() string { return t.v }

// IsZero reports whether the token is empty.
func (t Token) IsZero() bool { return t.v == "" }

// String implements fmt.Stringer: "[redacted]" (or "" for an empty token).
func (t Token) String() string {
	if t.v == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer (%#v).
func (t Token) GoString() string { return "subscription.Token{" + t.String() + "}" }

// Format implements fmt.Formatter so that every verb prints the redacted
// form.
func (t Token) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(t.GoString()))
		return
	}
	_, _ = f.Write([]byte(t.String()))
}

// LogValue implements slog.LogValuer.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON writes the redacted form: a marshalled Wake carries no
// credential.
func (t Token) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// UnmarshalJSON reads the token of a claim answer or a webhook body.
func (t *Token) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t.v = s
	return nil
}
