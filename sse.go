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

	"github.com/durablego/durable/internal/protocol"
	"github.com/durablego/durable/internal/retry"
	"github.com/durablego/durable/internal/sse"
)

// SSEStream is one open Server-Sent Events connection to a stream. Next
// returns one Chunk per control event, carrying the data events received
// since the previous one. It is not safe for concurrent use; Close may be
// called from any goroutine.
type SSEStream struct {
	d     *sseDecoder
	ctype string

	closeOnce sync.Once
	done      bool  // a control event with streamClosed was delivered
	err       error // sticky error
}

// OpenSSE opens a live SSE read (GET ?live=sse) from opts.Offset, echoing
// opts.Cursor; with opts.ContentType given as JSON, data events are
// validated and merged as arrays. opts.Live and opts.IfNoneMatch must be
// unset. Getting a 200 is retried per the RetryPolicy; after that, a
// dropped connection is reported by Next as ErrDisconnected and the caller
// reconnects from the last Chunk.NextOffset. ctx bounds the whole
// connection.
func (c *Client) OpenSSE(ctx context.Context, stream string, opts ReadOptions) (*SSEStream, error) {
	u, err := c.streamURL(stream)
	if err != nil {
		return nil, &Error{Op: "sse", URL: redactURL(stream), Err: err}
	}
	if opts.Live != "" || opts.IfNoneMatch != "" {
		return nil, &Error{Op: "sse", URL: redactURL(u), Err: fmt.Errorf("%w: OpenSSE takes no Live or IfNoneMatch", ErrInvalidArgument)}
	}
	var d *sseDecoder
	err = retry.Do(ctx, retry.NewSchedule(c.cfg.retry.internal()), func(ctx context.Context) error {
		var err error
		d, err = c.openEvents(ctx, "sse", u, opts.Offset, opts.Cursor, c.cfg.maxResponse)
		if d != nil {
			d.arrays = protocol.IsJSON(opts.ContentType)
		}
		return err
	}, classifier(true), c.retryLogger(ctx, "sse", u))
	if err != nil {
		return nil, c.interrupted(ctx, err)
	}
	return &SSEStream{d: d, ctype: opts.ContentType}, nil
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
	raw, err := s.d.next()
	if err == nil {
		ch := s.chunk(raw)
		if ch.Closed {
			s.done = true
			s.Close()
		}
		return ch, nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = s.d.fail(ctxErr)
	}
	s.err = err
	s.Close()
	return Chunk{}, err
}

// chunk turns an SSE read into a Chunk of its own memory: a JSON stream's
// data events (each one JSON array) merged into one array, other data as
// it came.
func (s *SSEStream) chunk(raw rawChunk) Chunk {
	ch := Chunk{
		ContentType: s.ctype,
		NextOffset:  raw.next,
		Cursor:      raw.cursor,
		UpToDate:    raw.upToDate,
		Closed:      raw.closed,
	}
	if len(raw.parts) == 0 {
		return ch
	}
	if !protocol.IsJSON(s.ctype) {
		ch.Data = bytes.Clone(raw.data)
		return ch
	}
	out := []byte{'['}
	start := 0
	for _, end := range raw.parts {
		part := raw.data[start:end] // a JSON array: checked as it arrived
		start = end
		inner := bytes.TrimSpace(part)
		inner = bytes.TrimSpace(inner[1 : len(inner)-1])
		if len(inner) == 0 {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, inner...)
	}
	ch.Data = append(out, ']')
	return ch
}

// Close closes the connection. It is safe to call more than once and
// concurrently with Next.
func (s *SSEStream) Close() error {
	s.closeOnce.Do(func() { s.d.body.Close() })
	return nil
}

// sseDecoder is the one SSE decoder (OpenSSE's SSEStream and the Reader):
// it reads one SSE response and turns the data events up to each control
// event into a rawChunk.
type sseDecoder struct {
	op, url  string // for errors
	body     io.ReadCloser
	p        *sse.Parser
	b64      bool
	limit    int64  // bytes of data between two control events
	last     Offset // the last offset seen (or asked for): offsets never go back
	buf      []byte
	parts    []int
	controls int    // control events read
	onEvent  func() // called for every event read (the Reader's idle timer)
	// arrays makes every data event of a JSON stream a JSON array or a
	// protocol violation, as soon as it arrives (OpenSSE; the Reader checks
	// as it splits).
	arrays bool
}

