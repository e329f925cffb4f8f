package testserver

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/subtest"
)

// ---------------------------------------------------------------- independent verifier

// The verifier below is written from PROTOCOL.md §6.5 and §7.1 alone and
// shares no code with the server's signing: the header is
// "t=<unix seconds>,kid=<key id>,ed25519=<unpadded base64url signature>",
// the signature is Ed25519 over "<t>.<raw body>", and the key is the JWK
// (kty OKP, crv Ed25519, x = base64url public key) whose kid the header
// names, from the JWK Set at jwks_url.

type jwkSet struct {
	Keys []struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		X   string `json:"x"`
	} `json:"keys"`
}

// fetchJWKS reads the JWK Set and checks the headers §6.5 names.
func fetchJWKS(t testing.TB, url string) jwkSet {
	t.Helper()
	r := call(t, "GET", url, nil, "")
	mustStatus(t, r, 200)
	if ct := r.get("Content-Type"); ct != "application/jwk-set+json" {
		t.Fatalf("JWKS Content-Type = %q", ct)
	}
	if cc := r.get("Cache-Control"); cc != "public, max-age=300" {
		t.Fatalf("JWKS Cache-Control = %q", cc)
	}
	var set jwkSet
	if err := json.Unmarshal([]byte(r.body), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// verifySignature checks a Webhook-Signature header against the raw body,
// a JWK Set, and a replay window around now.
func verifySignature(header string, raw []byte, set jwkSet, now time.Time, window time.Duration) error {
	var ts, kid, sig string
	parts := strings.Split(header, ",")
	if len(parts) != 3 {
		return fmt.Errorf("want 3 parameters, got %d", len(parts))
	}
	for i, want := range []string{"t", "kid", "ed25519"} {
		name, value, ok := strings.Cut(parts[i], "=")
		if !ok || name != want || value == "" {
			return fmt.Errorf("parameter %d is %q, want %s=...", i, parts[i], want)
		}
		switch want {
		case "t":
			ts = value
		case "kid":
			kid = value
		default:
			sig = value
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q: %v", ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return fmt.Errorf("timestamp %d outside the replay window", sec)
	}
	if strings.ContainsAny(sig, "=+/") {
		return errors.New("signature is not unpadded base64url")
	}
	rawSig, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return fmt.Errorf("signature: %v", err)
	}
	for _, k := range set.Keys {
		if k.Kid != kid {
			continue
		}
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			return fmt.Errorf("key %s is %s/%s", kid, k.Kty, k.Crv)
		}
		pub, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("key %s: bad x", kid)
		}
		signed := append([]byte(ts+"."), raw...)
		if !ed25519.Verify(ed25519.PublicKey(pub), signed, rawSig) {
			return errors.New("signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("no key %q in the JWK Set", kid)
}

// TestWebhookSignature: a delivery verifies with the published key; a
// tampered body, another timestamp, an unknown key and a stale timestamp
// do not; after a rotation the new key signs and the old one stays
// published for ten minutes.
func TestWebhookSignature(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, subtest.Reply{Status: 200, Body: `{"done":true}`})
	e := newSubEnv(t)
	sub := decodeSub(t, e.put("s", webhookSub(rc.url(), ""), 201))
	if sub.Webhook == nil || sub.Webhook.Signing.Alg != "ed25519" || !strings.HasPrefix(sub.Webhook.Signing.KID, "ds_") ||
		sub.Webhook.Signing.JWKSURL != e.url("jwks.json") {
		t.Fatalf("webhook = %+v", sub.Webhook)
	}
	set := fetchJWKS(t, sub.Webhook.Signing.JWKSURL)
	if len(set.Keys) != 1 || set.Keys[0].Kid != sub.Webhook.Signing.KID || set.Keys[0].Alg != "EdDSA" || set.Keys[0].Use != "sig" {
		t.Fatalf("JWKS = %+v", set)
	}
	// §6.5: the kid derives from the key material; RFC 7638's thumbprint of
	// an OKP key hashes {"crv","kty","x"} in that order, without spaces.
	thumb := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + set.Keys[0].X + `"}`))
	if want := "ds_" + base64.RawURLEncoding.EncodeToString(thumb[:]); set.Keys[0].Kid != want {
		t.Fatalf("kid %s is not the key's RFC 7638 thumbprint %s", set.Keys[0].Kid, want)
	}
	e.appendEvents(t, "events/a")
	d := rc.next()
	e.srv.RunTimers() // let the server take the answer
	now := e.clk.Now()
	if err := verifySignature(d.Signature, d.Raw, set, now, 5*time.Minute); err != nil {
		t.Fatalf("signature from the server: %v (header %q)", err, d.Signature)
	}
	tsOf := func(h string) string { return strings.TrimPrefix(strings.Split(h, ",")[0], "t=") }
	if tsOf(d.Signature) != strconv.FormatInt(now.Unix(), 10) {
		t.Fatalf("t = %s, want the server clock's %d", tsOf(d.Signature), now.Unix())
	}
	rejects := map[string]struct {
		header string
		raw    []byte
		now    time.Time
	}{
		"tampered body":   {d.Signature, bytes.Replace(d.Raw, []byte(`"generation":1`), []byte(`"generation":2`), 1), now},
		"one byte added":  {d.Signature, append(append([]byte{}, d.Raw...), ' '), now},
		"other timestamp": {strings.Replace(d.Signature, "t="+tsOf(d.Signature), "t="+strconv.FormatInt(now.Unix()+1, 10), 1), d.Raw, now},
		"unknown key":     {strings.Replace(d.Signature, "kid=ds_", "kid=ds_x", 1), d.Raw, now},
		"stale timestamp": {d.Signature, d.Raw, now.Add(6 * time.Minute)},
		"padded":          {d.Signature + "==", d.Raw, now},
		"reordered":       {strings.Join(reverse(strings.Split(d.Signature, ",")), ","), d.Raw, now},
	}
	for name, c := range rejects {
		if err := verifySignature(c.header, c.raw, set, c.now, 5*time.Minute); err == nil {
			t.Errorf("%s: verified", name)
		}
	}

	// Rotation: the next delivery is signed by the new key; the old key is
	// published until ten minutes after the rotation.
	oldKID := sub.Webhook.Signing.KID
	newKID, err := e.srv.RotateSigningKey()
	if err != nil || newKID == oldKID {
		t.Fatalf("RotateSigningKey = %q, %v", newKID, err)
	}
	if got := e.get("s").Webhook.Signing.KID; got != newKID {
		t.Fatalf("subscription kid after rotation = %s, want %s", got, newKID)
	}
	e.clk.Advance(time.Minute)
	e.appendJSON("events/a", `2`)
	d2 := rc.next()
	set2 := fetchJWKS(t, e.url("jwks.json"))
	if !strings.Contains(d2.Signature, "kid="+newKID+",") {
		t.Fatalf("delivery after rotation signed with %q, want %s", d2.Signature, newKID)
	}
	if err := verifySignature(d2.Signature, d2.Raw, set2, e.clk.Now(), 5*time.Minute); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if err := verifySignature(d.Signature, d.Raw, set2, now, 5*time.Minute); err != nil {
		t.Fatalf("old delivery after rotation: %v", err)
	}
	e.clk.Advance(9 * time.Minute)
	if set3 := fetchJWKS(t, e.url("jwks.json")); len(set3.Keys) != 1 || set3.Keys[0].Kid != newKID {
		t.Fatalf("JWKS ten minutes after rotation = %+v, want only %s", set3, newKID)
	}
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func decodeSub(t testing.TB, m map[string]any) subInfo {
	t.Helper()
	b, _ := json.Marshal(m)
	var s subInfo
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// ---------------------------------------------------------------- delivery

// TestWebhookSyncDone: {"done":true} acks the snapshot of the wake and
// releases it; data that arrived later makes a new wake (§7.1).
func TestWebhookSyncDone(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, subtest.Reply{Status: 200, Body: `{"done":true}`})
	e := newSubEnv(t)
	e.put("s", webhookSub(rc.url(), ""), 201)
	tail := e.appendEvents(t, "events/a")
	d := rc.next()
	if d.Body.Subscription != "s" || d.Body.Generation != 1 || !strings.HasPrefix(d.Body.WakeID, "w_") ||
		d.Body.CallbackURL != e.url("subscriptions/s/callback") || d.Body.CallbackToken == "" || d.Body.Tail("events/a") != tail {
		t.Fatalf("delivery = %+v", d.Body)
	}
	if l := d.Body.Streams[0]; l.LinkType != "glob" || l.Acked != off(0) || !l.HasPending {
		t.Fatalf("stream in delivery = %+v", l)
	}
	waitFor(t, func() bool { l, _ := e.get("s").link("events/a"); return l.Acked == tail })
	tail2 := e.appendJSON("events/a", `2`)
	d2 := rc.next()
	if d2.Body.Generation != 2 || d2.Body.WakeID == d.Body.WakeID || d2.Body.Tail("events/a") != tail2 {
		t.Fatalf("second delivery = %+v", d2.Body)
	}
	waitFor(t, func() bool { l, _ := e.get("s").link("events/a"); return l.Acked == tail2 })
	if rc.count() != 2 {
		t.Fatalf("%d deliveries, want 2", rc.count())
	}
}

// waitFor polls a condition that an asynchronous delivery makes true.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWebhookCallback: an asynchronous receiver acks through the callback
// URL; it acks only what it lists, a callback renews the lease, done with
// work left issues the next wake, and a stale callback is fenced.
func TestWebhookCallback(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t)
	e := newSubEnv(t)
	e.put("s", webhookSub(rc.url(), ""), 201)
	e.stream("events/a", `[1]`)
	d := rc.next()
	tailA := d.Body.Tail("events/a")
	e.stream("events/b", `[1]`) // arrives while the wake is held: no delivery now
	cb := func(body string) resp {
		return call(t, "POST", d.Body.CallbackURL, hdrs{"Authorization": "Bearer " + d.Body.CallbackToken, "Content-Type": "application/json"}, body)
	}
	// Callbacks renew the lease (5 s) past its first end.
	for i := 0; i < 3; i++ {
		e.clk.Advance(4 * time.Second)
		e.srv.RunTimers()
		r := cb(ackBody(d.Body.WakeID, 1, false))
		if r.status != 200 || r.body != `{"ok":true,"next_wake":false}` {
			t.Fatalf("heartbeat callback = %d %s", r.status, r.body)
		}
	}
	if rc.count() != 1 {
		t.Fatalf("%d deliveries while the lease was renewed", rc.count())
	}
	r := cb(ackBody(d.Body.WakeID, 1, true, [2]string{"events/a", tailA}))
	if r.status != 200 || r.body != `{"ok":true,"next_wake":true}` {
		t.Fatalf("done callback = %d %s", r.status, r.body)
	}
	s := e.get("s")
	if a, _ := s.link("events/a"); a.Acked != tailA {
		t.Fatalf("events/a acked %s, want %s", a.Acked, tailA)
	}
	if b, _ := s.link("events/b"); b.Acked != off(0) {
		t.Fatalf("events/b acked %s: a callback acked what it did not list", b.Acked)
	}
	d2 := rc.next()
	if d2.Body.Generation != 2 {
		t.Fatalf("next wake generation = %d", d2.Body.Generation)
	}
	e.want(cb(ackBody(d.Body.WakeID, 1, true)), 409, "FENCED")
	stale := call(t, "POST", d.Body.CallbackURL, hdrs{"Authorization": "Bearer " + d.Body.CallbackToken}, ackBody(d2.Body.WakeID, 2, true))
	e.want(stale, 409, "FENCED")
	e.want(call(t, "POST", d.Body.CallbackURL, nil, ackBody(d2.Body.WakeID, 2, true)), 401, "TOKEN_INVALID")
	// The lease of an unanswered wake runs out: redelivery with a new wake.
	e.clk.Advance(5 * time.Second)
	e.srv.RunTimers()
	d3 := rc.next()
	if d3.Body.Generation != 3 || d3.Body.WakeID == d2.Body.WakeID {
		t.Fatalf("delivery after lease expiry = %+v", d3.Body)
	}
	// A webhook subscription cannot be claimed.
	e.want(e.do("POST", "subscriptions/s/claim", "", `{"worker":"w"}`), 400, "INVALID_REQUEST")
}

