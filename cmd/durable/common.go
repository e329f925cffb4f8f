package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/internal/link"
	"github.com/durablego/durable/internal/protocol"
)

// Environment variables read by every command that talks to a server.
const (
	envServer = "DURABLE_SERVER" // server URL for stream paths, when --server is not given
	envToken  = "DURABLE_TOKEN"  // bearer token, unless --header sets Authorization
)

// defaultStreamPrefix is the path used when a server URL has none: where
// "durable serve" and the reference server keep their streams.
const defaultStreamPrefix = "/v1/stream/"

// connFlags are the flags shared by every command that talks to a server.
type connFlags struct {
	server  string
	headers headerList
	timeout time.Duration
}

// connHelp documents the shared flags and environment in every --help.
const connHelp = `A stream is a full http(s) URL, or a path resolved against --server (default
$DURABLE_SERVER): "orders" is appended to the server URL, whose path defaults to
/v1/stream/ when it has none; "/x/orders" is taken from the server's root.
--header 'Name: value' (repeatable) is sent with every request; $DURABLE_TOKEN
sends "Authorization: Bearer <token>" unless --header sets Authorization.
Flags may come before or after arguments; "--" ends the flags.`

func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "", "server URL that stream paths are resolved against (default $"+envServer+")")
	fs.Var(&c.headers, "header", "request header `'Name: value'` (repeatable)")
	fs.DurationVar(&c.timeout, "timeout", 0, "bound on each request, retries included (0 = none; live reads are not bounded)")
}

// headerList collects repeated --header flags.
type headerList []string

func (h *headerList) String() string { return strings.Join(*h, ", ") }

// Set records v; it is checked by requestHeaders, whose error shows the
// header's name only (the flag package would print the whole value, which
// may be a credential).
func (h *headerList) Set(v string) error {
	*h = append(*h, v)
	return nil
}

// parseHeader parses "Name: value". The name must be an HTTP token; the value
// is trimmed of surrounding blanks and must not contain control characters
// (a CR or LF would split the request). Errors do not repeat s.
func parseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", errors.New("want 'Name: value'")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", "", errors.New("empty name: want 'Name: value'")
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return "", "", fmt.Errorf("invalid character %q in the name", name[i])
		}
	}
	value = strings.Trim(value, " \t")
	for i := 0; i < len(value); i++ {
		if c := value[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return "", "", errors.New("control character in the value")
		}
	}
	return http.CanonicalHeaderKey(name), value, nil
}

// isTokenChar reports whether c may appear in an HTTP header name (RFC 9110
// token).
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// requestHeaders returns the headers for every request: the --header flags,
// plus a bearer token from token when no Authorization header was given.
func requestHeaders(flags []string, token string) (http.Header, error) {
	h := http.Header{}
	for _, f := range flags {
		k, v, err := parseHeader(f)
		if err != nil {
			name, _, _ := strings.Cut(f, ":")
			return nil, fmt.Errorf("--header %q: %w", name, err)
		}
		h.Add(k, v)
	}
	if token = strings.TrimSpace(token); token != "" && h.Get("Authorization") == "" {
		for i := 0; i < len(token); i++ {
			if c := token[i]; c < 0x21 || c == 0x7f {
				return nil, fmt.Errorf("$%s contains a blank or control character", envToken)
			}
		}
		h.Set("Authorization", "Bearer "+token)
	}
	return h, nil
}

// errNoServer reports a stream path given without a server to resolve it
// against.
var errNoServer = errors.New("stream is a path: give --server or set $" + envServer + ", or use a full URL")

// resolveStream turns a stream argument into a full URL: an http(s) URL is
// used as it is; a path is resolved against server (see connHelp).
func resolveStream(stream, server string) (string, error) {
	if stream == "" {
		return "", errors.New("empty stream")
	}
	if strings.HasPrefix(stream, "http://") || strings.HasPrefix(stream, "https://") {
		if strings.ContainsFunc(stream, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return "", fmt.Errorf("stream URL %q contains a space or control character (percent-encode it)", redact(stream))
		}
		u, err := url.Parse(stream)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("invalid stream URL %q", stream)
		}
		if u.Fragment != "" {
			return "", fmt.Errorf("stream URL %q has a fragment", redact(stream))
		}
		return u.String(), nil
	}
	if strings.Contains(stream, "://") {
		return "", fmt.Errorf("stream URL %q: only http and https are supported", redact(stream))
	}
	if server == "" {
		return "", errNoServer
	}
	base, err := url.Parse(server)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", fmt.Errorf("server %q must be an absolute http(s) URL", redact(server))
	}
	if base.RawQuery != "" || base.Fragment != "" || base.ForceQuery {
		return "", fmt.Errorf("server %q must not have a query or fragment", redact(server))
	}
	if strings.ContainsAny(stream, "?#") {
		return "", fmt.Errorf("stream path %q contains '?' or '#'", stream)
	}
	for _, seg := range strings.Split(strings.Trim(stream, "/"), "/") {
		if seg == "." || seg == ".." {
			return "", fmt.Errorf("stream path %q contains a %q segment", stream, seg)
		}
		if seg == "" {
			return "", fmt.Errorf("stream path %q has an empty segment", stream)
		}
	}
	for _, r := range stream {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("stream path %q contains a control character", stream)
		}
	}
	prefix := base.Path
	if prefix == "" || prefix == "/" {
		prefix = defaultStreamPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	u := url.URL{Scheme: base.Scheme, User: base.User, Host: base.Host}
	if strings.HasPrefix(stream, "/") {
		u.Path = stream
	} else {
		u.Path = prefix + stream
	}
	return u.String(), nil
}

// redact removes credentials (user info, secret-looking query values) from
// a URL for messages, with the SDK's own redaction of URLs in errors and
// logs.
func redact(s string) string { return redactor()(s) }