// openEvents makes one attempt (no retry) to open an SSE read of the
// stream at u from offset: a 200 with Content-Type text/event-stream.
func (c *Client) openEvents(ctx context.Context, op, u string, offset Offset, cursor string, limit int64) (*sseDecoder, error) {
	ru, err := readURL(u, offset, protocol.LiveSSE, cursor)
	if err != nil {
		return nil, &Error{Op: op, URL: redactURL(u), Err: err}
	}
	cl := &call{op: op, method: http.MethodGet, url: ru, header: http.Header{"Accept": {"text/event-stream"}}, stream: true}
	resp, err := c.send(ctx, cl)
	if err != nil {
		return nil, err
	}
	if resp.status != http.StatusOK {
		resp.raw.Body.Close()
		return nil, c.protocolError(cl, resp, fmt.Errorf("%w: SSE answered with status %d", ErrProtocol, resp.status))
	}
	if ct := protocol.BaseMediaType(resp.header.Get("Content-Type")); ct != "text/event-stream" {
		resp.raw.Body.Close()
		return nil, c.protocolError(cl, resp, fmt.Errorf("%w: SSE response has Content-Type %q", ErrProtocol, ct))
	}
	b64 := strings.EqualFold(strings.TrimSpace(resp.header.Get(protocol.HeaderSSEDataEncoding)), "base64")
	lineLimit := limit
	if b64 {
		lineLimit = limit/3*4 + 8
	}
	lineLimit = min(lineLimit+64, int64(^uint32(0)>>1))
	d := &sseDecoder{op: op, url: ru, body: resp.raw.Body, p: sse.NewParser(resp.raw.Body, int(lineLimit), int(lineLimit)),
		b64: b64, limit: limit}
	if isRealOffset(offset) {
		d.last = offset
	}
	return d, nil
}

// next reads events up to the next control event. Its errors are *Error:
// the end of the connection (any read error) wraps ErrDisconnected, which
// is transient; data beyond the limit is ErrResponseTooLarge; a bad event
// is ErrProtocol.
func (d *sseDecoder) next() (rawChunk, error) {
	d.buf, d.parts = d.buf[:0], d.parts[:0]
	for {
		ev, err := d.p.Next()
		if err != nil {
			switch {
			case errors.Is(err, sse.ErrLineTooLong), errors.Is(err, sse.ErrEventTooLarge):
				return rawChunk{}, d.fail(fmt.Errorf("%w: %w", ErrResponseTooLarge, err))
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				return rawChunk{}, d.fail(fmt.Errorf("%w (%w)", ErrDisconnected, err))
			default:
				return rawChunk{}, d.fail(fmt.Errorf("%w: %w", ErrDisconnected, err))
			}
		}
		if d.onEvent != nil {
			d.onEvent()
		}
		switch ev.Type {
		case protocol.SSEEventData:
			if err := d.data(ev.Data); err != nil {
				return rawChunk{}, d.fail(err)
			}
		case protocol.SSEEventControl:
			ch, err := d.control(ev.Data)
			if err != nil {
				return rawChunk{}, d.fail(err)
			}
			return ch, nil
		default:
			// Unknown event types are ignored (forward compatibility).
		}
	}
}

// data appends a data event (decoded from base64 if the server said so).
func (d *sseDecoder) data(v string) error {
	if d.b64 {
		if strings.ContainsAny(v, "\r\n") {
			v = strings.NewReplacer("\n", "", "\r", "").Replace(v)
		}
		var err error
		if d.buf, err = base64.StdEncoding.AppendDecode(d.buf, []byte(v)); err != nil {
			return fmt.Errorf("%w: bad base64 in an SSE data event: %w", ErrProtocol, err)
		}
	} else {
		d.buf = append(d.buf, v...)
	}
	if int64(len(d.buf)) > d.limit {
		return fmt.Errorf("%w: SSE data between control events exceeds %d bytes", ErrResponseTooLarge, d.limit)
	}
	if d.arrays {
		start := 0
		if n := len(d.parts); n > 0 {
			start = d.parts[n-1]
		}
		if !isJSONArray(d.buf[start:]) {
			return fmt.Errorf("%w: SSE data event of a JSON stream is not a JSON array", ErrProtocol)
		}
	}
	d.parts = append(d.parts, len(d.buf))
	return nil
}

// control ends a chunk with a control event.
func (d *sseDecoder) control(raw string) (rawChunk, error) {
	ctl, next, err := parseControl(raw, d.last)
	if err != nil {
		return rawChunk{}, err
	}
	d.last = next
	d.controls++
	return rawChunk{
		data:     d.buf,
		parts:    d.parts,
		next:     next,
		cursor:   ctl.StreamCursor,
		upToDate: ctl.UpToDate || ctl.StreamClosed,
		closed:   ctl.StreamClosed,
	}, nil
}

// fail wraps err into the *Error of this connection (unless it is one).
func (d *sseDecoder) fail(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Op: d.op, URL: redactURL(d.url), Status: http.StatusOK, Err: err}
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
