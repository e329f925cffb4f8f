package testserver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Subscriptions (PROTOCOL.md §6–7), on with WithSubscriptions.
//
// A subscription links streams (matched by its glob pattern, or added
// explicitly) and keeps one acked offset per linked stream. When a linked
// stream's tail passes its acked offset the subscription has pending work,
// and unless a wake is already in flight the server issues a wake: the
// generation goes up by one and the wake gets a fresh id. A pull-wake
// subscription then writes a wake event to its wake stream and waits for
// a worker to claim it; a webhook subscription POSTs the signed wake to
// its URL. One lease per subscription: the claiming worker (or the
// webhook receiver) holds it for lease_ttl_ms, acks without done (or
// callbacks) renew it, and an ack with done, a release or the lease's
// expiry ends it; pending work left then issues the next wake. Every ack,
// release and callback carries the wake id, the generation and the token
// of the current wake, or is answered 409 FENCED.
//
// All subscription state is guarded by subManager.mu. Lock order:
// subManager.mu before Server.mu, never the other way round; stream
// handlers call into the manager only after releasing Server.mu.

// Defaults and bounds of subscriptions.
const (
	DefaultLeaseTTL        = 30 * time.Second // lease_ttl_ms when the request has none
	DefaultWebhookAttempts = 20               // delivery attempts of one wake, see WithWebhookRetry
	DefaultWebhookTimeout  = 10 * time.Second // one webhook delivery attempt, see WithWebhookRetry

	minLeaseTTL   = time.Second
	maxLeaseTTL   = 10 * time.Minute
	tokenLifetime = 24 * time.Hour // claim and callback tokens; the lease ends a wake long before
	maxSubIDLen   = 256
	maxWorkerLen  = 256
	maxSubBody    = 1 << 20
)

// Subscription types, statuses and link types as they appear on the wire.
const (
	subWebhook   = "webhook"
	subPullWake  = "pull-wake"
	statusActive = "active"
	statusFailed = "failed"
	linkGlob     = "glob"
	linkExplicit = "explicit"
)

// subsConfig is the subscription part of the server configuration.
type subsConfig struct {
	enabled  bool
	loopback bool          // accept webhook receivers on loopback (development, tests)
	attempts int           // delivery attempts per wake before it is dropped
	timeout  time.Duration // one delivery attempt
}

// WithSubscriptions turns on the subscription APIs of PROTOCOL.md §6–7
// under {prefix}__ds/: subscriptions with pull-wake leases and signed
// webhooks, and the signing keys at {prefix}__ds/jwks.json. Off by default:
// every __ds path then answers 404. With WithDataDir, subscriptions, their
// acked offsets, leases, retry schedules and the signing keys persist.
func WithSubscriptions(on bool) Option { return func(c *config) { c.subs.enabled = on } }

// WithLoopbackWebhooks lets webhook subscriptions deliver to receivers on
// this machine: http:// or https:// URLs whose host is localhost or a
// loopback address (127.0.0.0/8, ::1). This is the development exception
// of PROTOCOL.md §6.2 and §12.8, for tests and local development; it is
// off by default. Private, link-local and other local-network addresses
// and plain-http URLs to any other host are rejected either way.
func WithLoopbackWebhooks(on bool) Option { return func(c *config) { c.subs.loopback = on } }

// WithWebhookRetry sets how many delivery attempts one wake gets (default
// DefaultWebhookAttempts) and how long one attempt may take (default
// DefaultWebhookTimeout); zero or negative keeps a default. Between
// attempts the server waits 1 s, 2 s, 4 s ... up to 60 s, each ±20%
// (PROTOCOL.md §7.1), on the server's clock. While a retry is scheduled the
// subscription's status is "failed"; after the last attempt fails the wake
// is dropped (status stays "failed") and the next append to a linked
// stream, stream added, or re-confirming PUT issues a new wake. A
// delivery that succeeds sets the status back to "active".
func WithWebhookRetry(attempts int, timeout time.Duration) Option {
	return func(c *config) { c.subs.attempts, c.subs.timeout = attempts, timeout }
}

func (c *subsConfig) validate() {
	if c.attempts <= 0 {
		c.attempts = DefaultWebhookAttempts
	}
	if c.timeout <= 0 {
		c.timeout = DefaultWebhookTimeout
	}
}

