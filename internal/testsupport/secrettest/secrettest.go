// Package secrettest holds the credentials the secrets tests attach to
// every request, and the search for them in what the SDK produced
// (errors, log lines, telemetry). The core module's tests and those of
// its nested modules use the same tokens.
package secrettest

import (
	"fmt"
	"net/url"
	"strings"
)

// The tokens, by where a test puts them. None may appear in an error, a
// log line or an exported attribute.
const (
	StaticAuth  = "hdr-SECRET-1f6b2c"    // WithHeader Authorization ("Bearer " + token)
	FuncAuth    = "fn-SECRET-9d3e7a"     // WithHeaderFunc Authorization (replaces the static one)
	APIKey      = "xkey-SECRET-5a8c1d"   // WithHeader X-Api-Key
	User        = "user-SECRET-27c4e9"   // URL userinfo user name
	Password    = "pass-SECRET-8e1f3b"   // URL userinfo password
	QueryToken  = "query-SECRET-4b9d6f"  // URL query ?token=
	QueryAPIKey = "apikey-SECRET-c3a7e2" // URL query ?api_key=
)

// Tokens are all of them, in the order of the constants.
var Tokens = []string{StaticAuth, FuncAuth, APIKey, User, Password, QueryToken, QueryAPIKey}

// StreamURL is the URL of stream name on base with the userinfo
// (User, Password) and query (QueryToken, QueryAPIKey) tokens.
func StreamURL(base, name string) (string, error) {
	u, err := url.Parse(base + name)
	if err != nil {
		return "", err
	}
	u.User = url.UserPassword(User, Password)
	u.RawQuery = url.Values{"token": {QueryToken}, "api_key": {QueryAPIKey}}.Encode()
	return u.String(), nil
}

// Find returns every token found in texts (as is or query-escaped,
// ignoring case), each with the text it is in.
func Find(texts ...string) []string {
	var found []string
	for _, s := range Tokens {
		for i, txt := range texts {
			low := strings.ToLower(txt)
			if strings.Contains(low, strings.ToLower(s)) || strings.Contains(low, strings.ToLower(url.QueryEscape(s))) {
				found = append(found, fmt.Sprintf("%s in text #%d: %.300q", s, i, txt))
			}
		}
	}
	return found
}
