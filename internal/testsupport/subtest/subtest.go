// Package subtest is test support for subscriptions (PROTOCOL.md §6–7):
// request bodies and a webhook receiver that records deliveries. It is
// used by the testserver's tests, the interop tests and the SDK's tests.
package subtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// AckBody renders the body of an ack, a release or a callback (§7.1,
// §7.2); each ack is {stream, offset}.
func AckBody(wakeID string, generation int64, done bool, acks ...[2]string) string {
	type ack struct {
		Stream string `json:"stream"`
		Offset string `json:"offset"`
	}
	b := struct {
		WakeID     string `json:"wake_id"`
		Generation int64  `json:"generation"`
		Acks       []ack  `json:"acks,omitempty"`
		Done       bool   `json:"done,omitempty"`
	}{WakeID: wakeID, Generation: generation, Done: done}
	for _, a := range acks {
		b.Acks = append(b.Acks, ack{a[0], a[1]})
	}
	out, _ := json.Marshal(b) // strings, numbers, bools: cannot fail
	return string(out)
}

// Link is one stream of a wake, a claim or a subscription.
type Link struct {
	Path       string `json:"path"`
	LinkType   string `json:"link_type"`
	Acked      string `json:"acked_offset"`
	Tail       string `json:"tail_offset"`
	HasPending bool   `json:"has_pending"`
}

// Wake is the body of a webhook delivery (§7.1).
type Wake struct {
	Subscription  string `json:"subscription_id"`
	WakeID        string `json:"wake_id"`
	Generation    int64  `json:"generation"`
	Streams       []Link `json:"streams"`
	CallbackURL   string `json:"callback_url"`
	CallbackToken string `json:"callback_token"`
}

// Tail returns the tail offset the wake shows for path ("" if absent).
func (w Wake) Tail(path string) string { return tailOf(w.Streams, path) }

// Claim is the answer to a successful claim (§7.2).
type Claim struct {
	WakeID     string `json:"wake_id"`
	Generation int64  `json:"generation"`
	Token      string `json:"token"`
	Streams    []Link `json:"streams"`
	LeaseTTLms int64  `json:"lease_ttl_ms"`
}

// Tail returns the tail offset the claim shows for path ("" if absent).
func (c Claim) Tail(path string) string { return tailOf(c.Streams, path) }

func tailOf(links []Link, path string) string {
	for _, l := range links {
		if l.Path == path {
			return l.Tail
		}
	}
	return ""
}

// Delivery is one webhook request as the receiver saw it.
type Delivery struct {
	Raw       []byte // the exact body
	Signature string // the Webhook-Signature header
	Body      Wake
}

// Reply is the receiver's answer to one delivery.
type Reply struct {
	Status int
	Body   string
}

// Receiver is a webhook receiver on 127.0.0.1 that records every delivery
// and answers each with the next scripted reply (the last one repeats).
type Receiver struct {
	srv *httptest.Server

	mu      sync.Mutex
	got     []Delivery
	replies []Reply
	changed chan struct{} // closed and replaced on every delivery
}

// NewReceiver starts a receiver; with no replies it answers 200 {}. Close
// it when done.
func NewReceiver(replies ...Reply) *Receiver {
	if len(replies) == 0 {
		replies = []Reply{{200, `{}`}}
	}
	rc := &Receiver{replies: replies, changed: make(chan struct{})}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	return rc
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	d := Delivery{Raw: raw, Signature: r.Header.Get("Webhook-Signature")}
	_ = json.Unmarshal(raw, &d.Body)
	rc.mu.Lock()
	rc.got = append(rc.got, d)
	rp := rc.replies[0]
	if len(rc.replies) > 1 {
		rc.replies = rc.replies[1:]
	}
	close(rc.changed)
	rc.changed = make(chan struct{})
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rp.Status)
	_, _ = io.WriteString(w, rp.Body)
}

// URL is the receiver's webhook URL.
func (rc *Receiver) URL() string { return rc.srv.URL + "/hook" }

// Close stops the receiver.
func (rc *Receiver) Close() { rc.srv.Close() }

// SetReplies replaces the scripted replies.
func (rc *Receiver) SetReplies(replies ...Reply) {
	rc.mu.Lock()
	rc.replies = replies
	rc.mu.Unlock()
}

// Count returns how many deliveries arrived.
func (rc *Receiver) Count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// Wait returns delivery n (0-based) once it has arrived, or false after d.
func (rc *Receiver) Wait(n int, d time.Duration) (Delivery, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		rc.mu.Lock()
		if len(rc.got) > n {
			defer rc.mu.Unlock()
			return rc.got[n], true
		}
		ch := rc.changed
		rc.mu.Unlock()
		select {
		case <-ch:
		case <-t.C:
			return Delivery{}, false
		}
	}
}
