package durable

import (
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