// TestWebhookRetry: failed deliveries retry the same wake with 1 s, 2 s,
// 4 s ... ±20% on the server clock, status "failed" meanwhile; a success
// makes it "active"; after the retry budget the wake is dropped and the
// next append recovers.
func TestWebhookRetry(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, subtest.Reply{Status: 500, Body: ``}, subtest.Reply{Status: 503, Body: ``}, subtest.Reply{Status: 200, Body: `{"done":true}`})
	e := newSubEnv(t, WithWebhookRetry(3, time.Second))
	e.put("s", webhookSub(rc.url(), ""), 201)
	tail := e.appendEvents(t, "events/a")
	first := rc.next()
	for i, base := range []time.Duration{time.Second, 2 * time.Second} {
		var s subInfo
		waitFor(t, func() bool { s = e.get("s"); return s.NextAttempt != nil })
		if s.Status != "failed" {
			t.Fatalf("status after failure %d = %s", i+1, s.Status)
		}
		at, err := time.Parse(time.RFC3339, *s.NextAttempt)
		if err != nil {
			t.Fatal(err)
		}
		wait := at.Sub(e.clk.Now())
		if lo, hi := base*8/10-time.Millisecond, base*12/10+time.Millisecond; wait < lo || wait > hi {
			t.Fatalf("retry %d after %v, want %v ±20%%", i+1, wait, base)
		}
		e.clk.Advance(wait - 10*time.Millisecond)
		e.srv.RunTimers()
		if rc.count() != i+1 {
			t.Fatalf("retry %d sent early", i+1)
		}
		e.clk.Advance(11 * time.Millisecond) // next_attempt_at is in whole milliseconds
		e.srv.RunTimers()
		d := rc.next()
		if d.Body.WakeID != first.Body.WakeID || d.Body.Generation != 1 {
			t.Fatalf("retry %d wake %s gen %d, want the same wake %s", i+1, d.Body.WakeID, d.Body.Generation, first.Body.WakeID)
		}
	}
	waitFor(t, func() bool {
		s := e.get("s")
		l, _ := s.link("events/a")
		return s.Status == "active" && l.Acked == tail
	})
	if s := e.get("s"); s.NextAttempt != nil {
		t.Fatalf("next_attempt_at %v after success", *s.NextAttempt)
	}

	// Budget: three failures drop the wake; nothing more is sent until
	// new data arrives, which recovers.
	rc.SetReplies(subtest.Reply{Status: 500, Body: ``}, subtest.Reply{Status: 500, Body: ``}, subtest.Reply{Status: 500, Body: ``}, subtest.Reply{Status: 200, Body: `{"done":true}`})
	e.appendJSON("events/a", `2`)
	for i := 0; i < 3; i++ {
		rc.next()
		e.srv.RunTimers() // let the server take the answer
		e.clk.Advance(time.Minute)
		e.srv.RunTimers()
	}
	s := e.get("s")
	if s.Status != "failed" || s.NextAttempt != nil || rc.count() != 6 {
		t.Fatalf("after the budget: status %s, next %v, %d deliveries", s.Status, s.NextAttempt, rc.count())
	}
	e.clk.Advance(time.Hour)
	e.srv.RunTimers()
	if rc.count() != 6 {
		t.Fatal("a dropped wake was delivered again")
	}
	tail3 := e.appendJSON("events/a", `3`)
	d := rc.next()
	if d.Body.Generation != s.Generation+1 || d.Body.Tail("events/a") != tail3 {
		t.Fatalf("recovery delivery = %+v", d.Body)
	}
	waitFor(t, func() bool {
		s := e.get("s")
		l, _ := s.link("events/a")
		return s.Status == "active" && l.Acked == tail3
	})
}

