package durable

import (
	"net/http"
	"net/url"
	"strings"
)

// secretQueryKeys are query parameter names (lower-case, compared after
// removing '-' and '_') whose values are replaced by "REDACTED" in errors
// and logs. Any name containing one of these words is redacted too.
var secretQueryKeys = []string{
	"token", "secret", "password", "passwd", "pwd", "key", "auth", "signature", "sig",
	"credential", "session", "jwt", "bearer", "code",
}

// redactURL returns raw with userinfo removed and secret-looking query
// values replaced, for use in errors and logs. A URL that does not parse is
// reduced to its part before any '?' or '@'.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			raw = raw[:i]
		}
		if i := strings.LastIndexByte(raw, '@'); i >= 0 {
			if j := strings.Index(raw, "://"); j >= 0 && j < i {
				raw = raw[:j+3] + "REDACTED@" + raw[i+1:]
			} else {
				raw = "REDACTED@" + raw[i+1:]
			}
		}
		return raw
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	// Without "//", "user:pass@host/x" parses as scheme "user" with the
	// opaque part "pass@host/x", and "user@host/x" as a path: userinfo
	// either way, so drop what stands before the '@' of the first segment.
	if u.Opaque != "" || (u.Scheme == "" && u.Host == "") {
		rest := u.Opaque
		if rest == "" {
			rest = u.Path
		}
		first, _, _ := strings.Cut(rest, "/")
		if i := strings.LastIndexByte(first, '@'); i >= 0 {
			u.Scheme, u.Opaque, u.Path, u.RawPath = "", "", "REDACTED@"+rest[i+1:], ""
		}
	}
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k, vs := range q {
			if isSecretKey(k) {
				for i := range vs {
					vs[i] = "REDACTED"
				}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	k = strings.NewReplacer("-", "", "_", "").Replace(k)
	for _, s := range secretQueryKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// requestSecrets lists the credential values a request carried: every value
// of a header that is not part of the protocol or of plain HTTP framing
// (Authorization also without its scheme word), the URL's userinfo, and
// secret-looking query values. A server that echoes them in an error body
// must not put them into an error string (see scrubSecrets).
func requestSecrets(req *http.Request) []string {
	if req == nil {
		return nil
	}
	var out []string
	add := func(v string) {
		if v = strings.TrimSpace(v); len(v) >= minSecretLen {
			out = append(out, v)
		}
	}
	for k, vs := range req.Header {
		if !mayCarrySecret(k) {
			continue
		}
		for _, v := range vs {
			add(v)
			if _, tok, ok := strings.Cut(v, " "); ok {
				add(tok)
			}
		}
	}
	if u := req.URL; u != nil {
		if u.User != nil {
			add(u.User.Username())
			if p, ok := u.User.Password(); ok {
				add(p)
			}
		}
		for k, vs := range u.Query() {
			if isSecretKey(k) {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	return out
}

// minSecretLen is the shortest value scrubSecrets removes: shorter ones
// would blank out ordinary words of a message.
const minSecretLen = 4

// mayCarrySecret reports whether a request header may hold a credential:
// anything but the protocol's own headers and plain HTTP framing.
func mayCarrySecret(name string) bool {
	name = http.CanonicalHeaderKey(name)
	switch name {
	case "Content-Type", "Content-Length", "Accept", "Accept-Encoding", "User-Agent", "If-None-Match", "Connection", "Transfer-Encoding":
		return false
	}
	return !strings.HasPrefix(name, "Stream-") && !strings.HasPrefix(name, "Producer-")
}

// scrubSecrets replaces every secret in msg by REDACTED, and cuts a
// message that ends in the first bytes of a secret (an excerpt cut short).
func scrubSecrets(msg string, secrets []string) string {
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "REDACTED")
	}
	for _, s := range secrets {
		for n := len(s) - 1; n >= minSecretLen-1; n-- {
			if strings.HasSuffix(msg, s[:n]) {
				msg = msg[:len(msg)-n] + "REDACTED"
				break
			}
		}
	}
	return msg
}
