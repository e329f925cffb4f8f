package subscription

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Webhook signature errors (Verifier, Receiver). Each wraps
// ErrSignature, so errors.Is(err, ErrSignature) tells a delivery that did
// not verify from any other failure.
var (
	// ErrSignature is wrapped by every signature failure below.
	ErrSignature = errors.New("webhook signature rejected")
	// ErrBadSignature: the Webhook-Signature header is missing or
	// malformed, or the signature does not verify over the timestamp and
	// the body (a tampered body, a forged signature).
	ErrBadSignature = fmt.Errorf("%w: bad signature", ErrSignature)
	// ErrUnknownKey: the key id is not in the server's key set, even after
	// fetching it again.
	ErrUnknownKey = fmt.Errorf("%w: unknown signing key", ErrSignature)
	// ErrStaleSignature: the signature's timestamp is outside the accepted
	// window around the receiver's clock.
	ErrStaleSignature = fmt.Errorf("%w: timestamp outside the accepted window", ErrSignature)
	// ErrReplayed: this signed delivery was accepted before.
	ErrReplayed = fmt.Errorf("%w: delivery replayed", ErrSignature)
)

// SignatureHeader is the header that carries a webhook's signature.
const SignatureHeader = "Webhook-Signature"

// maxSignatureHeader bounds the header value the parser looks at.
const maxSignatureHeader = 1024

// signature is a parsed Webhook-Signature value:
// "t=<unix seconds>,kid=<key id>,ed25519=<base64url signature>".
type signature struct {
	t   int64
	ts  string // t as sent: the signed message starts with it
	kid string
	sig []byte
}

// parseSignature parses a Webhook-Signature value. The three parameters
// may come in any order and each exactly once; unknown parameters are
// ignored (room for other algorithms). t is decimal seconds without sign
// or leading zeros, kid printable ASCII without ',' or '=', and ed25519
// the unpadded base64url encoding of a 64-byte signature.
func parseSignature(h string) (signature, error) {
	var s signature
	if h == "" {
		return s, fmt.Errorf("%w: no %s header", ErrBadSignature, SignatureHeader)
	}
	if len(h) > maxSignatureHeader {
		return s, fmt.Errorf("%w: header longer than %d bytes", ErrBadSignature, maxSignatureHeader)
	}
	var haveT, haveKID, haveSig bool
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return s, fmt.Errorf("%w: malformed parameter", ErrBadSignature)
		}
		switch k {
		case "t":
			if haveT || !decimal(v) {
				return s, fmt.Errorf("%w: bad or repeated t", ErrBadSignature)
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return s, fmt.Errorf("%w: bad t", ErrBadSignature)
			}
			s.t, s.ts, haveT = n, v, true
		case "kid":
			if haveKID || !validKID(v) {
				return s, fmt.Errorf("%w: bad or repeated kid", ErrBadSignature)
			}
			s.kid, haveKID = v, true
		case "ed25519":
			if haveSig || strings.ContainsAny(v, "=+/") {
				return s, fmt.Errorf("%w: bad or repeated ed25519", ErrBadSignature)
			}
			b, err := base64.RawURLEncoding.Strict().DecodeString(v)
			if err != nil || len(b) != ed25519.SignatureSize {
				return s, fmt.Errorf("%w: ed25519 is not a base64url signature", ErrBadSignature)
			}
			s.sig, haveSig = b, true
		}
	}
	if !haveT || !haveKID || !haveSig {
		return s, fmt.Errorf("%w: t, kid and ed25519 are required", ErrBadSignature)
	}
	return s, nil
}

// decimal reports whether v is 1 to 18 decimal digits without a leading
// zero (or "0").
func decimal(v string) bool {
	if v == "" || len(v) > 18 || (len(v) > 1 && v[0] == '0') {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// validKID reports whether v is 1 to 256 printable ASCII bytes other than
// space, ',', '=' and '"'.
func validKID(v string) bool {
	if v == "" || len(v) > 256 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c <= ' ' || c >= 0x7f || c == ',' || c == '=' || c == '"' {
			return false
		}
	}
	return true
}

// verify checks s over body with pub: Ed25519 over "<t>.<body>".
func (s *signature) verify(pub ed25519.PublicKey, body []byte) bool {
	msg := make([]byte, 0, len(s.ts)+1+len(body))
	msg = append(append(append(msg, s.ts...), '.'), body...)
	return ed25519.Verify(pub, msg, s.sig)
}
