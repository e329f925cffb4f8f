package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/durablego/durable/internal/protocol"
	"github.com/durablego/durable/internal/retry"
)

// The one read path: every GET of a stream (Client.Read, the Reader's
// catch-up and long-poll reads, the CLI through the Reader) is one attempt
// of getChunk, and every answer becomes a chunk in toChunk. SSE answers go
// through the one SSE decoder (sse.go).

// rawChunk is one read, as the Reader consumes it and Client.Read and
// OpenSSE turn into a Chunk.
type rawChunk struct {
	data        []byte // aliases the buffer it was read into, until the next read into it
	parts       []int  // SSE: end of each data event in data (a JSON stream's events are arrays each)
	ctype       string // Content-Type of a GET ("" for SSE)
	next        Offset
	cursor      string
	upToDate    bool
	closed      bool
	notModified bool
	etag        string
}

// readQuery is what one GET asks for.
type readQuery struct {
	offset      Offset
	live        LiveMode // LiveNone or LiveLongPoll
	cursor      string
	ifNoneMatch string
	limit       int64  // bytes of body kept in memory
	ctype       string // the content type the caller expects ("": any)
	checkJSON   bool   // check that a JSON stream's body is one JSON array (the Reader checks as it decodes)
	// dropStale makes an answer whose offset is before the one asked for
	// (a stale cache) a transient failure, to be read again (the Reader);
	// otherwise it is a protocol violation.
	dropStale bool
}

// errStale marks a response whose offset goes back before the one asked
// for (a stale cache or a confused server): dropped and retried. It is
// reported with ErrProtocol when a bounded retry schedule gives up.
var errStale = retry.Transient("stale response: offset before the one requested")

// getChunk sends one GET of q from the stream at u (no retry) and reads the
// answer into *buf (reused).
func (c *Client) getChunk(ctx context.Context, u string, q readQuery, buf *[]byte) (rawChunk, error) {
	ru, err := readURL(u, q.offset, string(q.live), q.cursor)
	if err != nil {
		return rawChunk{}, &Error{Op: "read", URL: redactURL(u), Err: err}
	}
	cl := &call{op: "read", method: http.MethodGet, url: ru, header: http.Header{}, stream: true}
	if q.ifNoneMatch != "" {
		if err := validHeaderValue("IfNoneMatch", q.ifNoneMatch); err != nil {
			return rawChunk{}, c.opError(cl, 0, err)
		}
		cl.header.Set("If-None-Match", q.ifNoneMatch)
	}
	resp, err := c.send(ctx, cl)
	if err != nil {
		return rawChunk{}, err
	}
	defer resp.raw.Body.Close()
	ch, err := toChunk(resp, q, buf)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return rawChunk{}, err
		}
		return rawChunk{}, &Error{Op: cl.op, URL: redactURL(cl.url), Status: resp.status, Err: err}
	}
	return ch, nil
}

// toChunk turns the answer to a read into a chunk: the status (200, a 204
// to a long-poll, a 304 to a conditional read), the headers (the next
// offset, required, valid and not before the one asked for; cursor;
// up-to-date; closed), and the body, read into *buf within q.limit, with a
// content type and, on request, checked to be one JSON array.
func toChunk(resp *response, q readQuery, buf *[]byte) (rawChunk, error) {
	h := resp.header
	switch resp.status {
	case http.StatusOK, http.StatusNoContent:
	case http.StatusNotModified:
		if q.ifNoneMatch == "" {
			return rawChunk{}, fmt.Errorf("%w: 304 without If-None-Match", ErrProtocol)
		}
		ch := rawChunk{notModified: true, etag: q.ifNoneMatch, ctype: h.Get("Content-Type")}
		if v := h.Get(protocol.HeaderNextOffset); v != "" {
			if err := checkOffset(protocol.HeaderNextOffset, v); err != nil {
				return rawChunk{}, err
			}
			ch.next = Offset(v)
		}
		if v := h.Get("ETag"); v != "" {
			ch.etag = v
		}
		return ch, nil
	default:
		return rawChunk{}, fmt.Errorf("%w: read answered with status %d", ErrProtocol, resp.status)
	}
	ch := rawChunk{
		ctype:    h.Get("Content-Type"),
		cursor:   h.Get(protocol.HeaderCursor),
		upToDate: protocol.IsTrue(h.Get(protocol.HeaderUpToDate)),
		closed:   protocol.IsTrue(h.Get(protocol.HeaderClosed)),
		etag:     h.Get("ETag"),
	}
	var err error
	if ch.next, err = nextOffset(h); err != nil {
		return rawChunk{}, err
	}
	if isRealOffset(q.offset) && ch.next < q.offset {
		if q.dropStale {
			return rawChunk{}, fmt.Errorf("%w: %w: %s %q is before %q", ErrProtocol, errStale, protocol.HeaderNextOffset, ch.next, q.offset)
		}
		return rawChunk{}, fmt.Errorf("%w: %s %q is before the requested offset %q", ErrProtocol, protocol.HeaderNextOffset, ch.next, q.offset)
	}
	if err := checkCursor(ch.cursor); err != nil {
		return rawChunk{}, err
	}
	if ch.closed {
		ch.upToDate = true
	}
	if resp.status == http.StatusNoContent {
		if q.live != LiveLongPoll {
			return rawChunk{}, fmt.Errorf("%w: 204 to a read that was not a long-poll", ErrProtocol)
		}
		return ch, nil
	}
	if protocol.BaseMediaType(ch.ctype) == "text/event-stream" {
		return rawChunk{}, fmt.Errorf("%w: event stream returned to a non-SSE read", ErrProtocol)
	}
	*buf, err = readBody(*buf, resp.raw.Body, resp.raw.ContentLength, q.limit)
	if err != nil {
		return rawChunk{}, err
	}
	ch.data = *buf
	return ch, checkData(ch.data, ch.ctype, q.ctype, q.checkJSON)
}