// redactor is the SDK's URL redaction, reached through a Client made for it
// alone (it sends no request).
var redactor = sync.OnceValue(func() func(string) string {
	if cl, err := durable.NewClient("http://localhost/"); err == nil {
		if l, ok := link.Of(cl); ok {
			return l.Redact
		}
	}
	return func(string) string { return "(a URL)" } // not reached: NewClient takes that URL
})

// connect resolves the stream argument and returns a client for it and the
// stream's full URL, with the Client's options extra. A failure is a usage
// error (it is reported here).
func (c *connFlags) connect(stream string, stderr io.Writer, name string, extra ...durable.Option) (*durable.Client, string, error) {
	full, err := c.resolve(stream, stderr, name)
	if err != nil {
		return nil, "", err
	}
	// Every call passes the stream's full URL: the base URL only gives the
	// origin. Its path is the usual streams root, so that the SDK adds no
	// hint of its own about it to errors (the CLI's own advice names
	// --server).
	u, _ := url.Parse(full)
	base := url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host, Path: defaultStreamPrefix}
	cl, err := c.client(base.String(), stderr, name, extra...)
	return cl, full, err
}

// rootClient returns a Client whose base URL is the stream root of
// --server (or $DURABLE_SERVER), where subscriptions are found. A failure
// is a usage error (it is reported here).
func (c *connFlags) rootClient(stderr io.Writer, name string) (*durable.Client, error) {
	const probe = "__ds" // a path under the root: the root is what precedes it
	full, err := c.resolve(probe, stderr, name)
	if err != nil {
		return nil, err
	}
	return c.client(strings.TrimSuffix(full, probe), stderr, name)
}

// resolve resolves the stream argument against --server (or
// $DURABLE_SERVER) into a full URL.
func (c *connFlags) resolve(stream string, stderr io.Writer, name string) (string, error) {
	server := c.server
	if server == "" {
		server = os.Getenv(envServer)
	}
	full, err := resolveStream(stream, server)
	if err != nil {
		return "", usageErr(stderr, name, "%v", err)
	}
	return full, nil
}

// client returns a Client on base with the --header (and $DURABLE_TOKEN)
// and --timeout options, then extra.
func (c *connFlags) client(base string, stderr io.Writer, name string, extra ...durable.Option) (*durable.Client, error) {
	h, err := requestHeaders(c.headers, os.Getenv(envToken))
	if err != nil {
		return nil, usageErr(stderr, name, "%v", err)
	}
	opts := []durable.Option{durable.WithHeader("User-Agent", "durable-cli")}
	for k, vs := range h {
		for _, v := range vs {
			opts = append(opts, durable.WithHeader(k, v))
		}
	}
	if c.timeout < 0 {
		return nil, usageErr(stderr, name, "--timeout must not be negative")
	}
	if c.timeout > 0 {
		opts = append(opts, durable.WithRequestTimeout(c.timeout))
	}
	return durable.NewClient(base, append(opts, extra...)...)
}

// parseFrom parses a tail --from value: "start" (or "-1"), "now", or a server
// offset. Offsets are opaque, but the protocol forbids , & = ? / in them;
// blanks and control characters are refused too. Every server offset holds
// a digit (the reference servers' are digits and "_", ULIDs start with one),
// so a word without one is taken for a misspelt start or now and refused
// before any request: otherwise it would reach the server, fail there, and
// with --output be saved as the start.
func parseFrom(s string) (durable.Offset, error) {
	const forms = "want start, now, or an offset printed by durable head or append (such as 0000000000000000_0000000000000042)"
	switch s {
	case "start", "beginning", string(durable.OffsetStart):
		return durable.OffsetStart, nil
	case "now", "end":
		return durable.OffsetNow, nil
	case "":
		return "", errors.New("empty --from: " + forms)
	}
	if len(s) > 1024 {
		return "", errors.New("--from offset longer than 1024 bytes")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c == 0x7f || strings.IndexByte(",&=?/", c) >= 0 {
			return "", fmt.Errorf("--from %q: an offset must not contain %q", s, c)
		}
	}
	if !strings.ContainsAny(s, "0123456789") {
		return "", fmt.Errorf("--from %q: %s", s, forms)
	}
	return durable.Offset(s), nil
}

// parseTTL parses a --ttl value: a Go duration ("90s", "24h") or a whole
// number of seconds ("3600"). It must be positive and whole seconds.
func parseTTL(s string) (time.Duration, error) {
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, fmt.Errorf("--ttl %q: want a positive number of seconds", s)
		}
		d = time.Duration(n) * time.Second
	} else {
		d, err = time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("--ttl %q: want a duration such as 90s or 24h, or seconds", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("--ttl %q: must be positive", s)
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("--ttl %q: must be whole seconds", s)
	}
	return d, nil
}

// parseExpiresAt parses an --expires-at value: an RFC 3339 time.
func parseExpiresAt(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--expires-at %q: want an RFC 3339 time such as 2026-12-31T23:59:59Z", s)
	}
	return t, nil
}

// usageErr prints a usage error for a command and returns errUsage.
func usageErr(stderr io.Writer, name, format string, args ...any) error {
	fmt.Fprintf(stderr, "durable %s: %s\n", name, fmt.Sprintf(format, args...))
	fmt.Fprintf(stderr, "run 'durable %s --help' for usage\n", name)
	return errUsage
}

// flagGiven reports whether the flag name was given on the command line.
func flagGiven(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			found = true
		}
	})
	return found
}

// jsonType is the content type of JSON streams.
const jsonType = protocol.ContentTypeJSON

// isJSONType reports whether ct is a JSON content type (messages are framed
// as JSON values).
func isJSONType(ct string) bool { return protocol.IsJSON(ct) }
