package durable

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"

	"github.com/durablego/durable/internal/protocol"
	"github.com/durablego/durable/internal/sse"
)

// SSEOptions configures OpenSSE.
type SSEOptions struct {
	Offset      Offset // where to start; "" = start of the stream
	Cursor      string // echo of the last Chunk.Cursor
	ContentType string // the stream's content type, if known: JSON data events are then validated and merged as arrays
}

// SSEStream is one open Server-Sent Events connection to a stream. Next
// returns one Chunk per control event, carrying the data events received
// since the previous one. It is not safe for concurrent use; Close may be
// called from any goroutine.
type SSEStream struct {
	c      *Client
	url    string
	resp   *http.Response
	events eventParser
	base64 bool
	ctype  string
	last   Offset // last offset seen (or requested), for the no-going-back check

	closeOnce sync.Once
	done      bool  // a control event with streamClosed was delivered
	err       error // sticky error
}

// OpenSSE opens a live SSE read (GET ?live=sse) from opts.Offset. Getting a
// 200 is retried per the RetryPolicy; after that, a dropped connection is
// reported by Next as ErrDisconnected and the caller reconnects from the
// last Chunk.NextOffset. ctx bounds the whole connection.
func (c *Client) OpenSSE(ctx context.Context, stream string, opts SSEOptions) (*SSEStream, error) {
	u, err := c.streamURL(stream)
	if err != nil {
		return nil, &Error{Op: "sse", URL: redactURL(stream), Err: err}
	}
	return c.openSSE(ctx, u, opts, true)
}

// openSSEOnce opens an SSE connection to a full stream URL without retry.
func (c *Client) openSSEOnce(ctx context.Context, u string, opts SSEOptions) (*SSEStream, error) {
	return c.openSSE(ctx, u, opts, false)
}

func (c *Client) openSSE(ctx context.Context, u string, opts SSEOptions, retry bool) (*SSEStream, error) {
	ru, err := readURL(u, opts.Offset, protocol.LiveSSE, opts.Cursor)
	if err != nil {
		return nil, &Error{Op: "sse", URL: redactURL(u), Err: err}
	}
	cl := &call{op: "sse", method: http.MethodGet, url: ru, header: http.Header{"Accept": {"text/event-stream"}}, retry: retry, stream: true}
	resp, err := c.send(ctx, cl)
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		if resp.raw != nil {
			resp.raw.Body.Close()
		}
		if resp.status >= 200 && resp.status <= 299 {
			return nil, c.protocolError(cl, resp, fmt.Errorf("%w: SSE answered with status %d", ErrProtocol, resp.status))
		}
		return nil, c.statusError(cl, resp)
	}
	if ct := protocol.BaseMediaType(resp.header.Get("Content-Type")); ct != "text/event-stream" {
		resp.raw.Body.Close()
		return nil, c.protocolError(cl, resp, fmt.Errorf("%w: SSE response has Content-Type %q", ErrProtocol, ct))
	}
	s := &SSEStream{
		c:      c,
		url:    ru,
		resp:   resp.raw,
		events: newEventParser(resp.raw.Body, int(c.cfg.maxResponse), int(c.cfg.maxResponse)),
		base64: strings.EqualFold(strings.TrimSpace(resp.header.Get(protocol.HeaderSSEDataEncoding)), "base64"),
		ctype:  opts.ContentType,
	}
	if isRealOffset(opts.Offset) {
		s.last = opts.Offset
	}
	return s, nil
}

// sseControl is the JSON payload of a control event.
type sseControl struct {
	StreamNextOffset *string `json:"streamNextOffset"`
	StreamCursor     string  `json:"streamCursor"`
	UpToDate         bool    `json:"upToDate"`
	StreamClosed     bool    `json:"streamClosed"`
}

// parseControl decodes an SSE control event and checks it: an offset is
// required and must be well formed, the cursor too, and the offset must
// not go back from last (when last is a real offset) — that is ErrProtocol
// wrapping errStale, so a Reader can drop a stale answer and retry.
func parseControl(raw string, last Offset) (sseControl, Offset, error) {
	var ctl sseControl
	if err := json.Unmarshal([]byte(raw), &ctl); err != nil {
		return ctl, "", fmt.Errorf("%w: bad SSE control event: %w", ErrProtocol, err)
	}
	if ctl.StreamNextOffset == nil {
		return ctl, "", fmt.Errorf("%w: SSE control event without streamNextOffset", ErrProtocol)
	}
	next := Offset(*ctl.StreamNextOffset)
	if err := checkOffset("streamNextOffset", string(next)); err != nil {
		return ctl, "", err
	}
	if isRealOffset(last) && next < last {
		return ctl, "", fmt.Errorf("%w: %w: streamNextOffset %q is before %q", ErrProtocol, errStale, next, last)
	}
	if err := checkCursor(ctl.StreamCursor); err != nil {
		return ctl, "", err
	}
	return ctl, next, nil
}

