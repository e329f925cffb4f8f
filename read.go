package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/durablego/durable/internal/protocol"
)

// LiveMode selects how a read waits for data.
type LiveMode string

// Live modes.
const (
	LiveNone     LiveMode = ""          // catch-up: answer at once, possibly with no data
	LiveLongPoll LiveMode = "long-poll" // wait (server-defined timeout) for data when at the tail
	LiveSSE      LiveMode = "sse"       // Server-Sent Events; Read returns the data up to the first control event
	LiveAuto     LiveMode = "auto"      // Reader only: SSE, falling back to long-poll; invalid for Read
)

// ReadOptions configures Read.
type ReadOptions struct {
	Offset      Offset   // where to start; "" is the protocol's default, the start of the stream (same as OffsetStart)
	Live        LiveMode // LiveNone, LiveLongPoll or LiveSSE
	Cursor      string   // echo of the last Chunk.Cursor (CDN collapsing)
	IfNoneMatch string   // ETag of a previous identical catch-up read; a match returns NotModified
	ContentType string   // the stream's content type, if known: used with LiveSSE to merge JSON batches
}

// Chunk is the result of one read request.
type Chunk struct {
	Data        []byte // the bytes read; for application/json streams a JSON array of messages
	ContentType string // the stream's content type ("" when unknown, e.g. some SSE reads)
	NextOffset  Offset // where the next read starts
	Cursor      string // echo as ReadOptions.Cursor on the next live read
	UpToDate    bool   // the data reaches the stream's tail at response time (not EOF)
	Closed      bool   // EOF: the stream is closed and NextOffset is its final offset
	NotModified bool   // 304 for IfNoneMatch: Data is empty, reuse the cached chunk
	ETag        string // entity tag, for IfNoneMatch
}

// Read performs one read request (GET) from opts.Offset: a catch-up read,
// a long-poll (which may end with no data and UpToDate at the server's
// timeout) or, with LiveSSE, one SSE connection read up to its first
// control event. Transient failures to get a response are retried per the
// RetryPolicy; WithTimeout applies to catch-up reads only.
//
// Responses are checked: a missing or sentinel Stream-Next-Offset, an
// offset before the requested one, a non-array body on a JSON stream, an
// event-stream answer to a plain read, or a 204/304 that was not asked for
// are ErrProtocol; a body over WithMaxResponseSize is ErrResponseTooLarge.
func (c *Client) Read(ctx context.Context, stream string, opts ReadOptions) (Chunk, error) {
	u, err := c.streamURL(stream)
	if err != nil {
		return Chunk{}, &Error{Op: "read", URL: redactURL(stream), Err: err}
	}
	if opts.Live == LiveNone {
		var cancel context.CancelFunc
		ctx, cancel = c.unaryContext(ctx)
		defer cancel()
	}
	return c.doRead(ctx, u, opts, true)
}

// readOnce sends one read to a full stream URL without retry; the Reader
// owns the retry loop.
func (c *Client) readOnce(ctx context.Context, u string, opts ReadOptions) (Chunk, error) {
	return c.doRead(ctx, u, opts, false)
}

func (c *Client) doRead(ctx context.Context, u string, opts ReadOptions, retry bool) (Chunk, error) {
	switch opts.Live {
	case LiveNone, LiveLongPoll:
	case LiveSSE:
		s, err := c.openSSE(ctx, u, SSEOptions{Offset: opts.Offset, Cursor: opts.Cursor, ContentType: opts.ContentType}, retry)
		if err != nil {
			return Chunk{}, err
		}
		defer s.Close()
		ch, err := s.Next(ctx)
		if err != nil {
			return Chunk{}, err
		}
		return ch, nil
	default:
		return Chunk{}, &Error{Op: "read", URL: redactURL(u), Err: fmt.Errorf("%w: live mode %q not valid for Read", ErrInvalidArgument, opts.Live)}
	}
	ru, err := readURL(u, opts.Offset, string(opts.Live), opts.Cursor)
	if err != nil {
		return Chunk{}, &Error{Op: "read", URL: redactURL(u), Err: err}
	}
	cl := &call{op: "read", method: http.MethodGet, url: ru, header: http.Header{}, retry: retry}
	if opts.IfNoneMatch != "" {
		if err := validHeaderValue("IfNoneMatch", opts.IfNoneMatch); err != nil {
			return Chunk{}, c.opError(cl, 0, err)
		}
		cl.header.Set("If-None-Match", opts.IfNoneMatch)
	}
	resp, err := c.send(ctx, cl)
	if err != nil {
		return Chunk{}, err
	}
	return c.readResult(cl, resp, opts)
}

