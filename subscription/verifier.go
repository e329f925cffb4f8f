package subscription

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/durablego/durable"
)

// Verifier defaults.
const (
	// DefaultMaxSkew is how far a signature's timestamp may be from the
	// receiver's clock, either way (the protocol suggests five minutes).
	DefaultMaxSkew = 5 * time.Minute
	// DefaultKeyRefresh is the least time between two fetches of the key
	// set caused by unknown key ids, so forged key ids cannot make the
	// receiver hammer the server.
	DefaultKeyRefresh = 10 * time.Second
	// keyMaxAge is how long a fetched key set is used before it is fetched
	// again (the server's Cache-Control max-age).
	keyMaxAge = 5 * time.Minute
)

// Verifier checks webhook deliveries of one Durable Streams server:
// the Webhook-Signature header (Ed25519 over the timestamp and the raw
// body, PROTOCOL §7.1) against the server's public keys, a bounded
// timestamp skew, and replays. The keys come from the server's JWKS
// (the stream root's __ds/jwks.json, fetched through the Client, so its
// headers and TLS settings apply), cached, and fetched again when a
// delivery names a key id the cache does not hold (key rotation) or the
// cache is older than five minutes. Safe for concurrent use.
//
// Receiver uses a Verifier; use one directly to verify deliveries in a
// handler of your own.
type Verifier struct {
	c       *durable.Client
	skew    time.Duration
	refresh time.Duration
	now     func() time.Time

	fetchMu sync.Mutex // one key set fetch at a time
	mu      sync.Mutex // guards what follows
	keys    map[string]ed25519.PublicKey
	fetched time.Time        // when keys were fetched; zero: never
	gen     int              // key set fetches so far
	tried   time.Time        // last fetch attempt caused by an unknown key id
	seen    map[string]int64 // accepted signatures → their timestamp, within the window
}

// NewVerifier returns a Verifier of the server c talks to (options:
// WithMaxSkew, WithKeyRefresh). It sends no request: the first delivery
// fetches the keys.
func NewVerifier(c *durable.Client, opts ...Option) (*Verifier, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil Client", durable.ErrInvalidArgument)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newVerifier(c, &cfg), nil
}

func newVerifier(c *durable.Client, cfg *config) *Verifier {
	return &Verifier{c: c, skew: cfg.skew, refresh: cfg.keyRefresh, now: cfg.now, seen: map[string]int64{}}
}

// Verify checks one delivery: header is its Webhook-Signature value and
// body its raw bytes. It returns nil when the signature is good, fresh
// and not seen before (and remembers it), or an error wrapping
// ErrSignature (ErrBadSignature, ErrUnknownKey, ErrStaleSignature,
// ErrReplayed); an error fetching the keys is returned as it is.
func (v *Verifier) Verify(ctx context.Context, header string, body []byte) error {
	_, err := v.verify(ctx, header, body)
	return err
}

// verify is Verify, returning the signature's timestamp too.
func (v *Verifier) verify(ctx context.Context, header string, body []byte) (time.Time, error) {
	sig, err := parseSignature(header)
	if err != nil {
		return time.Time{}, err
	}
	now := v.now()
	if d := time.Duration(now.Unix()-sig.t) * time.Second; d > v.skew || -d > v.skew {
		return time.Time{}, fmt.Errorf("%w: signed at %d, %v from now", ErrStaleSignature, sig.t, d)
	}
	pub, err := v.key(ctx, sig.kid)
	if err != nil {
		return time.Time{}, err
	}
	if !sig.verify(pub, body) {
		return time.Time{}, fmt.Errorf("%w: does not verify with key %q", ErrBadSignature, sig.kid)
	}
	return time.Unix(sig.t, 0), v.remember(sig, now)
}

// remember records an accepted signature and refuses one seen before.
// Signatures older than the window are forgotten: the timestamp check
// refuses them anyway.
func (v *Verifier) remember(sig signature, now time.Time) error {
	id := string(sig.sig)
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.seen[id]; ok {
		return fmt.Errorf("%w: signed at %d with key %q", ErrReplayed, sig.t, sig.kid)
	}
	oldest := now.Add(-v.skew).Unix() - 1
	for k, t := range v.seen {
		if t < oldest {
			delete(v.seen, k)
		}
	}
	v.seen[id] = sig.t
	return nil
}

// key returns the public key kid, fetching the key set when the cache is
// empty or old, or does not hold kid and was not fetched for an unknown
// key id within the refresh interval. One fetch runs at a time; the
// verification of deliveries with known keys does not wait for it.
func (v *Verifier) key(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	pub, ok, fetch, gen := v.cached(kid)
	if !fetch {
		if ok {
			return pub, nil
		}
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	v.mu.Lock()
	if v.gen != gen { // fetched meanwhile
		pub, ok = v.keys[kid]
		v.mu.Unlock()
		if ok {
			return pub, nil
		}
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
	v.mu.Unlock()
	keys, err := fetchJWKS(ctx, v.c)
	if err != nil {
		if ok {
			return pub, nil // a known key stays usable while the server is unreachable
		}
		return nil, err
	}
	v.mu.Lock()
	v.keys, v.fetched = keys, v.now()
	v.gen++
	v.mu.Unlock()
	if pub, ok = keys[kid]; !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
	return pub, nil
}

// cached looks kid up in the cache and says whether to fetch the key set:
// it is empty or old, or it lacks kid and no fetch for an unknown key id
// happened within the refresh interval (this call then counts as one).
func (v *Verifier) cached(kid string) (pub ed25519.PublicKey, ok, fetch bool, gen int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	pub, ok = v.keys[kid]
	switch {
	case v.fetched.IsZero() || now.Sub(v.fetched) >= keyMaxAge:
		if !ok {
			v.tried = now
		}
		return pub, ok, true, v.gen
	case ok:
		return pub, true, false, v.gen
	case !v.tried.IsZero() && now.Sub(v.tried) < v.refresh:
		return nil, false, false, v.gen
	}
	v.tried = now
	return nil, false, true, v.gen
}

// jwk is one key of a JWK Set (RFC 7517, RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	KID string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	X   string `json:"x"`
}

// fetchJWKS reads the server's webhook signing keys: the Ed25519 keys of
// its JWK Set by key id. Keys of other types or uses are left out.
func fetchJWKS(ctx context.Context, c *durable.Client) (map[string]ed25519.PublicKey, error) {
	r, err := send(ctx, c, &request{op: "jwks", method: http.MethodGet, path: "__ds/jwks.json"})
	if err != nil {
		return nil, err
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &set); err != nil {
		return nil, &Error{Op: "jwks", Status: r.status, Err: fmt.Errorf("%w: %w", durable.ErrProtocol, err)}
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.KID == "" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "EdDSA") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			continue
		}
		keys[k.KID] = ed25519.PublicKey(x)
	}
	return keys, nil
}