// subConfig is a subscription's configuration as created, normalized:
// its hash decides between 200 and 409 on a repeated PUT.
type subConfig struct {
	Type        string   `json:"type"`
	Pattern     string   `json:"pattern,omitempty"`
	Streams     []string `json:"streams,omitempty"` // sorted, unique
	WebhookURL  string   `json:"webhook_url,omitempty"`
	WakeStream  string   `json:"wake_stream,omitempty"`
	LeaseTTLms  int64    `json:"lease_ttl_ms"`
	Description *string  `json:"description,omitempty"`
}

// hash is the SHA-256 of the canonical JSON of c (fields in a fixed order).
func (c *subConfig) hash() string {
	b, _ := json.Marshal(c) // plain strings and numbers: cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (c *subConfig) leaseTTL() time.Duration { return time.Duration(c.LeaseTTLms) * time.Millisecond }

// subLink is one linked stream: how it is linked and its acked position.
type subLink struct {
	Explicit bool  `json:"explicit,omitempty"`
	Glob     bool  `json:"glob,omitempty"`
	Acked    int64 `json:"acked"` // log position, inclusive "last processed" offset
}

func (l *subLink) linkType() string {
	if l.Explicit {
		return linkExplicit
	}
	return linkGlob
}

// wakeState is the wake in flight. A pull-wake wake is unclaimed until a
// worker claims it; a webhook wake is held by its receiver from issue.
type wakeState struct {
	ID         string           `json:"id"`
	Token      string           `json:"token,omitempty"`  // current claim / callback token
	Holder     string           `json:"holder,omitempty"` // claiming worker (pull-wake)
	Claimed    bool             `json:"claimed,omitempty"`
	LeaseUntil time.Time        `json:"lease_until"`        // zero: no lease running
	Snapshot   map[string]int64 `json:"snapshot,omitempty"` // tails when issued (webhook {"done":true})
	Attempts   int              `json:"attempts,omitempty"` // failed webhook deliveries of this wake
	NextTry    time.Time        `json:"next_attempt"`       // zero: no delivery scheduled

	delivering bool // a delivery attempt is on its way (not persisted)
}

// subscription is one subscription's whole state.
type subscription struct {
	ID         string              `json:"id"`
	Nonce      string              `json:"nonce"` // distinguishes a re-created subscription in tokens
	Config     subConfig           `json:"config"`
	Hash       string              `json:"hash"`
	CreatedAt  time.Time           `json:"created_at"`
	Status     string              `json:"status"`
	Generation int64               `json:"generation"`
	Links      map[string]*subLink `json:"links"`
	Wake       *wakeState          `json:"wake,omitempty"`
}

// subManager holds the subscriptions of a Server.
type subManager struct {
	s   *Server
	cfg subsConfig

	mu     sync.Mutex
	subs   map[string]*subscription
	keys   *keyRing
	active int        // delivery attempts on their way
	idle   *sync.Cond // signalled when active drops to zero
	closed bool

	kick   chan struct{} // wakes the scheduler after a change of due times
	work   sync.WaitGroup
	client *http.Client
	dir    string // <data dir>/subscriptions, "" in memory mode
}

// newSubManager loads (or initialises) the subscriptions and starts the
// scheduler. The server's streams are already loaded.
func newSubManager(s *Server) (*subManager, error) {
	cfg := s.cfg.subs
	cfg.validate()
	m := &subManager{
		s:    s,
		cfg:  cfg,
		subs: map[string]*subscription{},
		kick: make(chan struct{}, 1),
	}
	m.idle = sync.NewCond(&m.mu)
	m.client = newWebhookClient(cfg.loopback)
	if err := m.load(); err != nil {
		return nil, fmt.Errorf("load subscriptions: %w", err)
	}
	m.mu.Lock()
	now := s.cfg.clock()
	for _, sub := range m.subs {
		// Work that arrived just before a crash gets its wake now.
		expired := m.expireLocked(sub, now)
		if m.maybeWakeLocked(sub, now) || expired {
			_ = m.persistLocked(sub) // derived again on the next start
		}
	}
	m.mu.Unlock()
	m.work.Add(1)
	go m.schedule()
	return m, nil
}

// shutdown stops new deliveries and waits for the scheduler and every
// delivery on its way (the server's base context is already cancelled).
func (m *subManager) shutdown() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.work.Wait()
	m.client.CloseIdleConnections()
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return prefix + hex.EncodeToString(b[:])
}

