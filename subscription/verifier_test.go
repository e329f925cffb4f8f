package subscription

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
)

// delivery is one webhook request as it arrived.
type delivery struct {
	header string
	body   []byte
}

// hookRecorder is a webhook receiver that records deliveries and answers
// 200 without done.
type hookRecorder struct {
	srv *httptest.Server
	ch  chan delivery
}

func newHookRecorder(t *testing.T) *hookRecorder {
	h := &hookRecorder{ch: make(chan delivery, 64)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.ch <- delivery{header: r.Header.Get(SignatureHeader), body: b}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookRecorder) next(t *testing.T) delivery {
	t.Helper()
	select {
	case d := <-h.ch:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no webhook delivery")
		return delivery{}
	}
}

// webhookSub creates a webhook subscription over pattern delivering to url.
func (e *env) webhookSub(t *testing.T, pattern, url string) *Subscription {
	t.Helper()
	s, err := Open(e.c, name("hook"))
	require.NoError(t, err)
	_, _, err = s.Create(testCtx(t), Config{Type: Webhook, Pattern: pattern, WebhookURL: url})
	require.NoError(t, err)
	return s
}

// sign signs body at t with priv under kid, as the protocol says.
func sign(priv ed25519.PrivateKey, kid string, t int64, body []byte) string {
	ts := strconv.FormatInt(t, 10)
	sig := ed25519.Sign(priv, append([]byte(ts+"."), body...))
	return "t=" + ts + ",kid=" + kid + ",ed25519=" + base64.RawURLEncoding.EncodeToString(sig)
}

// settableClock is a clock for the Verifier.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func TestVerifierServerSignatures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	hook := newHookRecorder(t)
	e.createJSON(t, "hooked/a")
	e.webhookSub(t, "hooked/*", hook.srv.URL+"/hook")
	e.appendJSON(t, "hooked/a", 1)
	d := hook.next(t)

	clk := &settableClock{t: time.Now()}
	v, err := NewVerifier(e.c, withClock(clk.now))
	require.NoError(t, err)

	// A tampered body does not verify (and is not remembered as seen).
	tampered := append([]byte(nil), d.body...)
	tampered[len(tampered)/2] ^= 1
	require.ErrorIs(t, v.Verify(ctx, d.header, tampered), ErrBadSignature)

	// A stale timestamp is refused before anything else.
	sig, err := parseSignature(d.header)
	require.NoError(t, err)
	signedAt := time.Unix(sig.t, 0)
	clk.set(signedAt.Add(DefaultMaxSkew + 2*time.Second))
	require.ErrorIs(t, v.Verify(ctx, d.header, d.body), ErrStaleSignature)
	clk.set(signedAt.Add(-DefaultMaxSkew - 2*time.Second))
	require.ErrorIs(t, v.Verify(ctx, d.header, d.body), ErrStaleSignature)

	// The server's signature verifies, once.
	clk.set(signedAt.Add(time.Second))
	require.NoError(t, v.Verify(ctx, d.header, d.body))
	err = v.Verify(ctx, d.header, d.body)
	require.ErrorIs(t, err, ErrReplayed)
	require.ErrorIs(t, err, ErrSignature)

	// A key the server never published: unknown, even after a refresh.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	forged := sign(priv, "ds_forged", signedAt.Unix(), d.body)
	require.ErrorIs(t, v.Verify(ctx, forged, d.body), ErrUnknownKey)
	// A signature under the server's key id by another key: bad.
	forged = sign(priv, sig.kid, signedAt.Unix(), d.body)
	require.ErrorIs(t, v.Verify(ctx, forged, d.body), ErrBadSignature)
}

// TestVerifierKeyRotation: after the server rotates its key, deliveries
// signed with the new key verify (the key set is fetched again for the
// unknown key id), and those signed with the old key still do.
func TestVerifierKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	hook := newHookRecorder(t)
	e.createJSON(t, "rot/a", "rot/b")
	e.webhookSub(t, "rot/a", hook.srv.URL+"/a")
	e.webhookSub(t, "rot/b", hook.srv.URL+"/b")
	v, err := NewVerifier(e.c, WithKeyRefresh(0))
	require.NoError(t, err)

	e.appendJSON(t, "rot/a", 1)
	old := hook.next(t)
	kid, err := e.srv.RotateSigningKey()
	require.NoError(t, err)
	require.NoError(t, v.Verify(ctx, old.header, old.body), "first fetch already has both keys")
	e.appendJSON(t, "rot/b", 1)
	fresh := hook.next(t)
	assert.Contains(t, fresh.header, "kid="+kid)
	require.NoError(t, v.Verify(ctx, fresh.header, fresh.body), "unknown key id: the key set is fetched again")
}

func TestVerifierRefreshBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testCtx(t)
	clk := &settableClock{t: time.Now()}
	v, err := NewVerifier(e.c, withClock(clk.now), WithKeyRefresh(time.Minute))
	require.NoError(t, err)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	body := []byte(`{}`)
	before := e.srv.Requests("__ds/jwks.json", "GET")
	for i := range 20 {
		err := v.Verify(ctx, sign(priv, "ds_x"+strconv.Itoa(i), clk.now().Unix(), body), body)
		require.ErrorIs(t, err, ErrUnknownKey)
	}
	assert.LessOrEqual(t, e.srv.Requests("__ds/jwks.json", "GET")-before, 1, "unknown key ids fetch the key set at most once per refresh interval")
}

func TestVerifierOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, err := NewVerifier(nil)
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
	_, err = NewVerifier(e.c, WithMaxSkew(0))
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
	_, err = NewVerifier(e.c, WithKeyRefresh(-1))
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
	_, err = NewVerifier(e.c, nil)
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
}

func TestParseSignature(t *testing.T) {
	t.Parallel()
	sig := base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	good := []string{
		"t=1700000000,kid=ds_abc,ed25519=" + sig,
		"kid=ds_abc,ed25519=" + sig + ",t=1700000000",
		"t=1700000000, kid=ds_abc, ed25519=" + sig,
		"t=1700000000,kid=ds_abc,ed25519=" + sig + ",v2=whatever",
		"t=0,kid=k,ed25519=" + sig,
	}
	for _, h := range good {
		s, err := parseSignature(h)
		require.NoError(t, err, h)
		assert.Len(t, s.sig, 64)
	}
	bad := []string{
		"",
		"t=1700000000,kid=ds_abc",
		"t=1700000000,ed25519=" + sig,
		"kid=ds_abc,ed25519=" + sig,
		"t=-1,kid=k,ed25519=" + sig,
		"t=+1,kid=k,ed25519=" + sig,
		"t=01,kid=k,ed25519=" + sig,
		"t=1.5,kid=k,ed25519=" + sig,
		"t=99999999999999999999,kid=k,ed25519=" + sig,
		"t=1,t=2,kid=k,ed25519=" + sig,
		"t=1,kid=k,kid=j,ed25519=" + sig,
		"t=1,kid=k,ed25519=" + sig + ",ed25519=" + sig,
		"t=1,kid=,ed25519=" + sig,
		"t=1,kid=a b,ed25519=" + sig,
		"t=1,kid=k,ed25519=" + sig + "==",
		"t=1,kid=k,ed25519=" + base64.StdEncoding.EncodeToString(make([]byte, 64)),
		"t=1,kid=k,ed25519=" + base64.RawURLEncoding.EncodeToString(make([]byte, 63)),
		"t=1,kid=k,ed25519=" + sig + ",garbage",
		"t=1,kid=k,ed25519=" + sig + ",=x",
		"t=1,kid=k,ed25519=" + sig + "," + strings.Repeat("x=y,", 300),
	}
	for _, h := range bad {
		_, err := parseSignature(h)
		require.ErrorIs(t, err, ErrBadSignature, "%q", h)
	}
}

func FuzzParseSignature(f *testing.F) {
	sig := base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	f.Add("t=1700000000,kid=ds_abc,ed25519=" + sig)
	f.Add("kid=ds_abc,ed25519=" + sig + ",t=1700000000")
	f.Add("t=1,kid=k,ed25519=" + sig + ",v2=x")
	f.Add("t=01,kid=k,ed25519=")
	f.Add(",,,=")
	f.Fuzz(func(t *testing.T, h string) {
		s, err := parseSignature(h)
		if err != nil {
			if !strings.Contains(err.Error(), ErrBadSignature.Error()) {
				t.Fatalf("error %v does not wrap ErrBadSignature", err)
			}
			return
		}
		// Whatever parses is well-formed: the parts round-trip.
		if len(s.sig) != ed25519.SignatureSize || !decimal(s.ts) || !validKID(s.kid) {
			t.Fatalf("accepted %q as %+v", h, s)
		}
		if strconv.FormatInt(s.t, 10) != s.ts {
			t.Fatalf("t %d is not %q", s.t, s.ts)
		}
		again, err := parseSignature("t=" + s.ts + ",kid=" + s.kid + ",ed25519=" + base64.RawURLEncoding.EncodeToString(s.sig))
		if err != nil || again.t != s.t || again.kid != s.kid || string(again.sig) != string(s.sig) {
			t.Fatalf("canonical form of %q does not parse back: %v", h, err)
		}
	})
}