// TestWebhookRetryDelay: the schedule of §7.1, within its jitter.
func TestWebhookRetryDelay(t *testing.T) {
	t.Parallel()
	for n, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 6: 32 * time.Second, 7: time.Minute, 30: time.Minute, 1000: time.Minute} {
		for i := 0; i < 50; i++ {
			if d := webhookRetryDelay(n); d < base*8/10 || d > base*12/10 {
				t.Fatalf("retry %d after %v, want %v ±20%%", n, d, base)
			}
		}
	}
}

// TestWebhookURLValidation: §6.2 / §12.8. Without the loopback exception
// only https to public hosts passes; with it loopback passes too, and
// nothing else changes.
func TestWebhookURLValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url                string
		strict, withLoopbk bool // accepted without / with the exception
	}{
		{"https://hooks.example.com/h", true, true},
		{"https://93.184.216.34/h", true, true},
		{"https://[2606:4700::1111]/h", true, true},
		{"http://hooks.example.com/h", false, false},
		{"http://10.0.0.1/hook", false, false},
		{"https://10.0.0.1/hook", false, false},
		{"https://172.16.5.4/", false, false},
		{"https://172.31.255.255/", false, false},
		{"https://192.168.1.1/", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://100.64.0.1/", false, false},
		{"https://0.0.0.0/", false, false},
		{"https://[fd00::1]/", false, false},
		{"https://[fe80::1]/", false, false},
		{"https://[::ffff:10.0.0.1]/", false, false},
		{"https://[::]/", false, false},
		{"https://224.0.0.1/", false, false},
		{"https://metadata.google.internal/", false, false},
		{"https://printer.local/", false, false},
		{"https://intranet/", false, false},
		{"https://user:pw@hooks.example.com/", false, false},
		{"ftp://hooks.example.com/", false, false},
		{"hooks.example.com/h", false, false},
		{"", false, false},
		{"https://" + strings.Repeat("a", 2050) + ".com/", false, false},
		{"http://127.0.0.1:8080/h", false, true},
		{"http://127.0.0.2/h", false, true},
		{"http://localhost:3000/h", false, true},
		{"http://LOCALHOST./h", false, true},
		{"http://[::1]:80/h", false, true},
		{"https://127.0.0.1/h", false, true},
		{"http://app.localhost/h", false, true},
	}
	for _, c := range cases {
		if err := validateWebhookURL(c.url, false); (err == nil) != c.strict {
			t.Errorf("validateWebhookURL(%q, false) = %v, want accepted=%v", c.url, err, c.strict)
		}
		if err := validateWebhookURL(c.url, true); (err == nil) != c.withLoopbk {
			t.Errorf("validateWebhookURL(%q, true) = %v, want accepted=%v", c.url, err, c.withLoopbk)
		}
	}
	// Dial-time check: a name that resolves to a blocked address is refused.
	for _, c := range []struct {
		addr     string
		loopback bool
		ok       bool
	}{
		{"93.184.216.34:443", false, true},
		{"127.0.0.1:443", false, false},
		{"127.0.0.1:443", true, true},
		{"10.1.2.3:443", true, false},
		{"169.254.169.254:80", true, false},
		{"[::1]:443", false, false},
		{"[fd12::1]:443", true, false},
	} {
		if err := checkDialAddr(c.addr, c.loopback); (err == nil) != c.ok {
			t.Errorf("checkDialAddr(%s, %v) = %v, want ok=%v", c.addr, c.loopback, err, c.ok)
		}
	}
	// Through the API, without the exception.
	srv := newTestServer(t, WithSubscriptions(true))
	e := &subEnv{t: t, srv: srv}
	for _, u := range []string{"http://127.0.0.1:9/h", "https://10.0.0.1/h", "http://example.com/h"} {
		r := e.do("PUT", "subscriptions/s", "", webhookSub(u, ""))
		e.want(r, http.StatusBadRequest, "WEBHOOK_URL_REJECTED")
	}
	e.put("s", webhookSub("https://hooks.example.com/h", ""), 201)
}