// ---------------------------------------------------------------- streams

// tails returns the tail position of each path (0 for a stream that does
// not exist). Caller holds m.mu, not s.mu.
func (m *subManager) tails(paths []string) map[string]int64 {
	s := m.s
	now := s.cfg.clock()
	out := make(map[string]int64, len(paths))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range paths {
		if st, code := s.lookup(p, now); code == 0 {
			out[p] = st.tail()
		} else {
			out[p] = 0
		}
	}
	return out
}

// streamPaths lists every live stream path. Caller holds m.mu, not s.mu.
func (m *subManager) streamPaths() []string {
	s := m.s
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.streams))
	for p, st := range s.streams {
		if !st.softDeleted && !st.gone {
			out = append(out, p)
		}
	}
	return out
}

// streamInfo is one linked stream in a wake, a claim or a subscription.
type streamInfo struct {
	Path       string `json:"path"`
	LinkType   string `json:"link_type"`
	Acked      string `json:"acked_offset"`
	Tail       string `json:"tail_offset,omitempty"`
	HasPending *bool  `json:"has_pending,omitempty"`
}

// infos lists sub's links sorted by path, with tails when withTails.
// Caller holds m.mu.
func (m *subManager) infos(sub *subscription, withTails bool) ([]streamInfo, map[string]int64) {
	paths := sortedKeys(sub.Links)
	var tails map[string]int64
	if withTails {
		tails = m.tails(paths)
	}
	out := make([]streamInfo, 0, len(paths))
	for _, p := range paths {
		l := sub.Links[p]
		in := streamInfo{Path: p, LinkType: l.linkType(), Acked: formatOffset(l.Acked)}
		if withTails {
			pending := tails[p] > l.Acked
			in.Tail, in.HasPending = formatOffset(tails[p]), &pending
		}
		out = append(out, in)
	}
	return out, tails
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// firstPending returns the first linked stream (by path) with pending
// work, or "". Caller holds m.mu.
func (m *subManager) firstPending(sub *subscription) (string, map[string]int64) {
	paths := sortedKeys(sub.Links)
	tails := m.tails(paths)
	for _, p := range paths {
		if tails[p] > sub.Links[p].Acked {
			return p, tails
		}
	}
	return "", tails
}

// streamChanged is called after data landed on path (an append, or a new
// stream with its initial content), before the response goes out: a
// matching subscription links the stream at before (the tail before the
// data), and every subscription linking it is woken if idle.
func (m *subManager) streamChanged(path string, before int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.s.cfg.clock()
	for _, sub := range m.subs {
		l := sub.Links[path]
		changed := false
		if sub.Config.Pattern != "" && globMatch(sub.Config.Pattern, path) {
			if l == nil {
				l = &subLink{Acked: before}
				sub.Links[path] = l
			}
			if !l.Glob {
				l.Glob, changed = true, true
			}
		}
		if l == nil {
			continue
		}
		expired := m.expireLocked(sub, now)
		if m.maybeWakeLocked(sub, now) || expired || changed {
			_ = m.persistLocked(sub) // the append stands; a restart re-derives the wake
		}
	}
}

// streamDeleted drops the glob links of a deleted stream; an explicit link
// stays, its acked offset back at the start for a stream created again.
func (m *subManager) streamDeleted(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, sub := range m.subs {
		l := sub.Links[path]
		if l == nil {
			continue
		}
		if l.Explicit {
			l.Glob, l.Acked = false, 0
		} else {
			delete(sub.Links, path)
		}
		_ = m.persistLocked(sub) // the delete stands; a lost change re-links on the next append
	}
}

// link links paths explicitly or by glob at their current tails (a
// stream already linked keeps its acked offset). Caller holds m.mu.
func (m *subManager) link(sub *subscription, paths []string, explicit bool) {
	tails := m.tails(paths)
	for _, p := range paths {
		l := sub.Links[p]
		if l == nil {
			l = &subLink{Acked: tails[p]}
			sub.Links[p] = l
		}
		if explicit {
			l.Explicit = true
		}
		// A stream the pattern matches is glob-linked too, explicit or not,
		// so removing its explicit link keeps it (§6.1).
		l.Glob = l.Glob || !explicit || (sub.Config.Pattern != "" && globMatch(sub.Config.Pattern, p))
	}
}

// ---------------------------------------------------------------- management

// subError is an error answer of the subscription API.
type subError struct {
	status int
	code   string
	msg    string
	extra  map[string]any // more fields of the error object (ALREADY_CLAIMED)
}

func errInvalid(msg string) *subError {
	return &subError{status: http.StatusBadRequest, code: "INVALID_REQUEST", msg: msg}
}

var (
	errNoSub   = &subError{status: http.StatusNotFound, code: "SUBSCRIPTION_NOT_FOUND", msg: "subscription not found"}
	errStorage = &subError{status: http.StatusInternalServerError, code: "INTERNAL_ERROR", msg: "storage error"}
)

// persisted stores sub and answers a storage failure. Caller holds m.mu.
func (m *subManager) persisted(sub *subscription) *subError {
	if err := m.persistLocked(sub); err != nil {
		return errStorage
	}
	return nil
}

// put creates the subscription or re-confirms an identical one.
func (m *subManager) put(id string, cfg subConfig) (*subscription, bool, *subError) {
	if cfg.Type == subWebhook {
		if err := validateWebhookURL(cfg.WebhookURL, m.cfg.loopback); err != nil {
			return nil, false, &subError{status: http.StatusBadRequest, code: "WEBHOOK_URL_REJECTED", msg: err.Error()}
		}
	}
	hash := cfg.hash()
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.s.cfg.clock()
	if old := m.subs[id]; old != nil {
		if old.Hash != hash {
			return nil, false, &subError{status: http.StatusConflict, code: "SUBSCRIPTION_ALREADY_EXISTS",
				msg: "subscription exists with a different configuration"}
		}
		expired := m.expireLocked(old, now)
		if m.maybeWakeLocked(old, now) || expired { // recovery after a dropped wake
			if err := m.persistLocked(old); err != nil {
				return nil, false, errStorage
			}
		}
		return old, false, nil
	}
	sub := &subscription{
		ID: id, Nonce: newID(""), Config: cfg, Hash: hash,
		CreatedAt: now.UTC(), Status: statusActive, Links: map[string]*subLink{},
	}
	m.link(sub, cfg.Streams, true)
	if cfg.Pattern != "" {
		var matched []string
		for _, p := range m.streamPaths() {
			if globMatch(cfg.Pattern, p) {
				matched = append(matched, p)
			}
		}
		m.link(sub, matched, false)
	}
	if err := m.persistLocked(sub); err != nil {
		return nil, false, errStorage
	}
	m.subs[id] = sub
	return sub, true, nil
}

// remove tombstones a subscription: requests for it fail from now on and
// a delivery on its way is ignored when it returns.
func (m *subManager) remove(id string) *subError {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.subs[id]; !ok {
		return nil // deleting twice is not an error
	}
	if err := m.unstoreLocked(id); err != nil {
		return errStorage
	}
	delete(m.subs, id)
	m.poke()
	return nil
}

// addStreams links streams explicitly (§6.4).
func (m *subManager) addStreams(id string, paths []string) *subError {
	m.mu.Lock()
	defer m.mu.Unlock()
	sub := m.subs[id]
	if sub == nil {
		return errNoSub
	}
	m.link(sub, paths, true)
	now := m.s.cfg.clock()
	m.expireLocked(sub, now)
	m.maybeWakeLocked(sub, now)
	return m.persisted(sub)
}

// removeStream drops an explicit link; a glob link of a stream the
// pattern still matches stays.
func (m *subManager) removeStream(id, path string) *subError {
	m.mu.Lock()
	defer m.mu.Unlock()
	sub := m.subs[id]
	if sub == nil {
		return errNoSub
	}
	l := sub.Links[path]
	if l == nil || !l.Explicit {
		return nil
	}
	l.Explicit = false
	if !l.Glob {
		delete(sub.Links, path)
	}
	return m.persisted(sub)
}

// ---------------------------------------------------------------- wakes

// maybeWakeLocked issues a wake when sub is idle and has pending work.
// It reports whether it did; the caller persists sub. Caller holds m.mu.
func (m *subManager) maybeWakeLocked(sub *subscription, now time.Time) bool {
	if sub.Wake != nil {
		return false
	}
	first, tails := m.firstPending(sub)
	if first == "" {
		return false
	}
	sub.Generation++
	w := &wakeState{ID: newID("w_"), Snapshot: map[string]int64{}}
	for p := range sub.Links {
		w.Snapshot[p] = tails[p]
	}
	sub.Wake = w
	if sub.Config.Type == subWebhook {
		w.Token = m.issueToken(sub, now)
		w.NextTry = now
		m.startDeliveryLocked(sub, now)
	} else {
		m.writeWakeEvent(sub, first, now)
	}
	m.poke()
	return true
}

// endWakeLocked ends the current wake (done, release, expiry, a dropped
// webhook) and issues the next one if work is pending. It reports whether
// a next wake was issued; the caller persists sub. Caller holds m.mu.
func (m *subManager) endWakeLocked(sub *subscription, now time.Time) bool {
	sub.Wake = nil
	m.poke()
	return m.maybeWakeLocked(sub, now)
}

// expireLocked ends sub's wake if its lease ran out (§7.3) and reports
// whether it did; the caller persists sub. Caller holds m.mu.
func (m *subManager) expireLocked(sub *subscription, now time.Time) bool {
	w := sub.Wake
	if w == nil || w.LeaseUntil.IsZero() || now.Before(w.LeaseUntil) {
		return false
	}
	m.endWakeLocked(sub, now)
	return true
}

// writeWakeEvent appends a wake event to a pull-wake subscription's wake
// stream. A missing or closed wake stream gets none: workers can still
// claim (the application creates the wake stream, §7.2).
func (m *subManager) writeWakeEvent(sub *subscription, stream string, now time.Time) {
	ev, _ := json.Marshal(struct {
		Type         string `json:"type"`
		Subscription string `json:"subscription_id"`
		Stream       string `json:"stream"`
		Generation   int64  `json:"generation"`
		TS           int64  `json:"ts"`
	}{"wake", sub.ID, stream, sub.Generation, now.UnixMilli()})
	m.s.appendInternal(sub.Config.WakeStream, ev)
}

// appendInternal appends one server-written event to the stream at path:
// one message on a JSON stream, a line on any other. Subscriptions are not
// told about it (a wake event never wakes anyone). Caller holds
// subManager.mu, not s.mu.
func (s *Server) appendInternal(path string, event []byte) {
	s.mu.Lock()
	st, code := s.lookup(path, s.cfg.clock())
	if code != 0 || st.closed {
		s.mu.Unlock()
		return
	}
	q := &appendReq{ct: st.contentType, body: event}
	if st.isJSON {
		q.msgs = [][]byte{event}
	} else {
		q.body = append(slices.Clip(event), '\n')
	}
	_, syncLog, err := s.applyAppendLocked(st, q)
	s.mu.Unlock()
	if err == nil && syncLog != nil {
		_ = syncLog()
	}
}

// ---------------------------------------------------------------- claim, ack, release, callback

// claimResult is the answer to a successful claim (§7.2).
type claimResult struct {
	WakeID     string       `json:"wake_id"`
	Generation int64        `json:"generation"`
	Token      string       `json:"token"`
	Streams    []streamInfo `json:"streams"`
	LeaseTTLms int64        `json:"lease_ttl_ms"`
}

// claim hands the lease of a pull-wake subscription to worker.
func (m *subManager) claim(id, worker string) (*claimResult, *subError) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sub := m.subs[id]
	if sub == nil {
		return nil, errNoSub
	}
	if sub.Config.Type != subPullWake {
		return nil, errInvalid("subscription is not pull-wake")
	}
	now := m.s.cfg.clock()
	m.expireLocked(sub, now)
	if w := sub.Wake; w != nil && w.Claimed {
		return nil, &subError{status: http.StatusConflict, code: "ALREADY_CLAIMED", msg: "another worker holds the lease",
			extra: map[string]any{"current_holder": w.Holder, "generation": sub.Generation}}
	}
	if sub.Wake == nil && !m.maybeWakeLocked(sub, now) {
		if err := m.persisted(sub); err != nil { // an expiry above
			return nil, err
		}
		return nil, &subError{status: http.StatusConflict, code: "NO_PENDING_WORK", msg: "no linked stream has pending work"}
	}
	w := sub.Wake
	w.Claimed, w.Holder = true, worker
	w.Token = m.issueToken(sub, now)
	w.LeaseUntil = now.Add(sub.Config.leaseTTL())
	infos, _ := m.infos(sub, true)
	if err := m.persisted(sub); err != nil {
		return nil, err
	}
	m.poke()
	return &claimResult{WakeID: w.ID, Generation: sub.Generation, Token: w.Token,
		Streams: infos, LeaseTTLms: sub.Config.LeaseTTLms}, nil
}

