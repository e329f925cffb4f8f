package subscription

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable"
)

// tee serves h and keeps a copy of every request it gets.
type tee struct {
	h    http.Handler
	mu   sync.Mutex
	reqs []delivery
}

func (tt *tee) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	tt.mu.Lock()
	tt.reqs = append(tt.reqs, delivery{header: r.Header.Get(SignatureHeader), body: b})
	tt.mu.Unlock()
	r.Body = io.NopCloser(bytes.NewReader(b))
	tt.h.ServeHTTP(w, r)
}

func (tt *tee) first() delivery {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	return tt.reqs[0]
}

// mount serves h on a loopback URL for the test.
func mount(t *testing.T, h http.Handler) (*tee, string) {
	t.Helper()
	tt := &tee{h: h}
	srv := httptest.NewServer(tt)
	t.Cleanup(srv.Close)
	return tt, srv.URL + "/hook"
}

// post sends a delivery to h directly and returns the status.
func post(h http.Handler, d delivery) int {
	req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(d.body))
	if d.header != "" {
		req.Header.Set(SignatureHeader, d.header)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func TestReceiverWorksWakes(t *testing.T) {
	t.Parallel()
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			p := name("rw")
			streams := []string{p + "/a", p + "/b"}
			e.createJSON(t, streams...)
			rec := newRecorder()
			var opts []Option
			if async {
				opts = append(opts, WithAsync())
			}
			r, err := NewReceiver(e.c, func(ctx context.Context, m Message[item]) error {
				rec.add(m)
				return nil
			}, opts...)
			require.NoError(t, err)
			defer r.Close()
			_, url := mount(t, r)
			s := e.webhookSub(t, p+"/*", url)
			tails := e.fill(t, streams, 15)
			rec.waitDistinct(t, streams, 15)
			waitAcked(t, s, tails)
			require.NoError(t, r.Close())
			rec.checkOrder(t)
			for _, st := range streams {
				assert.Len(t, rec.seen[st], 15, "each message once: %v", rec.seen[st])
			}
			info, err := s.Get(testCtx(t))
			require.NoError(t, err)
			assert.Equal(t, StatusActive, info.Status)
			assert.EqualValues(t, 30, r.Stats().Handled)
		})
	}
}

