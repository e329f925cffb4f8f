package testserver

import (
	"net/http"
	"strings"
	"testing"
)

// TestMiddleware: the first middleware given is the outermost; a request a
// middleware answers never reaches the server (not counted); the others do.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	var order []string
	mark := func(name string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				order = append(order, name)
				if strings.HasPrefix(r.URL.Path, "/"+name+"/") {
					w.WriteHeader(http.StatusTeapot)
					return
				}
				next.ServeHTTP(w, r)
			})
		}
	}
	srv := newTestServer(t, WithMiddleware(mark("outer")), WithMiddleware(mark("inner")))
	mustStatus(t, call(t, "GET", srv.URL()+"/inner/x", nil, ""), http.StatusTeapot)
	if got := strings.Join(order, ","); got != "outer,inner" {
		t.Fatalf("order %s", got)
	}
	mustStatus(t, call(t, "GET", srv.URL()+"/outer/x", nil, ""), http.StatusTeapot)
	mustStatus(t, call(t, "PUT", srv.StreamURL("s"), text, ""), http.StatusCreated)
	if n := srv.Requests("", ""); n != 1 {
		t.Fatalf("server counted %d requests, want 1 (the PUT)", n)
	}
}