// ackReq is the body of an ack, a release or a callback.
type ackReq struct {
	WakeID     string     `json:"wake_id"`
	Generation int64      `json:"generation"`
	Acks       []ackEntry `json:"acks"`
	Done       bool       `json:"done"`
}

type ackEntry struct {
	Stream string `json:"stream"`
	Offset string `json:"offset"`
}

// ackKind says which endpoint an ackReq came through.
type ackKind int

const (
	kindAck      ackKind = iota // pull-wake ack (heartbeat without done)
	kindRelease                 // pull-wake release
	kindCallback                // webhook callback
)

// ack applies an ack, a release or a callback and reports whether a next
// wake was issued.
func (m *subManager) ack(id, token string, kind ackKind, q *ackReq) (bool, *subError) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sub := m.subs[id]
	if sub == nil {
		return false, errNoSub
	}
	want := subPullWake
	if kind == kindCallback {
		want = subWebhook
	}
	if sub.Config.Type != want {
		return false, errInvalid("subscription is not " + want)
	}
	now := m.s.cfg.clock()
	if m.expireLocked(sub, now) {
		if err := m.persisted(sub); err != nil {
			return false, err
		}
	}
	if err := m.checkToken(sub, token, q, now); err != nil {
		return false, err
	}
	next := false
	switch {
	case kind == kindRelease:
		next = m.endWakeLocked(sub, now)
	default:
		if err := m.applyAcks(sub, q.Acks); err != nil {
			return false, err
		}
		w := sub.Wake
		if kind == kindCallback && (w.Attempts > 0 || !w.NextTry.IsZero()) {
			// The receiver has the wake after all: no more retries.
			w.Attempts, w.NextTry, sub.Status = 0, time.Time{}, statusActive
		}
		if q.Done {
			next = m.endWakeLocked(sub, now)
		} else {
			w.LeaseUntil = now.Add(sub.Config.leaseTTL())
			m.poke()
		}
	}
	return next, m.persisted(sub)
}

