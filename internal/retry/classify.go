// Package retry is the SDK's one retry engine: Classify tells a transient
// failure from a permanent one, and Do is the one backoff loop (on
// github.com/cenkalti/backoff/v4) that unary calls, the Reader, the Writer
// and the sibling packages of the module run. A Schedule holds the budget of
// one retry episode: it counts from the episode's first failure and starts
// afresh after any successful response.
package retry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Failure is what the classifier looks at: the outcome of one attempt.
type Failure struct {
	// Status is the HTTP status of the answer, 0 when none was received
	// (or the failure came after a successful status line, such as a body
	// cut short).
	Status int
	// RetryAfter is the server's Retry-After, 0 when it sent none.
	RetryAfter time.Duration
	// Err is the cause: a transport error, a marked error (Transient,
	// Permanent) or the sentinel of a status.
	Err error
	// Idempotent is true when sending the request again cannot apply it
	// twice: every method but POST, a POST with idempotent producer
	// headers, and a close without data. A request that is not idempotent
	// is retried only when it failed while dialing (nothing left the
	// machine).
	Idempotent bool
}

// Classify reports whether an attempt that ended in f may be retried, and
// the server's floor under the wait before the next attempt.
//
// Transient: network errors (refused, reset, timed out, a body cut short),
// errors marked Transient, 408, 429 and 5xx other than 501 and 505.
// Permanent: context cancellation and deadlines (unless marked Transient,
// as an attempt timeout is), errors marked Permanent, TLS certificate and
// handshake failures, and every other status. A transient failure of a
// request that is not idempotent is permanent unless it happened while
// dialing.
func Classify(f Failure) (retry bool, floor time.Duration) {
	if f.Status >= 300 {
		if !retryableStatus(f.Status) || !f.Idempotent {
			return false, 0
		}
		return true, f.RetryAfter
	}
	if f.Err == nil {
		return false, 0
	}
	if isDialError(f.Err) && !isPermanent(f.Err) {
		return true, 0
	}
	return f.Idempotent && transientError(f.Err), 0
}

// transientError classifies an error without a status.
func transientError(err error) bool {
	m := marks(err)
	switch {
	case m.transient:
		return true
	case m.permanent, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), isTLSConfigError(err):
		return false
	case m.noAnswer, errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

func isPermanent(err error) bool {
	return marks(err).permanent || isTLSConfigError(err)
}

// retryableStatus reports the statuses worth another attempt.
func retryableStatus(status int) bool {
	switch {
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests:
		return true
	case status == http.StatusNotImplemented, status == http.StatusHTTPVersionNotSupported:
		return false
	default:
		return status >= 500 && status <= 599
	}
}

// isDialError reports whether err happened while connecting, so that no
// byte of the request can have reached the server.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isTLSConfigError reports whether err is a TLS failure that no retry can
// mend: the server's certificate did not verify, or the server rejected the
// handshake with an alert (for example "certificate required" when our
// client certificate is missing or wrong).
func isTLSConfigError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
		remote   *net.OpError
	)
	switch {
	case errors.As(err, &verify), errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid), errors.As(err, &alert):
		return true
	case errors.As(err, &remote) && remote.Op == "remote error":
		// crypto/tls reports an alert received from the peer as a
		// *net.OpError with Op "remote error" wrapping a tls.alert.
		return true
	}
	return false
}

// marked is a sentinel error that carries its class.
type marked struct {
	msg       string
	transient bool
}

func (m *marked) Error() string { return m.msg }

// Transient returns a sentinel error the classifier always retries (when
// the request is idempotent), wherever it sits in an error's chain, even
// beside a Permanent one: a stale answer reported as a protocol violation
// is still worth another read.
func Transient(msg string) error { return &marked{msg: msg, transient: true} }

// Permanent returns a sentinel error the classifier never retries (unless
// a Transient one is also in the chain).
func Permanent(msg string) error { return &marked{msg: msg} }

// noAnswer wraps the failure of a request that got no HTTP answer.
type noAnswer struct{ err error }

func (n *noAnswer) Error() string { return n.err.Error() }
func (n *noAnswer) Unwrap() error { return n.err }

// NoAnswer marks err as the failure of a request that got no answer at all
// (the HTTP client's error: refused, reset, cut off in the headers, ...).
// Such failures are transient unless the cause is known to be permanent
// (cancellation, TLS, a Permanent error). The message is err's.
func NoAnswer(err error) error { return &noAnswer{err: err} }

// found is what marks finds in an error's tree.
type found struct{ transient, permanent, noAnswer bool }

// marks walks err's whole tree and reports the marks in it.
func marks(err error) found {
	var f found
	stack := []error{err}
	for len(stack) > 0 {
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch m := e.(type) {
		case *marked:
			if m.transient {
				f.transient = true
			} else {
				f.permanent = true
			}
		case *noAnswer:
			f.noAnswer = true
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				stack = append(stack, next)
			}
		case interface{ Unwrap() []error }:
			stack = append(stack, u.Unwrap()...)
		}
	}
	return f
}
