package testserver

import (
	"bufio"
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/durablego/durable/internal/protocol"
)

const cacheCatchUp = "public, max-age=60, stale-while-revalidate=300"

type readReq struct {
	pos       int64
	now       bool // offset=now
	hasOffset bool
	live      string
	cursor    int64
	hasCursor bool
}

// parseRead validates the query of a GET.
func parseRead(r *http.Request) (readReq, string) {
	var q readReq
	vals := r.URL.Query()
	if offs, ok := vals[protocol.QueryOffset]; ok {
		if len(offs) != 1 {
			return q, "multiple offset parameters"
		}
		o := offs[0]
		switch {
		case o == "":
			return q, "empty offset"
		case len(o) > maxOffsetLen:
			return q, "offset too long"
		case o == protocol.OffsetStart:
		case o == protocol.OffsetNow:
			q.now = true
		default:
			p, ok := parseOffset(o)
			if !ok {
				return q, "malformed offset"
			}
			q.pos = p
		}
		q.hasOffset = true
	}
	if lives, ok := vals[protocol.QueryLive]; ok {
		if len(lives) != 1 {
			return q, "multiple live parameters"
		}
		switch lives[0] {
		case protocol.LiveLongPoll, protocol.LiveSSE:
			q.live = lives[0]
		default:
			return q, "unknown live mode"
		}
		if !q.hasOffset {
			return q, "live reads require an offset"
		}
	}
	if c := vals.Get(protocol.QueryCursor); c != "" {
		if n, err := strconv.ParseInt(c, 10, 64); err == nil && n >= 0 {
			q.cursor, q.hasCursor = n, true
		}
	}
	return q, ""
}

// cursorFor returns the cursor for a live response: the current interval
// number, or, when the client's cursor is not behind it, a value strictly
// greater than the client's (random jitter of 1..3600 seconds).
func (s *Server) cursorFor(q readReq) string {
	iv := int64(s.cfg.clock().Sub(cursorEpoch) / s.cfg.cursorInterval)
	if q.hasCursor && q.cursor >= iv {
		secs := 1 + rand.Int64N(3600)
		step := int64(time.Duration(secs)*time.Second/s.cfg.cursorInterval) + 1
		iv = q.cursor + step
	}
	return strconv.FormatInt(iv, 10)
}

func (s *Server) handleRead(w http.ResponseWriter, r *http.Request, path string) {
	q, msg := parseRead(r)
	if msg != "" {
		httpError(w, http.StatusBadRequest, msg)
		return
	}
	if q.live == protocol.LiveSSE {
		s.serveSSE(w, r, path, q)
		return
	}
	var (
		timer    *time.Timer
		origin   *stream // the stream this read started on
		timedOut bool
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		now := s.cfg.clock()
		s.mu.Lock()
		st, code := s.lookup(path, now)
		if code == 0 && origin != nil && st != origin {
			code = http.StatusNotFound // deleted and re-created while we waited
		}
		if code != 0 {
			s.mu.Unlock()
			httpError(w, code, lookupMessage(code))
			return
		}
		if origin == nil {
			origin = st
			st.lastAccess = now // live reads renew the TTL when they start
			if q.now {
				q.pos = st.tail()
			}
			if !st.validPos(q.pos) {
				s.mu.Unlock()
				httpError(w, http.StatusBadRequest, "offset is not a position of this stream")
				return
			}
		}
		if q.live == "" || q.pos < st.tail() || st.closed {
			reply := s.prepareChunk(w, r, st, q)
			s.mu.Unlock()
			reply.send(w, r)
			return
		}
		if timedOut {
			// Long-poll timeout (or server shutdown): 204 with the tail.
			h := w.Header()
			h.Set(protocol.HeaderNextOffset, formatOffset(st.tail()))
			h.Set(protocol.HeaderUpToDate, "true")
			h.Set(protocol.HeaderCursor, s.cursorFor(q))
			h.Set("Cache-Control", "no-store")
			s.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// Long-poll at the tail of an open stream: wait.
		wake := st.wake
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(s.cfg.longPollTimeout)
		}
		switch s.waitOn(r, path, wake, timer.C) {
		case waitGone:
			return
		case waitTimeout, waitShutdown:
			timedOut = true
		}
	}
}