// checkToken checks the bearer token and fences a request that is not for
// the current wake (§7.3). Caller holds m.mu.
func (m *subManager) checkToken(sub *subscription, token string, q *ackReq, now time.Time) *subError {
	claims, code := m.verifyToken(sub, token, now)
	if code != "" {
		return &subError{status: http.StatusUnauthorized, code: code, msg: "invalid or expired token"}
	}
	w := sub.Wake
	fenced := w == nil || (sub.Config.Type == subPullWake && !w.Claimed) ||
		claims.Generation != sub.Generation || claims.Wake != w.ID ||
		q.Generation != sub.Generation || q.WakeID != w.ID
	if fenced {
		return &subError{status: http.StatusConflict, code: "FENCED", msg: "the wake is not current (stale generation, wake id or token)",
			extra: map[string]any{"generation": sub.Generation}}
	}
	return nil
}

// applyAcks checks every ack, then applies them all (or none). An ack
// names a linked stream and an offset of it between the acked offset and
// the tail, on a message boundary. Caller holds m.mu.
func (m *subManager) applyAcks(sub *subscription, acks []ackEntry) *subError {
	bad := func(msg string) *subError {
		return &subError{status: http.StatusConflict, code: "INVALID_OFFSET", msg: msg}
	}
	pos := make([]int64, len(acks))
	s := m.s
	now := s.cfg.clock()
	s.mu.Lock()
	for i, a := range acks {
		l := sub.Links[a.Stream]
		if l == nil {
			s.mu.Unlock()
			return bad("ack names a stream the subscription does not link: " + a.Stream)
		}
		p, ok := parseOffset(a.Offset)
		if !ok {
			s.mu.Unlock()
			return bad("ack offset is not an offset of this server")
		}
		tail, valid := int64(0), p == 0
		if st, code := s.lookup(a.Stream, now); code == 0 {
			tail, valid = st.tail(), st.validPos(p)
		}
		switch {
		case p < l.Acked:
			s.mu.Unlock()
			return bad("ack offset is before the acked offset")
		case p > tail:
			s.mu.Unlock()
			return bad("ack offset is beyond the stream's tail")
		case !valid:
			s.mu.Unlock()
			return bad("ack offset is not a message boundary")
		}
		pos[i] = p
	}
	s.mu.Unlock()
	for i, a := range acks {
		if l := sub.Links[a.Stream]; pos[i] > l.Acked {
			l.Acked = pos[i]
		}
	}
	return nil
}