// readURL adds offset, live and cursor (keys sorted, PROTOCOL.md §10.1) to
// the stream URL, keeping any query it already has.
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

func (c *Client) readResult(cl *call, resp *response, opts ReadOptions) (Chunk, error) {
	h := resp.header
	switch resp.status {
	case http.StatusOK:
	case http.StatusNoContent:
		if opts.Live != LiveLongPoll {
			return Chunk{}, c.protocolError(cl, resp, fmt.Errorf("%w: 204 to a read that was not a long-poll", ErrProtocol))
		}
	case http.StatusNotModified:
		if opts.IfNoneMatch == "" {
			return Chunk{}, c.protocolError(cl, resp, fmt.Errorf("%w: 304 without If-None-Match", ErrProtocol))
		}
		ch := Chunk{NotModified: true, ETag: opts.IfNoneMatch, ContentType: h.Get("Content-Type")}
		if v := h.Get(protocol.HeaderNextOffset); v != "" {
			if err := checkOffset(protocol.HeaderNextOffset, v); err != nil {
				return Chunk{}, c.protocolError(cl, resp, err)
			}
			ch.NextOffset = Offset(v)
		}
		if v := h.Get("ETag"); v != "" {
			ch.ETag = v
		}
		return ch, nil
	default:
		return Chunk{}, c.statusError(cl, resp)
	}
	ch := Chunk{
		ContentType: h.Get("Content-Type"),
		Cursor:      h.Get(protocol.HeaderCursor),
		UpToDate:    protocol.IsTrue(h.Get(protocol.HeaderUpToDate)),
		Closed:      protocol.IsTrue(h.Get(protocol.HeaderClosed)),
		ETag:        h.Get("ETag"),
		Data:        resp.body,
	}
	var err error
	if ch.NextOffset, err = nextOffset(h); err != nil {
		return Chunk{}, c.protocolError(cl, resp, err)
	}
	if isRealOffset(opts.Offset) && ch.NextOffset < opts.Offset {
		return Chunk{}, c.protocolError(cl, resp, fmt.Errorf("%w: %s %q is before the requested offset %q", ErrProtocol, protocol.HeaderNextOffset, ch.NextOffset, opts.Offset))
	}
	if err := checkCursor(ch.Cursor); err != nil {
		return Chunk{}, c.protocolError(cl, resp, err)
	}
	if ch.Closed {
		ch.UpToDate = true
	}
	if resp.status == http.StatusNoContent {
		ch.Data = nil
		return ch, nil
	}
	if protocol.BaseMediaType(ch.ContentType) == "text/event-stream" {
		return Chunk{}, c.protocolError(cl, resp, fmt.Errorf("%w: event stream returned to a non-SSE read", ErrProtocol))
	}
	if len(ch.Data) > 0 {
		if ch.ContentType == "" {
			return Chunk{}, c.protocolError(cl, resp, fmt.Errorf("%w: data without Content-Type", ErrProtocol))
		}
		if opts.ContentType != "" && protocol.BaseMediaType(opts.ContentType) != protocol.BaseMediaType(ch.ContentType) {
			return Chunk{}, c.protocolError(cl, resp, fmt.Errorf("%w: content type %q, expected %q", ErrProtocol, ch.ContentType, opts.ContentType))
		}
		if protocol.IsJSON(ch.ContentType) && !isJSONArray(ch.Data) {
			return Chunk{}, c.protocolError(cl, resp, fmt.Errorf("%w: JSON stream body is not a JSON array", ErrProtocol))
		}
	}
	return ch, nil
}

// isJSONArray reports whether b is one valid JSON array.
func isJSONArray(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '[' && json.Valid(b)
}
