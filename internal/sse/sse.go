// Package sse parses a text/event-stream (Server-Sent Events) body following
// the WHATWG HTML "event stream interpretation" rules, with bounded memory.
//
// Rules implemented: lines end with CRLF, LF or CR; a leading UTF-8 BOM is
// dropped; a line starting with ':' is a comment and ignored; otherwise the
// field name is what precedes the first ':' (or the whole line) and the value
// what follows it, minus one leading space; "event" sets the event type,
// "data" appends its value and a newline to the data buffer, "id" sets the
// last event ID unless the value contains NUL, "retry" sets the reconnection
// time when the value is all ASCII digits, and other fields are ignored; a
// blank line dispatches the event, dropping the data buffer's final newline.
// An event whose data buffer is empty (no data line) is not dispatched. The
// last event ID persists across events, as in a browser.
//
// Deviation: bytes are passed through unchanged rather than decoded as UTF-8
// with replacement characters.
package sse

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"time"
)

// Event is one dispatched event.
type Event struct {
	// Type is the event type: the last "event" field's value, or "message"
	// when the event had none (as in the WHATWG rules).
	Type string
	// Data is the "data" field values joined with "\n".
	Data string
	// ID is the last event ID at dispatch (it persists across events).
	ID string
}

// Errors returned by [Parser.Next]. Both are permanent: the parser stops.
var (
	// ErrLineTooLong reports a line longer than the parser's maxLine.
	ErrLineTooLong = errors.New("sse: line too long")
	// ErrEventTooLarge reports an event whose data exceeds maxEvent bytes.
	ErrEventTooLarge = errors.New("sse: event too large")
)

// Defaults used by [NewParser] for a non-positive limit.
const (
	DefaultMaxLine  = 1 << 20  // 1 MiB
	DefaultMaxEvent = 16 << 20 // 16 MiB
)

const maxBufSize = 64 << 10

// Parser reads events from an event stream. It is not safe for concurrent
// use. Its memory is bounded by a read buffer of at most 64 KiB, maxLine and
// maxEvent, whatever the input.
type Parser struct {
	r        io.Reader
	maxLine  int
	maxEvent int

	buf        []byte // read buffer; buf[start:end] is unread
	start, end int
	rerr       error  // error from r, reported once buffered data is used up
	line       []byte // accumulates a line that spans buffer refills
	skipLF     bool   // the previous line ended in CR: drop a following LF
	started    bool   // the first line (which may carry a BOM) was read

	data      []byte // data buffer, each value followed by '\n'
	eventType string
	lastID    string
	pending   bool // a field line was seen since the last dispatch
	retry     time.Duration
	hasRetry  bool

	err error // sticky error
}

// NewParser returns a parser reading from r. A line longer than maxLine bytes
// (not counting its terminator) fails with [ErrLineTooLong] and an event whose
// data would exceed maxEvent bytes fails with [ErrEventTooLarge], without
// buffering more than the limit. A non-positive limit selects
// [DefaultMaxLine] or [DefaultMaxEvent].
func NewParser(r io.Reader, maxLine, maxEvent int) *Parser {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	if maxEvent <= 0 {
		maxEvent = DefaultMaxEvent
	}
	size := min(maxBufSize, max(maxLine+2, 512))
	return &Parser{r: r, maxLine: maxLine, maxEvent: maxEvent, buf: make([]byte, size)}
}

// Retry returns the last reconnection time set by a "retry" field, if any.
func (p *Parser) Retry() (time.Duration, bool) { return p.retry, p.hasRetry }

// LastEventID returns the last event ID seen so far, even if no event was
// dispatched with it yet.
func (p *Parser) LastEventID() string { return p.lastID }

