package subscription

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/durablego/durable"
)

// maxWebhookBody bounds a webhook delivery's body.
const maxWebhookBody = 8 << 20

// Receiver is the http.Handler of a webhook subscription's deliveries.
// Mount it at the subscription's webhook URL.
//
// It verifies each delivery before anything else (see Verifier: the
// Webhook-Signature header over the raw body, the server's keys, the
// timestamp window, replays) and answers 401 without looking further when
// that fails. A verified wake is worked as a Worker works a claimed one:
// each pending stream is read from its acked offset and its messages
// handed to the handler in order; progress is acked through the
// subscription's callback endpoint (which also renews the lease, and a
// callback heartbeat keeps it while a handler takes long), and a callback
// with done ends the wake.
//
// By default the wake is worked before the delivery is answered (200 once
// the done callback is accepted). With WithAsync the delivery is answered
// 202 at once and the wake worked in the background; Close waits for it.
// A handler error acks the progress before the failed message and
// answers 500 (with WithAsync: lets the lease run out), so the server
// delivers the wake again after its retry backoff. A delivery of a wake
// already being worked is answered 409.
//
// The Receiver answers {"done":true} never: done travels by callback,
// whose wake id, generation and token the server checks (a done answer is
// not tied to a wake on every server).
type Receiver[T any] struct {
	c   *durable.Client
	v   *Verifier
	eng *engine[T]
	cfg config
	st  stats

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // background wakes

	mu      sync.Mutex
	closed  bool
	working map[string]bool          // wake ids being worked
	ttls    map[string]time.Duration // lease length per subscription
}

// NewReceiver returns a Receiver calling h with each message of the
// wakes it is delivered. Options: WithAsync, WithAcceptSubscriptions,
// WithMaxSkew, WithKeyRefresh, WithConcurrency, WithAckInterval,
// WithReaderOptions.
func NewReceiver[T any](c *durable.Client, h Handler[T], opts ...Option) (*Receiver[T], error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil Handler", durable.ErrInvalidArgument)
	}
	r, err := newReceiver[T](c, opts)
	if err != nil {
		return nil, err
	}
	r.eng.batch = 1
	r.eng.handle = func(ctx context.Context, b []Message[T]) error { return h(ctx, b[0]) }
	return r, nil
}

// NewBatchReceiver is NewReceiver with a handler of several messages of
// one stream at a time (WithBatchSize).
func NewBatchReceiver[T any](c *durable.Client, h BatchHandler[T], opts ...Option) (*Receiver[T], error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil BatchHandler", durable.ErrInvalidArgument)
	}
	r, err := newReceiver[T](c, opts)
	if err != nil {
		return nil, err
	}
	r.eng.copyData = true
	r.eng.handle = h
	return r, nil
}

func newReceiver[T any](c *durable.Client, opts []Option) (*Receiver[T], error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil Client", durable.ErrInvalidArgument)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	l, err := clientLink(c)
	if err != nil {
		return nil, err
	}
	r := &Receiver[T]{c: c, cfg: cfg, v: newVerifier(c, &cfg), working: map[string]bool{}, ttls: map[string]time.Duration{}}
	r.eng = newEngine[T](c, l, &cfg, &r.st)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// Stats returns what the Receiver did so far.
func (r *Receiver[T]) Stats() WorkerStats { return r.st.snapshot() }

// Close stops the Receiver: later deliveries are answered 503, wakes being
// worked stop (their progress is acked and their leases released) and
// Close waits for them.
func (r *Receiver[T]) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return nil
}

// webhookBody is the body of a webhook delivery.
type webhookBody struct {
	Subscription  string `json:"subscription_id"`
	WakeID        string `json:"wake_id"`
	Generation    int64  `json:"generation"`
	Streams       []Link `json:"streams"`
	CallbackURL   string `json:"callback_url"`
	CallbackToken Token  `json:"callback_token"`
}

// ServeHTTP implements http.Handler.
func (r *Receiver[T]) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxWebhookBody))
	if err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	signed, err := r.v.verify(req.Context(), req.Header.Get(SignatureHeader), body)
	if err != nil {
		r.eng.obs.failed(nil, "verify", err)
		status := http.StatusUnauthorized
		if !errors.Is(err, ErrSignature) {
			status = http.StatusServiceUnavailable // the keys could not be fetched
		}
		http.Error(w, "webhook signature rejected", status)
		return
	}
	wake, status, msg := r.decode(body)
	if status != 0 {
		http.Error(w, msg, status)
		return
	}
	if status, msg := r.start(wake); status != 0 {
		http.Error(w, msg, status)
		return
	}
	start := time.Now()
	if signed.Before(start) {
		start = signed // the lease began when the wake was sent
	}
	if r.cfg.async {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.work(wake, start)
		}()
		w.WriteHeader(http.StatusAccepted)
		return
	}
	out := r.work(wake, start)
	w.Header().Set("Content-Type", "application/json")
	if out.handler != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":"handler failed"}`))
		return
	}
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// decode reads a verified delivery's wake.
func (r *Receiver[T]) decode(body []byte) (*Wake, int, string) {
	var b webhookBody
	if err := json.Unmarshal(body, &b); err != nil || b.WakeID == "" || b.CallbackToken.IsZero() || checkID(b.Subscription) != nil {
		return nil, http.StatusBadRequest, "not a webhook wake"
	}
	if r.cfg.accept != nil && !r.cfg.accept[b.Subscription] {
		return nil, http.StatusForbidden, "subscription not served here"
	}
	w := &Wake{Subscription: b.Subscription, ID: b.WakeID, Generation: b.Generation, Token: b.CallbackToken,
		Links: b.Streams, CallbackURL: b.CallbackURL, webhook: true}
	return w, 0, ""
}

// start registers wake as being worked, or says why it cannot be.
func (r *Receiver[T]) start(wake *Wake) (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return http.StatusServiceUnavailable, "receiver closed"
	case r.working[wake.ID]:
		return http.StatusConflict, "wake already being worked"
	}
	r.working[wake.ID] = true
	return 0, ""
}

// work works one verified wake.
func (r *Receiver[T]) work(wake *Wake, start time.Time) outcome {
	defer func() {
		r.mu.Lock()
		delete(r.working, wake.ID)
		r.mu.Unlock()
	}()
	s := &Subscription{c: r.c, l: r.eng.l, id: wake.Subscription}
	r.eng.obs.claimed(wake)
	out := r.eng.work(r.ctx, s, wake, r.leaseTTL(s), start)
	if out.handler != nil {
		r.eng.obs.failed(wake, "handler", out.handler)
	}
	return out
}

// leaseTTL returns the subscription's lease length (read once), or the
// shortest a lease can be when it cannot be read, so that heartbeats are
// frequent enough whatever it is.
func (r *Receiver[T]) leaseTTL(s *Subscription) time.Duration {
	r.mu.Lock()
	ttl, ok := r.ttls[s.id]
	r.mu.Unlock()
	if ok {
		return ttl
	}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	info, err := s.Get(ctx)
	if err != nil || info.LeaseTTL <= 0 {
		return MinLeaseTTL
	}
	r.mu.Lock()
	r.ttls[s.id] = info.LeaseTTL
	r.mu.Unlock()
	return info.LeaseTTL
}
