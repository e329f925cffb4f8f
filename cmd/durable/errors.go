package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/offsetstore"
)

// describe returns err as the CLI reports it, on one line: what went wrong
// with what the user asked for, not which request of the command failed
// (the command's name is printed before it).
func describe(err error) string {
	s := err.Error()
	var e *durable.Error
	if errors.As(err, &e) {
		// "durable: head URL: ..." → "URL: ...": the request the command
		// made (head, read, ...) is not what the user asked for.
		inner := strings.TrimPrefix(e.Error(), "durable: "+e.Op+" ")
		if server, cause, ok := unreachable(e); ok {
			inner = "cannot reach the server at " + server + " (" + cause + ")"
		}
		s = strings.Replace(s, e.Error(), inner, 1)
	}
	s = strings.TrimPrefix(s, "durable: ")
	return strings.TrimPrefix(s, "offsetstore: ")
}

// advise returns what the user can do about err, or "".
func advise(err error) string {
	var e *durable.Error
	switch {
	case errors.As(err, &e) && isUnreachable(e):
		return "check --server or $" + envServer
	case errors.As(err, &e) && e.Op == "create" && errors.Is(err, durable.ErrNotFound):
		// Nothing to create a stream in: the URL is not under the
		// server's streams root.
		return "check that --server / $" + envServer + " is the server's streams root (for durable serve: http://HOST:PORT, which means http://HOST:PORT" + defaultStreamPrefix + ")"
	case errors.Is(err, durable.ErrNotFound):
		return "check the stream name and --server / $" + envServer + " ('durable create NAME' creates a stream)"
	case errors.Is(err, durable.ErrUnauthorized), errors.Is(err, durable.ErrForbidden):
		return "check --header and $" + envToken
	case errors.Is(err, durable.ErrStreamClosed):
		return "a closed stream takes no more appends"
	case errors.Is(err, durable.ErrContentTypeMismatch):
		if errors.As(err, &e) && e.Op == "close" {
			return "without --content-type the data is sent as the stream's type"
		}
		return "without --content-type (or --json) the data is sent as the stream's type"
	case errors.Is(err, durable.ErrStreamExists):
		return "'durable head' shows the stream, 'durable delete' removes it"
	case errors.Is(err, offsetstore.ErrLocked):
		return "stop that process, or use another file"
	}
	return ""
}

// report is the whole line for err: describe, then advise.
func report(err error) string {
	s := describe(err)
	if a := advise(err); a != "" {
		s += "; " + a
	}
	return s
}

// isUnreachable reports whether e is a failure to connect to the server.
func isUnreachable(e *durable.Error) bool {
	_, _, ok := unreachable(e)
	return ok
}

// unreachable reports whether e is a failure to connect to the server, and
// then returns the server (scheme and host) and the cause.
func unreachable(e *durable.Error) (server, cause string, ok bool) {
	var op *net.OpError
	if e.Status != 0 || !errors.As(e.Err, &op) || op.Op != "dial" {
		return "", "", false
	}
	server = e.URL
	if u, err := url.Parse(e.URL); err == nil && u.Host != "" {
		server = u.Scheme + "://" + u.Host
	}
	return server, op.Error(), true
}

// explained is an error the CLI reports in words of its own; it wraps the
// error it explains (errors.Is and errors.As see through it).
type explained struct {
	msg string
	err error
}

func (e *explained) Error() string { return e.msg }
func (e *explained) Unwrap() error { return e.err }

// explainExists turns a create that found the stream with another
// configuration into a message saying what differs.
func explainExists(ctx context.Context, cl *durable.Client, stream string, want durable.CreateOptions, err error) error {
	if !errors.Is(err, durable.ErrStreamExists) {
		return err
	}
	info, herr := cl.Head(ctx, stream)
	if herr != nil {
		return err
	}
	var diff []string
	wantCT := want.ContentType
	if wantCT == "" {
		wantCT = "application/octet-stream"
	}
	if !strings.EqualFold(wantCT, info.ContentType) {
		diff = append(diff, fmt.Sprintf("content type %s (asked: %s)", info.ContentType, wantCT))
	}
	if want.Closed != info.Closed {
		diff = append(diff, fmt.Sprintf("closed %t (asked: %t)", info.Closed, want.Closed))
	}
	if want.TTL != info.TTL {
		diff = append(diff, fmt.Sprintf("ttl %s (asked: %s)", ttlOrNone(info.TTL), ttlOrNone(want.TTL)))
	}
	if !want.ExpiresAt.Equal(info.ExpiresAt) {
		diff = append(diff, fmt.Sprintf("expires-at %s (asked: %s)", timeOrNone(info.ExpiresAt), timeOrNone(want.ExpiresAt)))
	}
	if len(diff) == 0 {
		return err
	}
	msg := fmt.Sprintf("stream %s already exists with %s", redact(stream), strings.Join(diff, ", "))
	return &explained{msg: msg, err: err}
}

// ttlOrNone is a TTL as the create error shows it: none for a stream without
// one (not "0s", which reads like a stream that expires at once).
func ttlOrNone(d time.Duration) string {
	if d == 0 {
		return "none"
	}
	return d.String()
}

func timeOrNone(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}
