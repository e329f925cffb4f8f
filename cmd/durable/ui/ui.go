// Package ui serves the Test UI of `durable serve`: one page of plain HTML,
// CSS and JavaScript (no build step, no third-party code) embedded in the
// binary. The page talks to a Durable Streams server from the browser: it
// lists streams from the server's __registry__ stream, creates, forks,
// closes and deletes streams, follows them live and appends to them.
//
// The page keeps nothing secret: it sends no credentials, and the only
// thing it stores (in the browser's localStorage) is the stream base URL
// typed into its server field, without userinfo or query.
package ui

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

// Path is the URL path under which the page is served.
const Path = "/ui/"

// ContentSecurityPolicy is sent with every response of the UI route. The
// page runs only its own scripts and styles; it may connect to any http(s)
// server because its server field can point it at another one.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self' http: https:; base-uri 'none'; " +
	"form-action 'none'; frame-ancestors 'none'"

//go:embed static
var files embed.FS

// config is served as config.json: what the page needs to know about the
// server that serves it.
type config struct {
	StreamPrefix string `json:"streamPrefix"` // path prefix of streams, e.g. "/v1/stream/"
}

// Middleware returns an HTTP middleware that serves the page under Path
// and hands every other request to the next handler. streamPrefix is the
// path prefix under which the server keeps its streams; the page uses it
// for its default server URL.
func Middleware(streamPrefix string) func(http.Handler) http.Handler {
	page := Handler(streamPrefix)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == strings.TrimSuffix(Path, "/") || strings.HasPrefix(r.URL.Path, Path) {
				page.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Handler returns the handler of the UI route (requests whose path starts
// with Path; a request for Path without its trailing slash is redirected).
// It answers GET and HEAD only.
func Handler(streamPrefix string) http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic("ui: embedded files: " + err.Error()) // the embed directive guarantees it exists
	}
	cfg, err := json.Marshal(config{StreamPrefix: streamPrefix})
	if err != nil {
		panic("ui: config: " + err.Error())
	}
	fileServer := http.StripPrefix(Path, http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		switch r.URL.Path {
		case strings.TrimSuffix(Path, "/"):
			http.Redirect(w, r, Path, http.StatusMovedPermanently)
		case Path + "config.json":
			h.Set("Content-Type", "application/json")
			h.Set("Content-Length", strconv.Itoa(len(cfg)))
			if r.Method == http.MethodGet {
				_, _ = w.Write(cfg)
			}
		default:
			fileServer.ServeHTTP(w, r)
		}
	})
}
