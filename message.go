package durable

import (
	"errors"
	"fmt"
	"strconv"
)

// Message is one message delivered by a Reader.
//
// For application/json streams a message is one element of the stream's
// JSON array; for every other content type it is the bytes of one read
// (one response body, or the data between two SSE control events).
type Message[T any] struct {
	// Value is Data decoded with the Reader's codec.
	Value T
	// Data is the raw bytes of the message. It aliases the Reader's read
	// buffer and is valid only until the next call of Next; copy it to keep
	// it.
	Data []byte
	// Position is the position just after this message: save it (Commit)
	// once the message is handled, and a Reader opened on it resumes with
	// the next message.
	Position Position
}

// Reader errors that are not an *Error from a request.
var (
	// ErrCaughtUp is returned by Next of a Reader opened with
	// WithLive(LiveNone) when it has delivered everything the stream held.
	// The stream is not closed: a later Next polls again (one request).
	ErrCaughtUp = errors.New("durable: reader caught up with the stream (live mode none)")
	// ErrClosed is returned by a Reader's Next and Commit, and by a
	// Writer's writes, after their Close; it is also the cause of the loss
	// of batches a Writer's Close had to abandon.
	ErrClosed = errors.New("durable: closed")
	// ErrCommit is wrapped by errors of a save to the offset store.
	ErrCommit = errors.New("durable: commit to the offset store failed")
	// ErrPositionRejected is wrapped (with ErrBadRequest or ErrGone) by the
	// error of a Reader whose saved position the server refuses: the
	// position is for another stream, or older than the stream's
	// retention. The Reader never starts over from the beginning on its
	// own.
	ErrPositionRejected = errors.New("the server rejected the saved position")
)

// DecodeError reports a message the Reader's codec could not decode into T,
// or a JSON batch the Reader could not split into messages; test for it
// with errors.As. It wraps the codec's error; for a batch that is not a
// JSON array it wraps ErrProtocol.
//
// A message that does not decode is not considered handled: the Reader's
// committed position stays before it (Position is where it would move to).
// Calling Next again passes over it, as the caller then chose to go on.
type DecodeError struct {
	Position    Position // the position just after the message (as Message.Position)
	BatchOffset Offset   // the offset the read that returned the message's batch started from
	Index       int      // the message's index in that batch
	Data        []byte   // up to 256 bytes of the raw message (a copy)
	Err         error    // the codec's error, or the batch syntax error
}

// Error implements error.
func (e *DecodeError) Error() string {
	from := "offset " + string(e.BatchOffset)
	if e.BatchOffset == OffsetStart || e.BatchOffset == "" {
		from = "the start of the stream"
	}
	return fmt.Sprintf("durable: the %s message of the batch read from %s does not decode: %v", ordinal(e.Index+1), from, e.Err)
}

// ordinal spells n (≥ 1) as 1st, 2nd, 3rd, 4th, ..., 11th, 12th, 13th, 21st, ...
func ordinal(n int) string {
	suffix := "th"
	switch n % 10 {
	case 1:
		suffix = "st"
	case 2:
		suffix = "nd"
	case 3:
		suffix = "rd"
	}
	if n%100 >= 11 && n%100 <= 13 {
		suffix = "th"
	}
	return strconv.Itoa(n) + suffix
}

// Unwrap returns the codec's error (or the batch syntax error).
func (e *DecodeError) Unwrap() error { return e.Err }
