package main

import (
	"errors"
	"net"
	"net/url"
	"strings"

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
	return strings.TrimPrefix(s, "durable: ")
}

// advise returns what the user can do about err, or "".
func advise(err error) string {
	var e *durable.Error
	switch {
	case errors.As(err, &e) && isUnreachable(e):
		return "check --server or $" + envServer
	case errors.Is(err, durable.ErrNotFound):
		return "check the stream name and --server / $" + envServer + " ('durable create NAME' creates a stream)"
	case errors.Is(err, durable.ErrUnauthorized), errors.Is(err, durable.ErrForbidden):
		return "check --header and $" + envToken
	case errors.Is(err, offsetstore.ErrLocked):
		return "stop that process or use another --offset-file"
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
