package testserver

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// The subscription API under {prefix}__ds/ (PROTOCOL.md §6–7):
//
//	GET    jwks.json                              signing keys (§6.5)
//	PUT    subscriptions/:id                      create 201 / re-confirm 200 / 409 (§6.2)
//	GET    subscriptions/:id                      read (§6.3)
//	DELETE subscriptions/:id                      delete 204 (§6.3)
//	POST   subscriptions/:id/streams              add explicit streams 204 (§6.4)
//	DELETE subscriptions/:id/streams/:path        remove an explicit stream 204 (§6.4)
//	POST   subscriptions/:id/claim                claim the lease (§7.2)
//	POST   subscriptions/:id/ack                  ack, heartbeat, done (§7.2)
//	POST   subscriptions/:id/release              release 204 (§7.2)
//	POST   subscriptions/:id/callback             webhook callback (§7.1)
//
// Errors are {"error":{"code":C,"message":M}} with the status of the code:
// INVALID_REQUEST 400, WEBHOOK_URL_REJECTED 400, TOKEN_INVALID 401,
// TOKEN_EXPIRED 401, SUBSCRIPTION_NOT_FOUND 404, SUBSCRIPTION_ALREADY_EXISTS
// 409, ALREADY_CLAIMED 409 (with current_holder and generation), FENCED
// 409 (with generation), NO_PENDING_WORK 409, INVALID_OFFSET 409.

// dsRoutePath returns the escaped path of r after the prefix when it is
// under {prefix}__ds, for the subscription API.
func (s *Server) dsRoutePath(r *http.Request) (string, bool) {
	raw := r.URL.EscapedPath()
	base := s.cfg.prefix + reservedSegment
	if raw == base || strings.HasPrefix(raw, base+"/") {
		return raw[len(s.cfg.prefix):], true
	}
	return "", false
}

// isDSPath reports whether a path relative to the prefix is under __ds.
func isDSPath(p string) bool {
	return p == reservedSegment || strings.HasPrefix(p, reservedSegment+"/")
}

// serve answers one request of the subscription API; path is escaped,
// relative to the prefix, and starts with "__ds".
func (m *subManager) serve(w http.ResponseWriter, r *http.Request, path string) {
	segs := strings.Split(path, "/")[1:]
	w.Header().Set("Cache-Control", "no-store")
	if len(segs) == 1 && segs[0] == "jwks.json" {
		if !allowMethod(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		m.serveJWKS(w)
		return
	}
	if len(segs) == 1 && segs[0] == "subscriptions" {
		if allowMethod(w, r, http.MethodGet, http.MethodHead) {
			m.serveList(w) // a testserver extension (subscriptions_list.go)
		}
		return
	}
	if len(segs) < 2 || segs[0] != "subscriptions" {
		writeSubError(w, &subError{status: http.StatusNotFound, code: "NOT_FOUND", msg: "no such control route"})
		return
	}
	id, err := url.PathUnescape(segs[1])
	if err != nil || !validSubID(id) {
		writeSubError(w, errInvalid("invalid subscription id"))
		return
	}
	switch action := segs[2:]; {
	case len(action) == 0:
		m.serveSubscription(w, r, id)
	case action[0] == "streams" && len(action) == 1:
		if allowMethod(w, r, http.MethodPost) {
			m.serveAddStreams(w, r, id)
		}
	case action[0] == "streams":
		if allowMethod(w, r, http.MethodDelete) {
			m.serveRemoveStream(w, id, strings.Join(action[1:], "/"))
		}
	case len(action) == 1 && action[0] == "claim":
		if allowMethod(w, r, http.MethodPost) {
			m.serveClaim(w, r, id)
		}
	case len(action) == 1 && action[0] == "ack":
		m.serveAck(w, r, id, kindAck)
	case len(action) == 1 && action[0] == "release":
		m.serveAck(w, r, id, kindRelease)
	case len(action) == 1 && action[0] == "callback":
		m.serveAck(w, r, id, kindCallback)
	default:
		writeSubError(w, &subError{status: http.StatusNotFound, code: "NOT_FOUND", msg: "no such control route"})
	}
}

// allowMethod answers 405 unless r uses one of methods.
func allowMethod(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeSubError(w, &subError{status: http.StatusMethodNotAllowed, code: "METHOD_NOT_ALLOWED", msg: "method not allowed"})
	return false
}

func validSubID(id string) bool {
	if id == "" || len(id) > maxSubIDLen || strings.Contains(id, "/") {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // only types of this file: cannot fail
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeSubError(w http.ResponseWriter, e *subError) {
	obj := map[string]any{"code": e.code, "message": e.msg}
	for k, v := range e.extra {
		obj[k] = v
	}
	writeJSON(w, e.status, map[string]any{"error": obj})
}

// readJSON reads a JSON request body (at most maxSubBody bytes) into v;
// an empty body leaves v as it is.
func readJSON(w http.ResponseWriter, r *http.Request, v any) *subError {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSubBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &subError{status: http.StatusRequestEntityTooLarge, code: "INVALID_REQUEST", msg: "request body too large"}
		}
		return errInvalid("cannot read request body")
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errInvalid("invalid JSON body: " + err.Error())
	}
	return nil
}

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	return tok, ok && strings.EqualFold(scheme, "Bearer") && tok != ""
}