// hookSetup makes a webhook subscription over a fresh stream, delivering
// to a Receiver of h mounted on a loopback server.
func hookSetup(t *testing.T, prefix string, h Handler[item], opts ...Option) (e *env, r *Receiver[item], tt *tee, s *Subscription, stream string) {
	t.Helper()
	e = newEnv(t)
	p := name(prefix)
	stream = p + "/a"
	e.createJSON(t, stream)
	r, err := NewReceiver(e.c, h, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	tt, url := mount(t, r)
	s = e.webhookSub(t, p+"/*", url)
	return e, r, tt, s, stream
}

// TestReceiverRejectsBeforeHandling: a tampered body, an unknown key, a
// stale timestamp, a replayed delivery and a missing signature are all
// refused with 401, and the handler is never called for them.
func TestReceiverRejectsBeforeHandling(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	h := func(ctx context.Context, m Message[item]) error { calls.Add(1); return nil }
	e, r, tt, s, stream := hookSetup(t, "rj", h)
	tails := e.fill(t, []string{stream}, 1)
	waitAcked(t, s, tails)
	require.EqualValues(t, 1, calls.Load())
	d := tt.first()

	tampered := delivery{header: d.header, body: bytes.Replace(d.body, []byte(`"generation":`), []byte(`"generation":9`), 1)}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	sig, err := parseSignature(d.header)
	require.NoError(t, err)
	forged := delivery{header: sign(priv, "ds_unknown", time.Now().Unix(), d.body), body: d.body}
	wrongKey := delivery{header: sign(priv, sig.kid, time.Now().Unix(), d.body), body: d.body}
	for name, bad := range map[string]delivery{
		"replayed": d, "tampered": tampered, "unknown key": forged, "wrong key": wrongKey,
		"unsigned": {body: d.body}, "garbage header": {header: "t=1,kid=x", body: d.body},
	} {
		assert.Equal(t, http.StatusUnauthorized, post(r, bad), name)
	}

	late, err := NewReceiver(e.c, h, withClock(func() time.Time { return time.Unix(sig.t, 0).Add(6 * time.Minute) }))
	require.NoError(t, err)
	defer late.Close()
	assert.Equal(t, http.StatusUnauthorized, post(late, d), "stale")
	early, err := NewReceiver(e.c, h, withClock(func() time.Time { return time.Unix(sig.t, 0).Add(-6 * time.Minute) }))
	require.NoError(t, err)
	defer early.Close()
	assert.Equal(t, http.StatusUnauthorized, post(early, d), "from the future")

	assert.EqualValues(t, 1, calls.Load(), "the handler saw only the genuine delivery")
	req := httptest.NewRequest(http.MethodGet, "/hook", nil)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
}

// TestReceiverHandlerErrorRetried: a handler error answers 500; the
// server delivers the wake again after its backoff and the message is
// handled then.
func TestReceiverHandlerErrorRetried(t *testing.T) {
	t.Parallel()
	var fails atomic.Int64
	rec := newRecorder()
	e, r, tt, s, stream := hookSetup(t, "rr", func(ctx context.Context, m Message[item]) error {
		if m.Value.Seq == 2 && fails.Add(1) == 1 {
			return errors.New("transient trouble")
		}
		rec.add(m)
		return nil
	})
	tails := e.fill(t, []string{stream}, 3)
	waitAcked(t, s, tails)
	rec.waitDistinct(t, []string{stream}, 3)
	tt.mu.Lock()
	n := len(tt.reqs)
	tt.mu.Unlock()
	assert.GreaterOrEqual(t, n, 2, "delivered again after the 500")
	assert.EqualValues(t, 1, r.Stats().HandlerErrors)
}

// TestReceiverOthersRefused: WithAcceptSubscriptions refuses verified
// deliveries of other subscriptions (403) and a closed Receiver answers
// 503.
func TestReceiverOthersRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	p := name("ro")
	e.createJSON(t, p+"/a")
	var calls atomic.Int64
	r, err := NewReceiver(e.c, func(ctx context.Context, m Message[item]) error { calls.Add(1); return nil },
		WithAcceptSubscriptions("someone-else"))
	require.NoError(t, err)
	defer r.Close()
	rec := newHookRecorder(t)
	s := e.webhookSub(t, p+"/*", rec.srv.URL+"/hook")
	e.fill(t, []string{p + "/a"}, 1)
	d := rec.next(t)
	assert.Equal(t, http.StatusForbidden, post(r, d))
	assert.Zero(t, calls.Load())
	require.NoError(t, s.Delete(testCtx(t)))

	// A closed Receiver answers 503 to a verified delivery.
	closed, err := NewReceiver(e.c, func(ctx context.Context, m Message[item]) error { calls.Add(1); return nil })
	require.NoError(t, err)
	require.NoError(t, closed.Close())
	s2 := e.webhookSub(t, p+"/*", rec.srv.URL+"/hook2")
	e.fill(t, []string{p + "/a"}, 1)
	d2 := rec.next(t)
	for bytes.Contains(d2.body, []byte(`"subscription_id":"`+s.ID()+`"`)) { // the deleted one's last delivery
		d2 = rec.next(t)
	}
	assert.Equal(t, http.StatusServiceUnavailable, post(closed, d2))
	assert.Zero(t, calls.Load())
	require.NoError(t, s2.Delete(testCtx(t)))

	_, err = NewReceiver[item](e.c, nil)
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
	_, err = NewReceiver(e.c, func(context.Context, Message[item]) error { return nil }, WithAcceptSubscriptions())
	require.ErrorIs(t, err, durable.ErrInvalidArgument)
}