// ---------------------------------------------------------------- timers

// RunTimers runs the subscription work that is due at the server clock's
// current time, as the server's own timers do: leases that ran out end
// (and issue the next wake when work is pending), and webhook retries
// whose time has come are sent. It returns when every webhook delivery on
// its way has been answered. Tests that set a clock with WithClock call it
// after moving the clock; without WithSubscriptions it does nothing.
func (s *Server) RunTimers() {
	m := s.subs
	if m == nil {
		return
	}
	m.mu.Lock()
	m.runDueLocked(s.cfg.clock())
	for m.active > 0 {
		m.idle.Wait()
	}
	m.mu.Unlock()
}

// runDueLocked expires leases and starts due deliveries, and returns when
// the next timer is due (zero: none). Caller holds m.mu.
func (m *subManager) runDueLocked(now time.Time) time.Time {
	var next time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, sub := range m.subs {
		if m.expireLocked(sub, now) {
			_ = m.persistLocked(sub) // a lost expiry repeats after a restart
		}
		w := sub.Wake
		if w == nil || w.delivering {
			continue
		}
		if !w.NextTry.IsZero() && !now.Before(w.NextTry) {
			m.startDeliveryLocked(sub, now)
			continue
		}
		soonest(w.LeaseUntil)
		soonest(w.NextTry)
	}
	return next
}