// ---------------------------------------------------------------- handlers

func (m *subManager) serveJWKS(w http.ResponseWriter) {
	m.mu.Lock()
	keys := m.keys.jwks(m.s.cfg.clock())
	m.mu.Unlock()
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Type", "application/jwk-set+json")
	b, _ := json.Marshal(map[string]any{"keys": keys})
	_, _ = w.Write(b)
}

func (m *subManager) serveSubscription(w http.ResponseWriter, r *http.Request, id string) {
	switch r.Method {
	case http.MethodPut:
		var body createBody
		if e := readJSON(w, r, &body); e != nil {
			writeSubError(w, e)
			return
		}
		cfg, e := body.config()
		if e != nil {
			writeSubError(w, e)
			return
		}
		sub, created, e := m.put(id, cfg)
		if e != nil {
			writeSubError(w, e)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		m.writeSubscription(w, status, sub)
	case http.MethodGet:
		m.mu.Lock()
		sub := m.subs[id]
		m.mu.Unlock()
		if sub == nil {
			writeSubError(w, errNoSub)
			return
		}
		m.writeSubscription(w, http.StatusOK, sub)
	case http.MethodDelete:
		if e := m.remove(id); e != nil {
			writeSubError(w, e)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		allowMethod(w, r, http.MethodPut, http.MethodGet, http.MethodDelete)
	}
}

// subView is a subscription as the API shows it (§6.3).
type subView struct {
	ID          string       `json:"id"`
	SubID       string       `json:"subscription_id"`
	Type        string       `json:"type"`
	Pattern     *string      `json:"pattern"`
	Streams     []streamInfo `json:"streams"`
	Webhook     *webhookView `json:"webhook"`
	WakeStream  *string      `json:"wake_stream"`
	LeaseTTLms  int64        `json:"lease_ttl_ms"`
	CreatedAt   string       `json:"created_at"`
	Status      string       `json:"status"`
	Description *string      `json:"description"`
	Generation  int64        `json:"generation"`
	NextAttempt *string      `json:"next_attempt_at,omitempty"`
	Lease       *leaseView   `json:"lease,omitempty"` // a testserver extension (subscriptions_list.go)
}

type webhookView struct {
	URL     string `json:"url"`
	Signing struct {
		Alg     string `json:"alg"`
		KID     string `json:"kid"`
		JWKSURL string `json:"jwks_url"`
	} `json:"signing"`
}

// writeSubscription answers with sub's view. It takes m.mu.
func (m *subManager) writeSubscription(w http.ResponseWriter, status int, sub *subscription) {
	m.mu.Lock()
	if m.subs[sub.ID] != sub {
		m.mu.Unlock()
		writeSubError(w, errNoSub) // deleted meanwhile
		return
	}
	v := m.viewLocked(sub)
	m.mu.Unlock()
	writeJSON(w, status, v)
}

// viewLocked returns sub as the API shows it. Caller holds m.mu.
func (m *subManager) viewLocked(sub *subscription) subView {
	c := sub.Config
	v := subView{
		ID: sub.ID, SubID: sub.ID, Type: c.Type, LeaseTTLms: c.LeaseTTLms,
		CreatedAt: sub.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z"),
		Status:    sub.Status, Description: c.Description, Generation: sub.Generation,
	}
	v.Streams, _ = m.infos(sub, false)
	if c.Pattern != "" {
		v.Pattern = &c.Pattern
	}
	if c.WakeStream != "" {
		v.WakeStream = &c.WakeStream
	}
	if c.Type == subWebhook {
		v.Webhook = &webhookView{URL: c.WebhookURL}
		v.Webhook.Signing.Alg = "ed25519"
		v.Webhook.Signing.KID = m.keys.active().KID
		v.Webhook.Signing.JWKSURL = m.s.dsURL("jwks.json")
	}
	if sub.Wake != nil && !sub.Wake.NextTry.IsZero() {
		t := sub.Wake.NextTry.UTC().Format("2006-01-02T15:04:05.000Z")
		v.NextAttempt = &t
	}
	v.Lease = leaseOf(sub.Wake)
	return v
}

func (m *subManager) serveAddStreams(w http.ResponseWriter, r *http.Request, id string) {
	var body struct {
		Streams []string `json:"streams"`
	}
	if e := readJSON(w, r, &body); e != nil {
		writeSubError(w, e)
		return
	}
	if len(body.Streams) == 0 {
		writeSubError(w, errInvalid("streams must be a non-empty array of stream paths"))
		return
	}
	paths, e := normalizeStreams(body.Streams)
	if e != nil {
		writeSubError(w, e)
		return
	}
	if e := m.addStreams(id, paths); e != nil {
		writeSubError(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (m *subManager) serveRemoveStream(w http.ResponseWriter, id, escaped string) {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		writeSubError(w, errInvalid("invalid stream path encoding"))
		return
	}
	p, e := normalizeStreamPath(p)
	if e != nil {
		writeSubError(w, e)
		return
	}
	if e := m.removeStream(id, p); e != nil {
		writeSubError(w, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (m *subManager) serveClaim(w http.ResponseWriter, r *http.Request, id string) {
	var body struct {
		Worker string `json:"worker"`
	}
	if e := readJSON(w, r, &body); e != nil {
		writeSubError(w, e)
		return
	}
	if body.Worker == "" || len(body.Worker) > maxWorkerLen {
		writeSubError(w, errInvalid("worker must be a non-empty string of at most 256 bytes"))
		return
	}
	res, e := m.claim(id, body.Worker)
	if e != nil {
		writeSubError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (m *subManager) serveAck(w http.ResponseWriter, r *http.Request, id string, kind ackKind) {
	if !allowMethod(w, r, http.MethodPost) {
		return
	}
	var body ackReq
	if e := readJSON(w, r, &body); e != nil {
		writeSubError(w, e)
		return
	}
	if e := body.validate(); e != nil {
		writeSubError(w, e)
		return
	}
	token, ok := bearer(r)
	if !ok {
		writeSubError(w, &subError{status: http.StatusUnauthorized, code: "TOKEN_INVALID", msg: "missing Authorization: Bearer token"})
		return
	}
	next, e := m.ack(id, token, kind, &body)
	if e != nil {
		writeSubError(w, e)
		return
	}
	if kind == kindRelease {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		OK       bool `json:"ok"`
		NextWake bool `json:"next_wake"`
	}{true, next})
}

// validate checks the shape of an ack body: every ack names a stream and
// an offset. The stream paths are normalized.
func (q *ackReq) validate() *subError {
	for i := range q.Acks {
		a := &q.Acks[i]
		if a.Stream == "" || a.Offset == "" {
			return errInvalid("every ack needs a stream and an offset")
		}
		p, e := normalizeStreamPath(a.Stream)
		if e != nil {
			return e
		}
		a.Stream = p
	}
	return nil
}

// ---------------------------------------------------------------- create body

// createBody is the body of PUT subscriptions/:id (§6.2).
type createBody struct {
	Type    string   `json:"type"`
	Pattern *string  `json:"pattern"`
	Streams []string `json:"streams"`
	Webhook *struct {
		URL string `json:"url"`
	} `json:"webhook"`
	WakeStream  *string `json:"wake_stream"`
	LeaseTTLms  *int64  `json:"lease_ttl_ms"`
	Description *string `json:"description"`
}

// config validates the body and returns the normalized configuration.
func (b *createBody) config() (subConfig, *subError) {
	c := subConfig{Type: b.Type, LeaseTTLms: DefaultLeaseTTL.Milliseconds(), Description: b.Description}
	if c.Type != subWebhook && c.Type != subPullWake {
		return c, errInvalid(`type must be "webhook" or "pull-wake"`)
	}
	if b.Pattern != nil && *b.Pattern != "" {
		p, e := normalizePattern(*b.Pattern)
		if e != nil {
			return c, e
		}
		c.Pattern = p
	}
	streams, e := normalizeStreams(b.Streams)
	if e != nil {
		return c, e
	}
	c.Streams = streams
	if c.Pattern == "" && len(c.Streams) == 0 {
		return c, errInvalid("at least one of pattern or streams is required")
	}
	if b.LeaseTTLms != nil {
		ttl := time.Duration(*b.LeaseTTLms) * time.Millisecond
		if *b.LeaseTTLms < minLeaseTTL.Milliseconds() || ttl > maxLeaseTTL {
			return c, errInvalid("lease_ttl_ms must be from 1000 to 600000")
		}
		c.LeaseTTLms = *b.LeaseTTLms
	}
	if b.WakeStream != nil && *b.WakeStream != "" {
		p, e := normalizeStreamPath(*b.WakeStream)
		if e != nil {
			return c, e
		}
		c.WakeStream = p
	}
	switch c.Type {
	case subWebhook:
		if b.Webhook == nil || b.Webhook.URL == "" {
			return c, errInvalid("webhook subscriptions need webhook.url")
		}
		c.WebhookURL = b.Webhook.URL
	case subPullWake:
		if b.Webhook != nil {
			return c, errInvalid("pull-wake subscriptions take no webhook")
		}
		if c.WakeStream == "" {
			return c, errInvalid("pull-wake subscriptions need wake_stream")
		}
	}
	return c, nil
}

// normalizeStreamPath trims surrounding slashes from a stream path and
// checks it like a stream URL's path.
func normalizeStreamPath(p string) (string, *subError) {
	p = strings.Trim(p, "/")
	if _, status, msg := validateStreamPath(p); status != 0 {
		return "", errInvalid("invalid stream path " + quoteShort(p) + ": " + msg)
	}
	return p, nil
}

// normalizeStreams normalizes, sorts and de-duplicates stream paths.
func normalizeStreams(in []string) ([]string, *subError) {
	seen := map[string]bool{}
	var out []string
	for _, p := range in {
		n, e := normalizeStreamPath(p)
		if e != nil {
			return nil, e
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}

// normalizePattern checks a glob pattern: stream path segments, "*" and
// "**" (runs of "**" collapse into one).
func normalizePattern(p string) (string, *subError) {
	p = strings.Trim(p, "/")
	segs := strings.Split(p, "/")
	out := segs[:0]
	for _, seg := range segs {
		if seg == "**" && len(out) > 0 && out[len(out)-1] == "**" {
			continue
		}
		out = append(out, seg)
	}
	p = strings.Join(out, "/")
	if _, status, msg := validateStreamPath(p); status != 0 && status != http.StatusNotFound {
		return "", errInvalid("invalid pattern " + quoteShort(p) + ": " + msg)
	}
	if p == "" {
		return "", errInvalid("empty pattern")
	}
	return p, nil
}

func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	b, _ := json.Marshal(s)
	return string(b)
}