// Next returns the next event. It returns io.EOF when the stream ends cleanly
// (after a blank line, or after comments only), io.ErrUnexpectedEOF when it
// ends inside an event or a line, ErrLineTooLong or ErrEventTooLarge when a
// limit is exceeded, or the reader's error. Errors are sticky.
func (p *Parser) Next() (Event, error) {
	if p.err != nil {
		return Event{}, p.err
	}
	for {
		line, err := p.readLine()
		if err != nil {
			p.err = err
			return Event{}, err
		}
		if len(line) == 0 {
			if ev, ok := p.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if err := p.field(line); err != nil {
			p.err = err
			return Event{}, err
		}
	}
}

// dispatch ends the current event.
func (p *Parser) dispatch() (Event, bool) {
	p.pending = false
	if len(p.data) == 0 {
		p.eventType = ""
		return Event{}, false
	}
	ev := Event{Type: p.eventType, Data: string(p.data[:len(p.data)-1]), ID: p.lastID}
	if ev.Type == "" {
		ev.Type = "message"
	}
	p.data = p.data[:0]
	p.eventType = ""
	return ev, true
}

// field processes one non-blank line.
func (p *Parser) field(line []byte) error {
	if line[0] == ':' {
		return nil // comment
	}
	p.pending = true
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch {
	case string(name) == "data":
		if len(p.data)+len(value) > p.maxEvent {
			return ErrEventTooLarge
		}
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
	case string(name) == "event":
		p.eventType = internType(value)
	case string(name) == "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != p.lastID {
			p.lastID = string(value)
		}
	case string(name) == "retry":
		if ms, ok := parseDigits(value); ok {
			p.retry, p.hasRetry = time.Duration(ms)*time.Millisecond, true
		}
	}
	return nil
}

// internType avoids allocating for the event types this SDK sees.
func internType(v []byte) string {
	switch {
	case string(v) == "data":
		return "data"
	case string(v) == "control":
		return "control"
	case string(v) == "message":
		return "message"
	}
	return string(v)
}

// parseDigits parses a non-empty run of ASCII digits; values too large for a
// duration are rejected.
func parseDigits(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n > int64(time.Duration(1<<63-1)/time.Millisecond) {
		return 0, false
	}
	return n, true
}

var bom = []byte("\xef\xbb\xbf")

// readLine returns the next line without its terminator. The slice is valid
// until the next call. At the end of input it returns io.EOF if nothing is
// pending, or io.ErrUnexpectedEOF if a line or an event is incomplete.
func (p *Parser) readLine() ([]byte, error) {
	line, err := p.rawLine()
	if err != nil {
		return nil, err
	}
	if !p.started {
		p.started = true
		line = bytes.TrimPrefix(line, bom)
	}
	return line, nil
}

func (p *Parser) rawLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		if p.skipLF && p.start < p.end {
			if p.buf[p.start] == '\n' {
				p.start++
			}
			p.skipLF = false
		}
		chunk := p.buf[p.start:p.end]
		if i := bytes.IndexByte(chunk, '\n'); i >= 0 {
			if j := bytes.IndexByte(chunk[:i], '\r'); j >= 0 {
				i = j
				p.skipLF = true
			}
			p.start += i + 1
			return p.take(chunk[:i])
		}
		if j := bytes.IndexByte(chunk, '\r'); j >= 0 {
			p.start += j + 1
			p.skipLF = true
			return p.take(chunk[:j])
		}
		// No terminator in the buffer: the line continues.
		if len(p.line)+len(chunk) > p.maxLine {
			return nil, ErrLineTooLong
		}
		if p.rerr != nil {
			return nil, p.endOfInput(len(p.line) + len(chunk))
		}
		if p.start > 0 {
			// Move the partial line to the front to make room.
			p.end = copy(p.buf, chunk)
			p.start = 0
		}
		if p.end == len(p.buf) {
			// A line longer than the buffer: keep it aside, reuse the buffer.
			p.line = append(p.line, p.buf[:p.end]...)
			p.start, p.end = 0, 0
		}
		p.fill()
	}
}

// take returns a complete line made of p.line and seg.
func (p *Parser) take(seg []byte) ([]byte, error) {
	if len(p.line)+len(seg) > p.maxLine {
		return nil, ErrLineTooLong
	}
	if len(p.line) == 0 {
		return seg, nil
	}
	p.line = append(p.line, seg...)
	return p.line, nil
}

// fill reads more input into the buffer, recording the reader's error.
func (p *Parser) fill() {
	for tries := 0; tries < 100; tries++ {
		n, err := p.r.Read(p.buf[p.end:])
		if n < 0 || n > len(p.buf)-p.end {
			p.rerr = errors.New("sse: reader returned an invalid count")
			return
		}
		p.end += n
		if err != nil {
			p.rerr = err
			return
		}
		if n > 0 {
			return
		}
	}
	p.rerr = io.ErrNoProgress
}

// endOfInput reports the end of input with partial bytes of the current line
// still unterminated.
func (p *Parser) endOfInput(partial int) error {
	if p.rerr != io.EOF {
		return p.rerr
	}
	if partial > 0 || p.pending {
		return io.ErrUnexpectedEOF
	}
	return io.EOF
}