// poke tells the scheduler that due times changed.
func (m *subManager) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// schedule runs due work on real timers until the server closes. Due
// times are on the server's clock; a timer waits their distance from its
// current time (at most a minute, then it looks again).
func (m *subManager) schedule() {
	defer m.work.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		m.mu.Lock()
		now := m.s.cfg.clock()
		next := m.runDueLocked(now)
		m.mu.Unlock()
		d := time.Minute
		if !next.IsZero() {
			d = min(max(next.Sub(now), 0), time.Minute)
		}
		t.Reset(d)
		select {
		case <-t.C:
		case <-m.kick:
			t.Stop() // Go 1.23+ timers: Stop and Reset drop a pending value, no drain
		case <-m.s.baseCtx.Done():
			return
		}
	}
}

// ---------------------------------------------------------------- glob

// globMatch matches a stream path against a pattern of segments where "*"
// is any one segment and "**" any number of segments, zero included
// (§6.2); other segments match literally. It runs in time proportional to
// (pattern segments × path segments).
func globMatch(pattern, path string) bool {
	pat, segs := strings.Split(pattern, "/"), strings.Split(path, "/")
	// ok[j]: pat[:i] matches segs[:j], for the current i.
	ok := make([]bool, len(segs)+1)
	ok[0] = true
	for _, p := range pat {
		switch p {
		case "**":
			for j := 1; j <= len(segs); j++ {
				ok[j] = ok[j] || ok[j-1]
			}
		default:
			for j := len(segs); j >= 1; j-- {
				ok[j] = ok[j-1] && (p == "*" || p == segs[j-1])
			}
			ok[0] = false
		}
	}
	return ok[len(segs)]
}