// TestWebhookCallbackStopsRetries: a receiver that answered 500 but calls
// back for the wake has it: the retries stop and the status is active.
// A delivery on its way when the subscription is deleted changes nothing.
func TestWebhookCallbackStopsRetries(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, subtest.Reply{Status: 500})
	e := newSubEnv(t)
	e.put("s", webhookSub(rc.url(), ""), 201)
	tail := e.appendEvents(t, "events/a")
	d := rc.next()
	e.srv.RunTimers()
	if s := e.get("s"); s.Status != "failed" || s.NextAttempt == nil {
		t.Fatalf("after a 500: %+v", s)
	}
	r := call(t, "POST", d.Body.CallbackURL, hdrs{"Authorization": "Bearer " + d.Body.CallbackToken},
		ackBody(d.Body.WakeID, d.Body.Generation, false, [2]string{"events/a", tail}))
	mustStatus(t, r, 200)
	if s := e.get("s"); s.Status != "active" || s.NextAttempt != nil {
		t.Fatalf("after the callback: %+v", s)
	}
	e.clk.Advance(3 * time.Second) // past any retry, within the 5 s lease
	e.srv.RunTimers()
	if rc.count() != 1 {
		t.Fatalf("%d deliveries: retries went on after the callback", rc.count())
	}
	mustStatus(t, e.do("DELETE", "subscriptions/s", "", ""), 204)
	e.clk.Advance(time.Hour)
	e.srv.RunTimers()
	e.appendJSON("events/a", `2`)
	if rc.count() != 1 {
		t.Fatal("a deleted subscription was delivered")
	}
}
