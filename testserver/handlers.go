package testserver

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

const defaultContentType = "application/octet-stream"

func isJSONType(ct string) bool { return protocol.IsJSON(ct) }

// sameType reports whether two content types name the same media type
// (compared case-insensitively, parameters ignored).
func sameType(a, b string) bool { return protocol.BaseMediaType(a) == protocol.BaseMediaType(b) }

// validMediaType reports whether ct looks like type/subtype.
func validMediaType(ct string) bool {
	b := protocol.BaseMediaType(ct)
	i := strings.IndexByte(b, '/')
	return i > 0 && i < len(b)-1 && !strings.ContainsAny(b, " \t")
}

// readBody reads the whole request body within the configured limit.
// It reports 413 when the body is too large.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, int, string) {
	if r.ContentLength > s.cfg.maxBodySize {
		return nil, http.StatusRequestEntityTooLarge, "request body too large"
	}
	var body []byte
	var err error
	if r.ContentLength >= 0 {
		// Known length (already checked against the limit): one exact
		// allocation; net/http stops the body at Content-Length.
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.maxBodySize))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, http.StatusRequestEntityTooLarge, "request body too large"
		}
		return nil, http.StatusBadRequest, "cannot read request body"
	}
	return body, 0, ""
}

// lookup returns the live stream at path, or the status to answer with:
// 404 (missing or expired) or 410 (soft-deleted). Expired streams are
// removed here. Caller holds s.mu.
func (s *Server) lookup(path string, now time.Time) (*stream, int) {
	st := s.streams[path]
	if st == nil {
		return nil, http.StatusNotFound
	}
	if st.softDeleted {
		return nil, http.StatusGone
	}
	if st.expired(now) {
		if st.refs > 0 {
			// Expired while forks still read its data: soft-deleted.
			_ = s.softDeleteLocked(st, now)
			return nil, http.StatusGone
		}
		s.removeLocked(st, now)
		return nil, http.StatusNotFound
	}
	return st, 0
}

// hdr returns the values of header name and whether it is present.
func hdr(h http.Header, name string) ([]string, bool) {
	vs := h.Values(name)
	return vs, len(vs) > 0
}

func lookupMessage(status int) string {
	if status == http.StatusGone {
		return "stream deleted"
	}
	return "stream not found"
}

// ---------------------------------------------------------------- create

