package testserver

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Webhook delivery (PROTOCOL.md §7.1), signing keys (§6.5), claim and
// callback tokens (§12.9) and webhook URL validation (§6.2, §12.8).

// retiredKeyLife is how long a rotated-out signing key stays in the JWKS:
// twice the five-minute replay window receivers are told to accept, so
// every delivery it signed is outside the window before it goes.
const retiredKeyLife = 10 * time.Minute

// maxWebhookURLLen bounds a webhook URL.
const maxWebhookURLLen = 2048

var b64 = base64.RawURLEncoding

// signingKey is one Ed25519 webhook signing key.
type signingKey struct {
	KID     string    `json:"kid"`
	Seed    []byte    `json:"seed"` // ed25519 private key seed
	Created time.Time `json:"created"`
	Retired time.Time `json:"retired"` // zero while active

	priv ed25519.PrivateKey
}

// keyRing holds the signing keys (the last one signs) and the HMAC key of
// claim and callback tokens.
type keyRing struct {
	Keys     []*signingKey `json:"keys"`
	TokenKey []byte        `json:"token_key"`
}

func newKeyRing(now time.Time) *keyRing {
	k := &keyRing{TokenKey: make([]byte, 32)}
	_, _ = rand.Read(k.TokenKey) // crypto/rand.Read never fails
	k.Keys = []*signingKey{newSigningKey(now)}
	return k
}

func newSigningKey(now time.Time) *signingKey {
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	k := &signingKey{Seed: seed, Created: now.UTC()}
	k.init()
	return k
}

// init derives the private key and the key id from the seed.
func (k *signingKey) init() {
	k.priv = ed25519.NewKeyFromSeed(k.Seed)
	k.KID = keyID(k.priv.Public().(ed25519.PublicKey))
}

// keyID is "ds_" and the RFC 7638 JWK thumbprint of the public key: the
// SHA-256 of its required members in lexicographic order, base64url.
func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(pub) + `"}`))
	return "ds_" + b64.EncodeToString(sum[:])
}

func (k *keyRing) active() *signingKey { return k.Keys[len(k.Keys)-1] }

// jwk is one public key of the JWKS (RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	KID string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	X   string `json:"x"`
}

// jwks lists the active key and the retired keys still published.
func (k *keyRing) jwks(now time.Time) []jwk {
	out := []jwk{}
	for _, key := range k.Keys {
		if !key.Retired.IsZero() && !now.Before(key.Retired.Add(retiredKeyLife)) {
			continue
		}
		pub := key.priv.Public().(ed25519.PublicKey)
		out = append(out, jwk{Kty: "OKP", Crv: "Ed25519", KID: key.KID, Use: "sig", Alg: "EdDSA", X: b64.EncodeToString(pub)})
	}
	return out
}

// sign returns the Webhook-Signature value for body sent at now:
// "t=<unix seconds>,kid=<key id>,ed25519=<base64url signature of t.body>".
func (k *keyRing) sign(now time.Time, body []byte) string {
	key := k.active()
	t := strconv.FormatInt(now.Unix(), 10)
	msg := make([]byte, 0, len(t)+1+len(body))
	msg = append(append(append(msg, t...), '.'), body...)
	return "t=" + t + ",kid=" + key.KID + ",ed25519=" + b64.EncodeToString(ed25519.Sign(key.priv, msg))
}