// chunkReply is a prepared read response: headers are already set; the
// status and body are sent after the server lock is released, so a slow
// client never holds up other requests.
type chunkReply struct {
	status int
	parts  [3][]byte
	n      int
}

func (c chunkReply) send(w http.ResponseWriter, r *http.Request) {
	if c.status == http.StatusOK {
		w.Header().Set("Content-Length", strconv.Itoa(c.n))
	}
	w.WriteHeader(c.status)
	if c.status != http.StatusOK || r.Method == http.MethodHead {
		return
	}
	for _, p := range c.parts {
		if len(p) > 0 {
			_, _ = w.Write(p)
		}
	}
}

// prepareChunk prepares the answer to a catch-up or long-poll read from
// q.pos. Caller holds s.mu; the body parts stay valid after unlock because
// the log is append-only.
func (s *Server) prepareChunk(w http.ResponseWriter, r *http.Request, st *stream, q readReq) chunkReply {
	h := w.Header()
	tail := st.tail()
	live := q.live != ""
	if q.pos == tail && st.closed {
		h.Set(protocol.HeaderNextOffset, formatOffset(tail))
		h.Set(protocol.HeaderUpToDate, "true")
		h.Set(protocol.HeaderClosed, "true")
		if live {
			h.Set("Cache-Control", "no-store")
			return chunkReply{status: http.StatusNoContent}
		}
	}
	end := st.chunkEnd(q.pos, s.cfg.chunkLimit)
	parts, n := st.bodyParts(q.pos, end)
	h.Set("Content-Type", st.contentType)
	h.Set(protocol.HeaderNextOffset, formatOffset(end))
	if end == tail {
		h.Set(protocol.HeaderUpToDate, "true")
		if st.closed {
			h.Set(protocol.HeaderClosed, "true")
		}
	}
	if live || !(end == tail && st.closed) {
		h.Set(protocol.HeaderCursor, s.cursorFor(q))
	}
	if q.now {
		h.Set("Cache-Control", "no-store")
	} else {
		tag := etag(st, q.pos, end)
		h.Set("ETag", tag)
		h.Set("Cache-Control", cacheCatchUp)
		if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, tag) {
			return chunkReply{status: http.StatusNotModified}
		}
	}
	return chunkReply{status: http.StatusOK, parts: parts, n: n}
}

