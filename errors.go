package durable

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/durablego/durable/internal/retry"
)

// Sentinel errors. Every error returned by a Client operation is an *Error
// whose Err is one of these (for a status the server answered or a
// violation the client detected) or the underlying cause (network failure,
// context cancellation); test with errors.Is.
var (
	ErrNotFound            = errors.New("stream not found")                                    // 404
	ErrGone                = errors.New("stream gone")                                         // 410: soft-deleted, or offset before retention
	ErrStreamExists        = errors.New("stream exists with a different configuration")        // 409 on create
	ErrStreamClosed        = errors.New("stream closed")                                       // 409 with Stream-Closed: true
	ErrContentTypeMismatch = errors.New("content type does not match the stream's")            // 409 on append
	ErrSeqConflict         = errors.New("Stream-Seq not greater than the last one")            // 409 on append with Stream-Seq
	ErrStaleEpoch          = errors.New("stale producer epoch")                                // 403 with Producer-Epoch
	ErrProducerSeqGap      = errors.New("producer sequence gap")                               // 409 with Producer-Expected-Seq
	ErrBadRequest          = errors.New("bad request")                                         // 400
	ErrUnauthorized        = errors.New("unauthorized")                                        // 401
	ErrForbidden           = errors.New("forbidden")                                           // 403 (not a stale epoch)
	ErrServer              = errors.New("server error")                                        // 5xx but 501
	ErrStatus              = errors.New("error status")                                        // any other error status (Error.Status says which): 405, 412, 413, 429, 501, ...
	ErrProtocol            = retry.Permanent("server response violates the protocol")          // missing/invalid headers, bad body
	ErrResponseTooLarge    = retry.Permanent("response body larger than the configured limit") // see WithMaxResponseBytes
	ErrCrossHostRedirect   = retry.Permanent("redirect to another scheme or host refused")
	ErrInvalidArgument     = retry.Permanent("invalid argument") // rejected before any request was sent
	ErrDisconnected        = retry.Transient("live connection ended before the stream was closed")
)

// maxMessage bounds Error.Message, in bytes.
const maxMessage = 512

// Error describes a failed operation. It wraps a sentinel (or the
// underlying cause) in Err; errors.Is and errors.As see through it.
type Error struct {
	Op      string // "create", "append" (Append, AppendJSON), "close" (CloseStream), "head", "delete", "read" (Read, a Reader), "sse" (OpenSSE), "write" (a Writer)
	URL     string // stream URL with userinfo and secret-looking query values redacted
	Status  int    // HTTP status, 0 if none was received
	Message string // bounded, sanitised excerpt of the response body (≤ 512 bytes)
	Err     error  // sentinel or cause

	RetryAfter  time.Duration // server's Retry-After, if any (429, 503)
	NextOffset  Offset        // final offset reported with ErrStreamClosed
	ExpectedSeq int64         // with ErrProducerSeqGap: Producer-Expected-Seq
	ReceivedSeq int64         // with ErrProducerSeqGap: Producer-Received-Seq
	ServerEpoch int64         // with ErrStaleEpoch: the server's current Producer-Epoch

	hint string // what to check next, said last
}

// Error implements the error interface. It says each thing once: the
// operation and the URL, what went wrong (the sentinel or the cause, with
// the details of its fields), the HTTP status of an error answer, and the
// server's message when it adds something to those.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("durable: ")
	b.WriteString(e.Op)
	if e.URL != "" {
		b.WriteString(" ")
		b.WriteString(e.URL)
	}
	what := ""
	if e.Err != nil {
		what = e.Err.Error()
		if e.Err == ErrStatus && http.StatusText(e.Status) != "" {
			what = strings.ToLower(http.StatusText(e.Status))
		}
		b.WriteString(": ")
		b.WriteString(what)
	}
	switch {
	case errors.Is(e.Err, ErrStaleEpoch) && e.ServerEpoch > 0:
		fmt.Fprintf(&b, ": the server's epoch is %d", e.ServerEpoch)
	case errors.Is(e.Err, ErrProducerSeqGap):
		fmt.Fprintf(&b, ": expected seq %d, received %d", e.ExpectedSeq, e.ReceivedSeq)
	}
	status := ""
	if e.Status >= 300 {
		status = http.StatusText(e.Status)
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" && !saysNothingNew(e.Message, what+" "+status) {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.hint != "" {
		b.WriteString("; ")
		b.WriteString(e.hint)
	}
	return b.String()
}

// saysNothingNew reports whether every word of msg is already in said
// (ignoring case, punctuation and little words): a server's "stream is
// closed" adds nothing to "stream closed (HTTP 409)".
func saysNothingNew(msg, said string) bool {
	have := map[string]bool{}
	for _, w := range words(said) {
		have[w] = true
	}
	for _, w := range words(msg) {
		if !have[w] && !littleWords[w] {
			return false
		}
	}
	return true
}

// littleWords carry no meaning of their own in a server's message.
var littleWords = map[string]bool{"a": true, "an": true, "the": true, "is": true, "are": true, "was": true,
	"with": true, "of": true, "to": true, "for": true, "this": true, "that": true, "has": true, "been": true}

// words splits s into lower-case runs of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// Unwrap returns the sentinel or cause.
func (e *Error) Unwrap() error { return e.Err }

// IsRetryable reports whether err is transient: a network failure, a
// truncated response, a dropped live connection, 408, 429 or a 5xx other
// than 501/505. Context cancellation, protocol violations, TLS certificate
// failures and every other status are not retryable. It says nothing about
// whether resending is safe: a plain append (without producer headers) that
// failed this way may already have been applied.
func IsRetryable(err error) bool {
	ok, _ := classifier(true)(err)
	return ok
}

// excerpt turns up to maxMessage bytes of a response body into a printable
// single-line message.
func excerpt(body []byte) string {
	if len(body) > maxMessage {
		body = body[:maxMessage]
	}
	var b strings.Builder
	for len(body) > 0 {
		r, size := utf8.DecodeRune(body)
		body = body[size:]
		switch {
		case r == utf8.RuneError && size <= 1:
			b.WriteRune('\uFFFD')
		case r == '\n' || r == '\r' || r == '\t':
			b.WriteByte(' ')
		case !unicode.IsPrint(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return strings.TrimSpace(b.String())
}

// statusSentinel maps a status to its sentinel when no header refines it.
func statusSentinel(status int) error {
	switch {
	case status == http.StatusBadRequest:
		return ErrBadRequest
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusGone:
		return ErrGone
	case status >= 500 && status <= 599 && status != http.StatusNotImplemented:
		return ErrServer
	default:
		return ErrStatus
	}
}
