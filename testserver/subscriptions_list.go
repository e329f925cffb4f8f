package testserver

import "net/http"

// Two testserver extensions of the subscription API, for tools that show a
// server's subscriptions (the Test UI of `durable serve`); PROTOCOL.md reads
// subscriptions one id at a time and keeps leases to itself:
//
//	GET {prefix}__ds/subscriptions   → {"subscriptions": [view, ...]} sorted by id
//
// and a subscription's view (here and in GET subscriptions/:id) carries the
// wake in flight, when there is one:
//
//	"lease": {"wake_id": "w_…", "claimed": true, "holder": "worker-1",
//	          "expires_at": "2026-01-02T03:04:05.000Z"}
//
// holder is the pull-wake worker that claimed the wake; expires_at is when
// the lease ends unless extended (absent while no lease runs, e.g. a wake
// not claimed yet). Tokens are never shown.

// leaseView is the wake in flight of a subscription.
type leaseView struct {
	WakeID    string  `json:"wake_id"`
	Claimed   bool    `json:"claimed"`
	Holder    string  `json:"holder,omitempty"`
	ExpiresAt *string `json:"expires_at,omitempty"`
}

// leaseOf returns the view of wake, nil when no wake is in flight.
func leaseOf(wake *wakeState) *leaseView {
	if wake == nil {
		return nil
	}
	l := &leaseView{WakeID: wake.ID, Claimed: wake.Claimed, Holder: wake.Holder}
	if !wake.LeaseUntil.IsZero() {
		t := wake.LeaseUntil.UTC().Format("2006-01-02T15:04:05.000Z")
		l.ExpiresAt = &t
	}
	return l
}

// serveList answers GET {prefix}__ds/subscriptions.
func (m *subManager) serveList(w http.ResponseWriter) {
	m.mu.Lock()
	views := make([]subView, 0, len(m.subs))
	for _, id := range sortedKeys(m.subs) {
		views = append(views, m.viewLocked(m.subs[id]))
	}
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, struct {
		Subscriptions []subView `json:"subscriptions"`
	}{views})
}