// checkData checks a chunk's data: a content type is required with data,
// it must be the expected one (if any), and with checkJSON a JSON
// stream's data must be one JSON array.
func checkData(data []byte, ctype, want string, checkJSON bool) error {
	if len(data) == 0 {
		return nil
	}
	switch {
	case ctype == "":
		return fmt.Errorf("%w: data without Content-Type", ErrProtocol)
	case want != "" && protocol.BaseMediaType(want) != protocol.BaseMediaType(ctype):
		return fmt.Errorf("%w: content type %q, expected %q", ErrProtocol, ctype, want)
	case checkJSON && protocol.IsJSON(ctype) && !isJSONArray(data):
		return fmt.Errorf("%w: JSON stream body is not a JSON array", ErrProtocol)
	}
	return nil
}

// isJSONArray reports whether b is one valid JSON array.
func isJSONArray(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '[':
			return json.Valid(b)
		}
		return false
	}
	return false
}

// readURL adds offset, live and cursor (keys sorted, as the protocol's
// caching rules ask) to the stream URL, keeping any query it already has.
func readURL(u string, offset Offset, live, cursor string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if offset == "" {
		offset = OffsetStart
	}
	if len(offset) > maxOffsetLen || hasControl(string(offset)) {
		return "", fmt.Errorf("%w: malformed offset", ErrInvalidArgument)
	}
	q := pu.Query()
	q.Set(protocol.QueryOffset, string(offset))
	if live != "" {
		q.Set(protocol.QueryLive, live)
	}
	if cursor != "" {
		q.Set(protocol.QueryCursor, cursor)
	}
	pu.RawQuery = q.Encode()
	return pu.String(), nil
}

// isRealOffset reports whether o is a server offset, not a sentinel.
func isRealOffset(o Offset) bool { return o != "" && o != OffsetStart && o != OffsetNow }

// errAttemptTimeout marks an attempt cut off by the Client's WithRequestTimeout
// (a Reader's catch-up read, a Writer's append): the request may have
// been applied, and it is retried.
var errAttemptTimeout = retry.Transient("attempt timed out")

// withAttemptTimeout bounds one attempt by the Client's WithRequestTimeout (none:
// ctx as it is). Pass its error through timedOut.
func (c *Client) withAttemptTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if c.cfg.timeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, c.cfg.timeout, errAttemptTimeout)
}

// timedOut marks err, the failure of an attempt under actx (from
// withAttemptTimeout on parent), as an attempt timeout when that is what
// ended it, so that it is retried.
func (c *Client) timedOut(parent, actx context.Context, op, u string, err error) error {
	if err == nil || context.Cause(actx) != errAttemptTimeout || parent.Err() != nil {
		return err
	}
	cause := fmt.Errorf("%w after %v", errAttemptTimeout, c.cfg.timeout)
	var e *Error
	if !errors.As(err, &e) {
		return &Error{Op: op, URL: redactURL(u), Err: fmt.Errorf("%w: %w", cause, err)}
	}
	cp := *e
	if cp.Err = cause; !errors.Is(e.Err, errAttemptTimeout) {
		cp.Err = fmt.Errorf("%w: %w", cause, e.Err)
	}
	return &cp
}