// Next blocks until the next control event and returns the data received
// before it, with the control event's offset, cursor and flags. After the
// chunk with Closed set it returns io.EOF. When the server ends the
// connection before the stream is closed (servers do so about every
// minute) it returns an error wrapping ErrDisconnected: reconnect from the
// last NextOffset. Data not followed by a control event is discarded, as
// its offset is unknown. If ctx ends, Next closes the connection and
// returns ctx's error; the stream is then unusable.
func (s *SSEStream) Next(ctx context.Context) (Chunk, error) {
	if s.err != nil {
		return Chunk{}, s.err
	}
	if s.done {
		return Chunk{}, io.EOF
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	ch, err := s.next()
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		s.err = s.wrap(err)
		s.Close()
		return Chunk{}, s.err
	}
	return ch, nil
}

func (s *SSEStream) wrap(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Op: "sse", URL: redactURL(s.url), Status: http.StatusOK, Err: err}
}

func (s *SSEStream) next() (Chunk, error) {
	var (
		data [][]byte
		size int
	)
	for {
		ev, err := s.events.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
				return Chunk{}, fmt.Errorf("%w (%w)", ErrDisconnected, err)
			}
			if sseTooLarge(err) {
				return Chunk{}, fmt.Errorf("%w: %w", ErrResponseTooLarge, err)
			}
			return Chunk{}, err
		}
		switch ev.Type {
		case protocol.SSEEventData:
			b, err := s.decode(ev.Data)
			if err != nil {
				return Chunk{}, err
			}
			size += len(b)
			if int64(size) > s.c.cfg.maxResponse {
				return Chunk{}, fmt.Errorf("%w: SSE data between control events exceeds %d bytes", ErrResponseTooLarge, s.c.cfg.maxResponse)
			}
			data = append(data, b)
		case protocol.SSEEventControl:
			return s.control(ev.Data, data)
		default:
			// Unknown event types are ignored (forward compatibility).
		}
	}
}

func (s *SSEStream) decode(d string) ([]byte, error) {
	if s.base64 {
		clean := strings.NewReplacer("\n", "", "\r", "").Replace(d)
		b, err := base64.StdEncoding.DecodeString(clean)
		if err != nil {
			return nil, fmt.Errorf("%w: bad base64 in SSE data event: %w", ErrProtocol, err)
		}
		return b, nil
	}
	b := []byte(d)
	if protocol.IsJSON(s.ctype) && !isJSONArray(b) {
		return nil, fmt.Errorf("%w: SSE data event of a JSON stream is not a JSON array", ErrProtocol)
	}
	return b, nil
}

func (s *SSEStream) control(raw string, data [][]byte) (Chunk, error) {
	ctl, next, err := parseControl(raw, s.last)
	if err != nil {
		return Chunk{}, err
	}
	s.last = next
	ch := Chunk{
		Data:        s.join(data),
		ContentType: s.ctype,
		NextOffset:  next,
		Cursor:      ctl.StreamCursor,
		UpToDate:    ctl.UpToDate || ctl.StreamClosed,
		Closed:      ctl.StreamClosed,
	}
	if ctl.StreamClosed {
		s.done = true
		s.Close()
	}
	return ch, nil
}

// join concatenates the data events of one chunk; JSON arrays (when the
// stream is known to be JSON) are merged into one array.
func (s *SSEStream) join(data [][]byte) []byte {
	switch {
	case len(data) == 0:
		return nil
	case len(data) == 1:
		return data[0]
	case !protocol.IsJSON(s.ctype):
		return bytes.Join(data, nil)
	}
	var out []byte
	out = append(out, '[')
	n := 0
	for _, d := range data {
		inner := bytes.TrimSpace(d)
		inner = bytes.TrimSpace(inner[1 : len(inner)-1]) // validated as an array in decode
		if len(inner) == 0 {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, inner...)
		n++
	}
	return append(out, ']')
}

// Close closes the connection. It is safe to call more than once and
// concurrently with Next.
func (s *SSEStream) Close() error {
	s.closeOnce.Do(func() { s.resp.Body.Close() })
	return nil
}

// --- SSE event parsing --------------------------------------------------

// sseEvent is one dispatched Server-Sent Event.
type sseEvent = sse.Event

// eventParser yields dispatched events: io.EOF at a clean end between
// events, io.ErrUnexpectedEOF inside one.
type eventParser interface{ Next() (sseEvent, error) }

func newEventParser(r io.Reader, maxLine, maxEvent int) eventParser {
	return sse.NewParser(r, maxLine, maxEvent)
}

// sseTooLarge reports whether err is the parser refusing a line or event
// over its limit.
func sseTooLarge(err error) bool {
	return errors.Is(err, sse.ErrLineTooLong) || errors.Is(err, sse.ErrEventTooLarge)
}