// etagMatch reports whether an If-None-Match value matches tag.
func etagMatch(inm, tag string) bool {
	for _, part := range strings.Split(inm, ",") {
		p := strings.TrimSpace(part)
		p = strings.TrimPrefix(p, "W/")
		if p == "*" || p == tag || `"`+p+`"` == tag {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------- SSE

type sseControl struct {
	next     string
	cursor   string
	upToDate bool
	closed   bool
}

func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, path string, q readReq) {
	st, out, ok := s.startSSE(w, path, &q)
	if !ok {
		return
	}
	deadline := time.NewTimer(s.cfg.sseCloseInterval)
	defer deadline.Stop()
	sentControl := false
	for {
		select {
		case <-deadline.C:
			return // periodic close; the client reconnects from the last control offset
		default:
		}
		s.mu.Lock()
		cur, code := s.lookup(path, s.cfg.clock())
		if code != 0 || cur != st {
			s.mu.Unlock()
			return // deleted (or re-created): the client reconnects and learns which
		}
		if q.pos < st.tail() || !sentControl || st.closed {
			if !s.sendSSE(out, st, &q) {
				return
			}
			sentControl = true
			continue
		}
		wake := st.wake
		s.mu.Unlock()
		if s.waitOn(r, path, wake, deadline.C) != waitWoken {
			return
		}
	}
}

// sseWriter writes the events of one SSE response.
type sseWriter struct {
	bw      *bufio.Writer
	flusher http.Flusher // nil if the ResponseWriter cannot flush
	textual bool         // data events carry text, not base64
}

// flush sends what was written; false when the client is gone.
func (o *sseWriter) flush() bool {
	if o.bw.Flush() != nil {
		return false
	}
	if o.flusher != nil {
		o.flusher.Flush()
	}
	return true
}

// startSSE looks up the stream of an SSE read, resolves q.pos, and answers
// with the response's headers; ok is false when it answered with an error.
func (s *Server) startSSE(w http.ResponseWriter, path string, q *readReq) (st *stream, out *sseWriter, ok bool) {
	now := s.cfg.clock()
	s.mu.Lock()
	st, code := s.lookup(path, now)
	if code != 0 {
		s.mu.Unlock()
		httpError(w, code, lookupMessage(code))
		return nil, nil, false
	}
	st.lastAccess = now
	if q.now {
		q.pos = st.tail()
	}
	if !st.validPos(q.pos) {
		s.mu.Unlock()
		httpError(w, http.StatusBadRequest, "offset is not a position of this stream")
		return nil, nil, false
	}
	textual := protocol.IsTextual(st.contentType)
	s.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	if !textual {
		h.Set(protocol.HeaderSSEDataEncoding, "base64")
	}
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	return st, &sseWriter{bw: bufio.NewWriterSize(w, 32<<10), flusher: flusher, textual: textual}, true
}

// sendSSE sends the stream's next chunk from q.pos as a data event and a
// control event, or a control event alone at the tail, and moves q.pos
// past what it sent. The caller holds s.mu; sendSSE releases it before
// writing. It reports whether the connection goes on: false when the
// client is gone or the stream's end was sent.
func (s *Server) sendSSE(out *sseWriter, st *stream, q *readReq) bool {
	tail := st.tail()
	end := tail
	var body []byte
	data := q.pos < tail
	if data {
		end = st.chunkEnd(q.pos, s.cfg.chunkLimit)
		body = st.body(q.pos, end)
	}
	c := sseControl{next: formatOffset(end), upToDate: end == tail, closed: st.closed && end == tail}
	if !c.closed {
		c.cursor = s.cursorFor(*q)
	}
	s.mu.Unlock()
	if data {
		writeSSEData(out.bw, body, out.textual)
	}
	writeSSEControl(out.bw, c)
	if !out.flush() || c.closed {
		return false
	}
	q.pos = end
	return true
}

// writeSSEData writes one data event. Text payloads are split on every line
// terminator (CR, LF, CRLF) so payload bytes can never end the event early.
func writeSSEData(bw *bufio.Writer, body []byte, textual bool) {
	bw.WriteString("event: data\n")
	if !textual {
		enc := base64.StdEncoding.EncodeToString(body)
		bw.WriteString("data:")
		bw.WriteString(enc)
		bw.WriteString("\n\n")
		return
	}
	start := 0
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c != '\n' && c != '\r' {
			continue
		}
		writeDataLine(bw, body[start:i])
		if c == '\r' && i+1 < len(body) && body[i+1] == '\n' {
			i++
		}
		start = i + 1
	}
	writeDataLine(bw, body[start:])
	bw.WriteByte('\n')
}

// writeDataLine writes one "data:" line. A line that starts with a space
// gets one extra space, because SSE parsers strip one after the colon.
func writeDataLine(bw *bufio.Writer, line []byte) {
	bw.WriteString("data:")
	if len(line) > 0 && line[0] == ' ' {
		bw.WriteByte(' ')
	}
	bw.Write(line)
	bw.WriteByte('\n')
}

func writeSSEControl(bw *bufio.Writer, c sseControl) {
	bw.WriteString("event: control\ndata:{\"streamNextOffset\":\"")
	bw.WriteString(c.next)
	bw.WriteByte('"')
	if c.cursor != "" {
		bw.WriteString(`,"streamCursor":"`)
		bw.WriteString(c.cursor)
		bw.WriteByte('"')
	}
	if c.upToDate {
		bw.WriteString(`,"upToDate":true`)
	}
	if c.closed {
		bw.WriteString(`,"streamClosed":true`)
	}
	bw.WriteString("}\n\n")
}
