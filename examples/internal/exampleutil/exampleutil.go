// Package exampleutil holds the few helpers the example programs share.
package exampleutil

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/durablego/durable/testserver"
)

// BaseURL turns a server URL given on the command line into the base URL of
// its streams: a URL without a path ("http://127.0.0.1:4437", as printed by
// `durable serve`) gets the default prefix /v1/stream/; a URL with a path is
// used as it is, with a trailing slash added.
func BaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("bad -url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("bad -url %q: want http(s)://host[:port][/prefix/]", raw)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = testserver.DefaultPrefix
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.String(), nil
}

// IsTerminal reports whether f is a character device (a terminal), without
// a dependency beyond the standard library.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