// RotateSigningKey makes a new webhook signing key the active one and
// returns its key id. The previous public key stays in the JWKS for ten
// minutes on the server's clock (twice the replay window receivers use),
// so deliveries it signed still verify. It fails without
// WithSubscriptions, or when the new key cannot be stored.
func (s *Server) RotateSigningKey() (string, error) {
	m := s.subs
	if m == nil {
		return "", errors.New("testserver: subscriptions are off")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := s.cfg.clock()
	old := m.keys.active()
	next := newSigningKey(now)
	kept := []*signingKey{}
	for _, key := range m.keys.Keys {
		if key.Retired.IsZero() || now.Before(key.Retired.Add(retiredKeyLife)) {
			kept = append(kept, key)
		}
	}
	ring := &keyRing{Keys: append(kept, next), TokenKey: m.keys.TokenKey}
	prev := old.Retired
	old.Retired = now.UTC()
	if err := m.storeKeys(ring); err != nil {
		old.Retired = prev
		return "", err
	}
	m.keys = ring
	return next.KID, nil
}

// ---------------------------------------------------------------- tokens

// tokenClaims is what a claim or callback token says: which subscription
// (and which incarnation of it), which wake, until when.
type tokenClaims struct {
	Sub        string `json:"sub"`
	Nonce      string `json:"n"`
	Generation int64  `json:"gen"`
	Wake       string `json:"wake"`
	Exp        int64  `json:"exp"` // unix seconds
}

// issueToken signs a token for sub's current wake:
// base64url(JSON claims) "." base64url(HMAC-SHA256). Caller holds m.mu.
func (m *subManager) issueToken(sub *subscription, now time.Time) string {
	c := tokenClaims{Sub: sub.ID, Nonce: sub.Nonce, Generation: sub.Generation, Wake: sub.Wake.ID,
		Exp: now.Add(tokenLifetime).Unix()}
	payload, _ := json.Marshal(c) // strings and numbers: cannot fail
	p := b64.EncodeToString(payload)
	return p + "." + b64.EncodeToString(m.tokenMAC(p))
}

func (m *subManager) tokenMAC(payload string) []byte {
	h := hmac.New(sha256.New, m.keys.TokenKey)
	h.Write([]byte(payload))
	return h.Sum(nil)
}

// verifyToken checks a token's signature and subscription, and its expiry
// on the server's clock; code is TOKEN_INVALID or TOKEN_EXPIRED when it
// fails. Caller holds m.mu.
func (m *subManager) verifyToken(sub *subscription, token string, now time.Time) (tokenClaims, string) {
	var c tokenClaims
	p, sig, ok := strings.Cut(token, ".")
	if !ok {
		return c, "TOKEN_INVALID"
	}
	mac, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(mac, m.tokenMAC(p)) {
		return c, "TOKEN_INVALID"
	}
	payload, err := b64.DecodeString(p)
	if err != nil || json.Unmarshal(payload, &c) != nil || c.Sub != sub.ID || c.Nonce != sub.Nonce {
		return c, "TOKEN_INVALID"
	}
	if now.Unix() > c.Exp {
		return c, "TOKEN_EXPIRED"
	}
	return c, ""
}

// ---------------------------------------------------------------- delivery

// webhookBody is the body of a webhook delivery (§7.1).
type webhookBody struct {
	Subscription  string       `json:"subscription_id"`
	WakeID        string       `json:"wake_id"`
	Generation    int64        `json:"generation"`
	Streams       []streamInfo `json:"streams"`
	CallbackURL   string       `json:"callback_url"`
	CallbackToken string       `json:"callback_token"`
}

// dsURL is the absolute URL of a path under {prefix}__ds/.
func (s *Server) dsURL(rel string) string {
	return s.url + s.cfg.prefix + reservedSegment + "/" + rel
}

// startDeliveryLocked sends sub's current wake to its webhook in the
// background; the attempt restarts the lease and its snapshot is what an
// answer of {"done":true} acks. Caller holds m.mu.
func (m *subManager) startDeliveryLocked(sub *subscription, now time.Time) {
	w := sub.Wake
	if m.closed || w == nil || w.delivering {
		return
	}
	w.delivering, w.NextTry = true, time.Time{}
	w.LeaseUntil = now.Add(sub.Config.leaseTTL())
	infos, tails := m.infos(sub, true)
	w.Snapshot = tails
	body, _ := json.Marshal(webhookBody{
		Subscription: sub.ID, WakeID: w.ID, Generation: sub.Generation, Streams: infos,
		CallbackURL:   m.s.dsURL("subscriptions/" + url.PathEscape(sub.ID) + "/callback"),
		CallbackToken: w.Token,
	})
	sig := m.keys.sign(now, body)
	m.active++
	m.work.Add(1)
	go m.deliver(sub, w, sub.Config.WebhookURL, body, sig)
}

// deliver makes one delivery attempt and applies its outcome if the wake
// is still current: success sets the status active and, with
// {"done":true}, acks the snapshot and ends the wake; failure schedules a
// retry or, after the last attempt, drops the wake.
func (m *subManager) deliver(sub *subscription, w *wakeState, target string, body []byte, sig string) {
	defer m.work.Done()
	ok, done := m.post(target, body, sig)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.active--; m.active == 0 {
		m.idle.Broadcast()
	}
	w.delivering = false
	if m.subs[sub.ID] != sub || sub.Wake != w || m.s.baseCtx.Err() != nil {
		return // deleted, wake ended meanwhile, or the server is closing
	}
	now := m.s.cfg.clock()
	switch {
	case ok:
		sub.Status, w.Attempts = statusActive, 0
		if done {
			for p, tail := range w.Snapshot {
				if l := sub.Links[p]; l != nil && tail > l.Acked {
					l.Acked = tail
				}
			}
			m.endWakeLocked(sub, now)
		}
	default:
		w.Attempts++
		sub.Status = statusFailed
		w.LeaseUntil = time.Time{} // the retry schedule holds the wake
		if w.Attempts >= m.cfg.attempts {
			sub.Wake = nil // dropped: the next append, added stream or PUT wakes again
		} else {
			w.NextTry = now.Add(webhookRetryDelay(w.Attempts))
		}
	}
	_ = m.persistLocked(sub) // a lost outcome repeats the delivery after a restart
	m.poke()
}

// post sends one delivery and reports whether the receiver took it (2xx)
// and answered {"done":true}.
func (m *subManager) post(target string, body []byte, sig string) (ok, done bool) {
	ctx, cancel := context.WithTimeout(m.s.baseCtx, m.cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return false, false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Webhook-Signature", sig)
	res, err := m.client.Do(req)
	if err != nil {
		return false, false
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return false, false
	}
	var answer struct {
		Done bool `json:"done"`
	}
	return true, json.Unmarshal(b, &answer) == nil && answer.Done
}

// webhookRetryDelay is the wait before retry n (1-based): 1 s doubling up
// to 60 s, each ±20% (§7.1).
func webhookRetryDelay(n int) time.Duration {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.Multiplier = 2
	b.MaxInterval = time.Minute
	b.RandomizationFactor = 0.2
	b.MaxElapsedTime = 0
	b.Reset()
	d := b.NextBackOff()
	for i := 1; i < min(n, 16); i++ { // past 16 the interval is long capped
		d = b.NextBackOff()
	}
	return d
}

// newWebhookClient makes the client of webhook deliveries: no proxy, no
// redirects (a redirect is a failed delivery), and a dialer that refuses
// every address validateWebhookURL would refuse, so a host name that
// resolves to a private address (DNS rebinding) is refused too.
func newWebhookClient(loopback bool) *http.Client {
	d := &net.Dialer{
		Timeout: 10 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			return checkDialAddr(address, loopback)
		},
	}
	tr := &http.Transport{
		DialContext:         d.DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ---------------------------------------------------------------- SSRF

// validateWebhookURL accepts an absolute https URL to a public host, and,
// when loopback is allowed, http or https to localhost or a loopback
// address (§6.2, §12.8). Everything else is refused with the reason.
func validateWebhookURL(raw string, loopback bool) error {
	if len(raw) > maxWebhookURLLen {
		return errors.New("webhook.url is too long")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return errors.New("webhook.url must be an absolute http(s) URL")
	}
	if u.User != nil {
		return errors.New("webhook.url must not carry credentials")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return errors.New("webhook.url must use https")
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return errors.New("webhook.url has no host")
	}
	if isLoopbackHost(host) {
		if !loopback {
			return errors.New("loopback webhook URLs are accepted only with the loopback development exception")
		}
		return nil
	}
	if u.Scheme != "https" {
		return errors.New("webhook.url must use https (plain http only for loopback in development)")
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if blockedAddr(ip) {
			return errors.New("webhook.url must not target a private, link-local or local-network address")
		}
		return nil
	}
	if strings.HasSuffix(host, ".local") || strings.HasSuffix(host, ".internal") || !strings.Contains(host, ".") {
		return errors.New("webhook.url must name a public host")
	}
	return nil
}

// isLoopbackHost reports whether host (lower case, no trailing dot) is
// localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// nonPublic are IPv4 ranges that are neither private nor link-local in
// net/netip's terms but still not the public internet.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
}

// blockedAddr reports whether ip is loopback, private (RFC 1918, unique
// local), link-local (cloud metadata endpoints), unspecified, multicast or
// another non-public range.
func blockedAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.Zone() != "" || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// checkDialAddr refuses a connection to a blocked address; a loopback
// address passes when loopback receivers are allowed.
func checkDialAddr(address string, loopback bool) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return errors.New("webhook: dial to a non-IP address")
	}
	if loopback && ip.Unmap().IsLoopback() {
		return nil
	}
	if blockedAddr(ip) {
		return errors.New("webhook: refusing to connect to a non-public address " + ip.String())
	}
	return nil
}