type createReq struct {
	ct         string
	ttl        int64
	hasTTL     bool
	expiresAt  time.Time
	expiresRaw string
	hasExpiry  bool
	closed     bool
	forkFrom   string
	forkOffset string
	hasForkOff bool
	forkSub    int64
	body       []byte
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request, path string) {
	q, status, msg := s.parseCreate(w, r)
	if status != 0 {
		httpError(w, status, msg)
		return
	}
	now := s.cfg.clock()
	s.mu.Lock()
	st, code, msg := s.createLocked(path, q, now)
	if code >= 400 {
		s.mu.Unlock()
		httpError(w, code, msg)
		return
	}
	h := w.Header()
	h.Set("Content-Type", st.contentType)
	h.Set(protocol.HeaderNextOffset, formatOffset(st.tail()))
	if st.closed {
		h.Set(protocol.HeaderClosed, "true")
	}
	s.mu.Unlock()
	if code == http.StatusCreated {
		h.Set("Location", s.requestURL(r))
		if s.subs != nil {
			s.subs.streamChanged(path, 0) // a new stream is linked at its start
		}
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
}

func (s *Server) requestURL(r *http.Request) string {
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	host := r.Host
	if host == "" {
		host = strings.TrimPrefix(strings.TrimPrefix(s.url, "https://"), "http://")
	}
	return scheme + host + r.URL.EscapedPath()
}

// parseCreate validates a PUT request's headers and body.
func (s *Server) parseCreate(w http.ResponseWriter, r *http.Request) (*createReq, int, string) {
	q := &createReq{}
	h := r.Header
	if ct := h.Get("Content-Type"); ct != "" {
		if !validMediaType(ct) {
			return nil, http.StatusBadRequest, "invalid Content-Type"
		}
		q.ct = ct
	}
	if vs, ok := hdr(h, protocol.HeaderTTL); ok {
		if len(vs) != 1 {
			return nil, http.StatusBadRequest, "multiple Stream-TTL headers"
		}
		n, ok := protocol.ParseTTL(vs[0])
		if !ok {
			return nil, http.StatusBadRequest, "invalid Stream-TTL"
		}
		q.ttl, q.hasTTL = n, true
	}
	if vs, ok := hdr(h, protocol.HeaderExpiresAt); ok {
		if len(vs) != 1 {
			return nil, http.StatusBadRequest, "multiple Stream-Expires-At headers"
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(vs[0]))
		if err != nil {
			return nil, http.StatusBadRequest, "invalid Stream-Expires-At"
		}
		q.expiresAt, q.expiresRaw, q.hasExpiry = t, strings.TrimSpace(vs[0]), true
	}
	if q.hasTTL && q.hasExpiry {
		return nil, http.StatusBadRequest, "Stream-TTL and Stream-Expires-At are exclusive"
	}
	q.closed = protocol.IsTrue(h.Get(protocol.HeaderClosed))
	_, hasFrom := hdr(h, protocol.HeaderForkedFrom)
	q.forkFrom = s.relPath(h.Get(protocol.HeaderForkedFrom))
	if hasFrom && q.forkFrom == "" {
		return nil, http.StatusBadRequest, "empty Stream-Forked-From"
	}
	if vs, ok := hdr(h, protocol.HeaderForkOffset); ok {
		if !hasFrom {
			return nil, http.StatusBadRequest, "Stream-Fork-Offset requires Stream-Forked-From"
		}
		q.forkOffset, q.hasForkOff = vs[0], true
	}
	if vs, ok := hdr(h, protocol.HeaderForkSubOffset); ok {
		if !hasFrom {
			return nil, http.StatusBadRequest, "Stream-Fork-Sub-Offset requires Stream-Forked-From"
		}
		n, ok := protocol.ParseTTL(vs[0])
		if !ok || len(vs) != 1 {
			return nil, http.StatusBadRequest, "invalid Stream-Fork-Sub-Offset"
		}
		q.forkSub = n
	}
	body, status, msg := s.readBody(w, r)
	if status != 0 {
		return nil, status, msg
	}
	q.body = body
	return q, 0, ""
}

// createLocked creates the stream or checks an existing one. It returns the
// stream and 201 or 200, or an error status and message. Caller holds s.mu.
func (s *Server) createLocked(path string, q *createReq, now time.Time) (*stream, int, string) {
	if old := s.streams[path]; old != nil {
		if old.softDeleted {
			return nil, http.StatusConflict, "stream deleted; path is blocked while forks exist"
		}
		if old.expired(now) && old.refs > 0 {
			_ = s.softDeleteLocked(old, now)
			return nil, http.StatusConflict, "stream expired; path is blocked while forks exist"
		}
		if old.expired(now) {
			s.removeLocked(old, now)
		} else {
			if !sameConfig(old, q) {
				return nil, http.StatusConflict, "stream exists with different configuration"
			}
			return old, http.StatusOK, ""
		}
	}
	ct := q.ct
	var src *stream
	var forkPos int64
	if q.forkFrom != "" {
		var status int
		var msg string
		src, forkPos, status, msg = s.resolveFork(q, now)
		if status != 0 {
			return nil, status, msg
		}
		if ct == "" {
			ct = src.contentType
		} else if !sameType(ct, src.contentType) {
			return nil, http.StatusConflict, "Content-Type differs from the source stream"
		}
	}
	if ct == "" {
		ct = defaultContentType
	}
	s.nextID++
	st := newStream(path, s.nextID, ct, now)
	var msgs [][]byte
	if len(q.body) > 0 {
		if st.isJSON {
			var err error
			msgs, err = splitJSON(q.body, true)
			if err != nil {
				return nil, http.StatusBadRequest, err.Error()
			}
		}
	}
	st.ttl, st.hasTTL = q.ttl, q.hasTTL
	st.expiresAt, st.expiresRaw, st.hasExpiry = q.expiresAt, q.expiresRaw, q.hasExpiry
	if src != nil {
		st.forkedFrom = q.forkFrom
		st.forkOffset = formatOffset(forkPos)
		if q.hasForkOff {
			st.forkOffset = q.forkOffset
		}
		st.forkSub = q.forkSub
		if !q.hasTTL && !q.hasExpiry {
			st.ttl, st.hasTTL = src.ttl, src.hasTTL
			st.expiresAt, st.expiresRaw, st.hasExpiry = src.expiresAt, src.expiresRaw, src.hasExpiry
		}
		st.copyPrefix(src, forkPos)
		st.source = src
		src.refs++
	}
	st.appendData(q.body, msgs)
	st.closed = q.closed
	if err := s.diskCreate(st); err != nil {
		if src != nil {
			src.refs--
		}
		return nil, http.StatusInternalServerError, "storage error"
	}
	s.streams[path] = st
	s.registryCreatedLocked(st, now)
	return st, http.StatusCreated, ""
}

// resolveFork finds the fork source and the divergence position.
func (s *Server) resolveFork(q *createReq, now time.Time) (*stream, int64, int, string) {
	srcPath := q.forkFrom // already relative to the prefix
	if _, status, msg := validateStreamPath(srcPath); status != 0 {
		return nil, 0, http.StatusBadRequest, "invalid Stream-Forked-From: " + msg
	}
	src, status := s.lookup(srcPath, now)
	if status == http.StatusGone {
		return nil, 0, http.StatusConflict, "source stream is deleted"
	}
	if status != 0 {
		return nil, 0, http.StatusNotFound, "source stream not found"
	}
	pos := src.tail()
	if q.hasForkOff {
		switch q.forkOffset {
		case protocol.OffsetStart:
			pos = 0
		case protocol.OffsetNow:
			pos = src.tail()
		default:
			p, ok := parseOffset(q.forkOffset)
			if !ok {
				return nil, 0, http.StatusBadRequest, "invalid Stream-Fork-Offset"
			}
			if p > src.tail() {
				return nil, 0, http.StatusBadRequest, "Stream-Fork-Offset is beyond the source tail"
			}
			if !src.validPos(p) {
				return nil, 0, http.StatusBadRequest, "Stream-Fork-Offset is not a message boundary"
			}
			pos = p
		}
	}
	pos, ok := src.subOffsetPos(pos, q.forkSub)
	if !ok {
		return nil, 0, http.StatusBadRequest, "Stream-Fork-Sub-Offset runs past the next data boundary"
	}
	return src, pos, 0, ""
}

// sameConfig reports whether a PUT matches an existing stream (idempotent).
func sameConfig(st *stream, q *createReq) bool {
	ct := q.ct
	if ct == "" {
		if q.forkFrom != "" {
			ct = st.contentType
		} else {
			ct = defaultContentType
		}
	}
	if !sameType(ct, st.contentType) || q.closed != st.closed {
		return false
	}
	if q.forkFrom != st.forkedFrom && !(q.forkFrom == "" && st.forkedFrom != "") {
		return false
	}
	if q.forkFrom != "" {
		if q.hasForkOff && q.forkOffset != st.forkOffset {
			return false
		}
		if q.forkSub != st.forkSub {
			return false
		}
		if !q.hasTTL && !q.hasExpiry {
			return true // inherited expiry
		}
	}
	if q.hasTTL != st.hasTTL || (q.hasTTL && q.ttl != st.ttl) {
		return false
	}
	if q.hasExpiry != st.hasExpiry || (q.hasExpiry && !q.expiresAt.Equal(st.expiresAt)) {
		return false
	}
	return true
}

// ---------------------------------------------------------------- append

type producerReq struct {
	id    string
	epoch int64
	seq   int64
}

// appendReq is a parsed POST: its headers, then its body.
type appendReq struct {
	closeReq     bool
	ct           string
	prod         *producerReq
	streamSeq    string
	hasStreamSeq bool
	body         []byte
	msgs         [][]byte // JSON messages of body (JSON streams only)
}

// appendVerdict is what validation decided about an append: apply it
// (the zero value), answer without applying (status, with msg for an
// error), or wait for an earlier request of the same producer and validate
// again (wait).
type appendVerdict struct {
	status int
	msg    string
	wait   bool
	ch     chan struct{} // the predecessor being handled (nil: not on the server yet)
	wake   chan struct{} // the stream's change signal
}

// orderState tracks one request's waits for its producer's earlier requests.
type orderState struct {
	waits    int
	graceEnd time.Time // when a request ahead of its producer stops waiting for those before it
}

// handleAppend appends to a stream (PROTOCOL.md §5.2): parse, validate
// under the server lock (waiting out a pipelined producer's reordering),
// apply and log atomically, sync, answer.
func (s *Server) handleAppend(w http.ResponseWriter, r *http.Request, path string) {
	q, status, msg := parseAppendHeaders(r.Header)
	if status != 0 {
		httpError(w, status, msg)
		return
	}
	if q.prod != nil {
		defer s.seqs.arrive(seqKey{path: path, id: q.prod.id, epoch: q.prod.epoch, seq: q.prod.seq})()
	}
	if status, msg := s.readAppendBody(w, r, q); status != 0 {
		httpError(w, status, msg)
		return
	}
	now := s.cfg.clock()
	rh := w.Header()
	var ord orderState
	for {
		s.mu.Lock()
		st, v := s.checkAppendLocked(rh, path, q, now, &ord)
		if v.wait {
			s.mu.Unlock()
			if !s.awaitPredecessor(r, v.ch, v.wake, ord.graceEnd) {
				httpError(w, http.StatusServiceUnavailable, "request abandoned")
				return
			}
			ord.waits++
			continue
		}
		if v.status != 0 {
			s.mu.Unlock()
			if v.status >= 400 {
				httpError(w, v.status, v.msg)
			} else {
				w.WriteHeader(v.status)
			}
			return
		}
		before := st.tail()
		tail, syncLog, derr := s.applyAppendLocked(st, q)
		s.mu.Unlock()
		if derr == nil && syncLog != nil {
			derr = syncLog()
		}
		if derr != nil {
			httpError(w, http.StatusInternalServerError, "storage error")
			return
		}
		if s.subs != nil && tail > before {
			s.subs.streamChanged(path, before)
		}
		writeAppended(w, q, tail)
		return
	}
}

// parseAppendHeaders validates the closure, content-type, producer and
// Stream-Seq headers of an append.
func parseAppendHeaders(h http.Header) (*appendReq, int, string) {
	q := &appendReq{
		closeReq: protocol.IsTrue(h.Get(protocol.HeaderClosed)),
		ct:       h.Get("Content-Type"),
	}
	_, hasID := hdr(h, protocol.HeaderProducerID)
	_, hasEpoch := hdr(h, protocol.HeaderProducerEpoch)
	_, hasSeq := hdr(h, protocol.HeaderProducerSeq)
	if hasID || hasEpoch || hasSeq {
		if !(hasID && hasEpoch && hasSeq) {
			return nil, http.StatusBadRequest, "Producer-Id, Producer-Epoch and Producer-Seq go together"
		}
		id := h.Get(protocol.HeaderProducerID)
		if id == "" || len(id) > maxIDLen {
			return nil, http.StatusBadRequest, "invalid Producer-Id"
		}
		epoch, ok1 := protocol.ParseProducerNumber(h.Get(protocol.HeaderProducerEpoch))
		seq, ok2 := protocol.ParseProducerNumber(h.Get(protocol.HeaderProducerSeq))
		if !ok1 || !ok2 {
			return nil, http.StatusBadRequest, "invalid Producer-Epoch or Producer-Seq"
		}
		q.prod = &producerReq{id: id, epoch: epoch, seq: seq}
	}
	if _, ok := hdr(h, protocol.HeaderSeq); ok {
		q.streamSeq, q.hasStreamSeq = h.Get(protocol.HeaderSeq), true
		if q.streamSeq == "" || len(q.streamSeq) > maxSeqLen {
			return nil, http.StatusBadRequest, "invalid Stream-Seq"
		}
	}
	return q, 0, ""
}

// readAppendBody reads the body of an append, checks its content type and
// splits JSON into messages.
func (s *Server) readAppendBody(w http.ResponseWriter, r *http.Request, q *appendReq) (int, string) {
	body, status, msg := s.readBody(w, r)
	if status != 0 {
		return status, msg
	}
	q.body = body
	if len(body) == 0 {
		return 0, ""
	}
	if q.ct == "" {
		return http.StatusBadRequest, "missing Content-Type"
	}
	if !validMediaType(q.ct) {
		return http.StatusBadRequest, "invalid Content-Type"
	}
	if isJSONType(q.ct) {
		msgs, err := splitJSON(body, false)
		if err != nil {
			return http.StatusBadRequest, err.Error()
		}
		q.msgs = msgs
	}
	return 0, ""
}

// checkAppendLocked validates an append against the stream's state, in the
// order of PROTOCOL.md §5.2: stream, producer epoch and duplicates,
// closure, producer sequence, content type, Stream-Seq. Response headers
// that go with the verdict are set on rh. Caller holds s.mu.
func (s *Server) checkAppendLocked(rh http.Header, path string, q *appendReq, now time.Time, ord *orderState) (*stream, appendVerdict) {
	st, code := s.lookup(path, now)
	if code != 0 {
		return nil, appendVerdict{status: code, msg: lookupMessage(code)}
	}
	if len(q.body) == 0 && !q.closeReq {
		return nil, appendVerdict{status: http.StatusBadRequest, msg: "empty body requires Stream-Closed: true"}
	}
	st.lastAccess = now
	if v, done := checkProducerEpochLocked(rh, st, q.prod); done {
		return nil, v
	}
	if st.closed {
		rh.Set(protocol.HeaderClosed, "true")
		rh.Set(protocol.HeaderNextOffset, formatOffset(st.tail()))
		if len(q.body) == 0 && q.closeReq {
			// Close-only is idempotent, with or without producer headers.
			return nil, appendVerdict{status: http.StatusNoContent}
		}
		return nil, appendVerdict{status: http.StatusConflict, msg: "stream is closed"}
	}
	if v, done := s.checkProducerSeqLocked(rh, st, path, q.prod, ord); done {
		return nil, v
	}
	if len(q.body) > 0 && !sameType(q.ct, st.contentType) {
		return nil, appendVerdict{status: http.StatusConflict, msg: "Content-Type does not match the stream"}
	}
	if q.hasStreamSeq && st.lastSeq != "" && q.streamSeq <= st.lastSeq {
		return nil, appendVerdict{status: http.StatusConflict, msg: "Stream-Seq regression"}
	}
	return st, appendVerdict{}
}

// checkProducerEpochLocked answers a stale epoch (403), a new epoch that
// does not start at 0 (400) and a duplicate (204, already applied); done
// is false when none applies. Caller holds s.mu.
func checkProducerEpochLocked(rh http.Header, st *stream, prod *producerReq) (appendVerdict, bool) {
	if prod == nil {
		return appendVerdict{}, false
	}
	ps := st.producers[prod.id]
	switch {
	case ps == nil:
		return appendVerdict{}, false
	case prod.epoch < ps.Epoch:
		rh.Set(protocol.HeaderProducerEpoch, strconv.FormatInt(ps.Epoch, 10))
		return appendVerdict{status: http.StatusForbidden, msg: "stale producer epoch"}, true
	case prod.epoch > ps.Epoch && prod.seq != 0:
		return appendVerdict{status: http.StatusBadRequest, msg: "a new producer epoch must start at Producer-Seq 0"}, true
	case prod.epoch == ps.Epoch && prod.seq <= ps.Seq:
		// Duplicate: already applied.
		rh.Set(protocol.HeaderProducerEpoch, strconv.FormatInt(ps.Epoch, 10))
		rh.Set(protocol.HeaderProducerSeq, strconv.FormatInt(ps.Seq, 10))
		rh.Set(protocol.HeaderNextOffset, formatOffset(st.tail()))
		if st.closed {
			rh.Set(protocol.HeaderClosed, "true")
		}
		return appendVerdict{status: http.StatusNoContent}, true
	}
	return appendVerdict{}, false
}

// checkProducerSeqLocked finds a sequence gap. A producer the stream has
// not seen yet must start at seq 0; a later seq means its earlier batches
// may still be on their way (pipelining), so with ordering on the request
// first waits for them (see order.go), and only a gap still there after
// that is answered 409. Caller holds s.mu.
func (s *Server) checkProducerSeqLocked(rh http.Header, st *stream, path string, prod *producerReq, ord *orderState) (appendVerdict, bool) {
	if prod == nil {
		return appendVerdict{}, false
	}
	ps := st.producers[prod.id]
	expected := int64(-1)
	switch {
	case ps == nil && prod.seq != 0:
		expected = 0
	case ps != nil && prod.epoch == ps.Epoch && prod.seq > ps.Seq+1:
		expected = ps.Seq + 1
	}
	if expected < 0 {
		return appendVerdict{}, false
	}
	if ord.waits < maxOrderWaits && s.cfg.orderProducers {
		if ord.graceEnd.IsZero() {
			ord.graceEnd = time.Now().Add(s.cfg.orderGrace)
		}
		ch := s.seqs.inProgress(seqKey{path: path, id: prod.id, epoch: prod.epoch, seq: expected})
		if ch != nil || time.Now().Before(ord.graceEnd) {
			return appendVerdict{wait: true, ch: ch, wake: st.wake}, true
		}
	}
	rh.Set(protocol.HeaderProducerExpected, strconv.FormatInt(expected, 10))
	rh.Set(protocol.HeaderProducerReceived, strconv.FormatInt(prod.seq, 10))
	return appendVerdict{status: http.StatusConflict, msg: "producer sequence gap"}, true
}

// applyAppendLocked applies a validated append atomically (data,
// Stream-Seq, producer state, closure) and writes its log record. It
// returns the new tail and the log sync to run after s.mu is released.
// Caller holds s.mu.
func (s *Server) applyAppendLocked(st *stream, q *appendReq) (int64, func() error, error) {
	rec := logRecord{Close: q.closeReq}
	rec.Msgs = st.appendData(q.body, q.msgs)
	if q.hasStreamSeq {
		st.lastSeq = q.streamSeq
		rec.Seq = q.streamSeq
	}
	if q.prod != nil {
		st.producers[q.prod.id] = &producerState{Epoch: q.prod.epoch, Seq: q.prod.seq}
		rec.Prod = &producerTuple{ID: q.prod.id, Epoch: q.prod.epoch, Seq: q.prod.seq}
	}
	if q.closeReq {
		// A retry of this request is a duplicate by producer sequence.
		st.closed = true
	}
	var derr error
	var syncLog func() error
	if st.disk != nil {
		syncLog, derr = st.disk.write(&rec, q.body, q.msgs)
	}
	st.notify()
	return st.tail(), syncLog, derr
}

// writeAppended answers a successful append.
func writeAppended(w http.ResponseWriter, q *appendReq, tail int64) {
	rh := w.Header()
	rh.Set(protocol.HeaderNextOffset, formatOffset(tail))
	if q.closeReq {
		rh.Set(protocol.HeaderClosed, "true")
	}
	if q.prod != nil {
		rh.Set(protocol.HeaderProducerEpoch, strconv.FormatInt(q.prod.epoch, 10))
		rh.Set(protocol.HeaderProducerSeq, strconv.FormatInt(q.prod.seq, 10))
		if len(q.body) > 0 {
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// ---------------------------------------------------------------- head / delete

func (s *Server) handleHead(w http.ResponseWriter, r *http.Request, path string) {
	now := s.cfg.clock()
	s.mu.Lock()
	st, code := s.lookup(path, now)
	if code != 0 {
		s.mu.Unlock()
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		return
	}
	h := w.Header()
	h.Set("Content-Type", st.contentType)
	h.Set(protocol.HeaderNextOffset, formatOffset(st.tail()))
	setExpiryHeaders(h, st)
	if st.closed {
		h.Set(protocol.HeaderClosed, "true")
	}
	h.Set("ETag", etag(st, 0, st.tail()))
	s.mu.Unlock()
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func setExpiryHeaders(h http.Header, st *stream) {
	if st.hasTTL {
		h.Set(protocol.HeaderTTL, strconv.FormatInt(st.ttl, 10))
	}
	if st.hasExpiry {
		h.Set(protocol.HeaderExpiresAt, st.expiresRaw)
	}
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, path string) {
	now := s.cfg.clock()
	s.mu.Lock()
	st, code := s.lookup(path, now)
	if code != 0 {
		s.mu.Unlock()
		httpError(w, code, lookupMessage(code))
		return
	}
	err := s.deleteLocked(st, now)
	s.mu.Unlock()
	if err != nil {
		httpError(w, http.StatusInternalServerError, "storage error")
		return
	}
	if s.subs != nil {
		s.subs.streamDeleted(path)
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteLocked deletes st: soft when forks still reference it, otherwise
// it is removed (cascading to soft-deleted sources). Caller holds s.mu.
func (s *Server) deleteLocked(st *stream, now time.Time) error {
	if st.refs > 0 {
		return s.softDeleteLocked(st, now)
	}
	s.removeLocked(st, now)
	return nil
}

// softDeleteLocked marks st deleted while forks still read its data: its
// path answers 410 and cannot be re-created. Caller holds s.mu.
func (s *Server) softDeleteLocked(st *stream, now time.Time) error {
	st.softDeleted = true
	st.notify()
	s.registryDeletedLocked(st.path, now)
	return s.diskMeta(st)
}

// removeLocked removes st from the server and releases its reference on
// its source, cleaning up sources that were only kept for forks.
func (s *Server) removeLocked(st *stream, now time.Time) {
	if !st.softDeleted {
		s.registryDeletedLocked(st.path, now)
	}
	for st != nil {
		if s.streams[st.path] == st {
			delete(s.streams, st.path)
		}
		st.gone = true
		st.notify()
		s.diskRemove(st)
		src := st.source
		st.source = nil
		if src == nil {
			return
		}
		src.refs--
		if src.refs > 0 || !src.softDeleted {
			if src.refs == 0 {
				_ = s.diskMeta(src)
			}
			return
		}
		st = src
	}
}

// etag builds a closure-aware entity tag for the range [a, b) of st.
func etag(st *stream, a, b int64) string {
	t := `"` + strconv.FormatUint(st.id, 36) + ":" + strconv.FormatInt(a, 10) + ":" + strconv.FormatInt(b, 10)
	if st.closed && b == st.tail() {
		t += ":c"
	}
	return t + `"`
}
