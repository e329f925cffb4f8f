package ui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newServer serves the UI in front of a handler that answers 299 for
// everything else.
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	srv := httptest.NewServer(Middleware("/v1/stream/")(next))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

func TestServesPageWithHeaders(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	cases := []struct{ path, ctype, contains string }{
		{"/ui/", "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"/ui/app.js", "text/javascript; charset=utf-8", "registryChange"},
		{"/ui/stream.js", "text/javascript; charset=utf-8", "class Follower"},
		{"/ui/render.js", "text/javascript; charset=utf-8", "class Renderer"},
		{"/ui/subs.js", "text/javascript; charset=utf-8", "class Subscriptions"},
		{"/ui/style.css", "text/css; charset=utf-8", ":root"},
		{"/ui/config.json", "application/json", `"streamPrefix":"/v1/stream/"`},
	}
	for _, tc := range cases {
		res, body := get(t, "GET", srv.URL+tc.path)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != tc.ctype || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", tc.path, res.StatusCode, res.Header.Get("Content-Type"), tc.contains, strings.Contains(body, tc.contains))
		}
		for name, want := range map[string]string{
			"Content-Security-Policy": ContentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"X-Frame-Options":         "DENY",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "no-cache",
		} {
			if got := res.Header.Get(name); got != want {
				t.Errorf("GET %s: %s = %q, want %q", tc.path, name, got, want)
			}
		}
		if res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET %s: the page is not for other origins, but has CORS headers", tc.path)
		}
	}
}

// TestCSPIsStrict: scripts and styles only from the page's own origin, no
// inline code, no eval, nothing framed; and the page itself has no inline
// script, style attribute or event handler the policy would block.
func TestCSPIsStrict(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*"} {
		for _, d := range strings.Split(ContentSecurityPolicy, ";") {
			if strings.HasPrefix(strings.TrimSpace(d), "script-src") || strings.HasPrefix(strings.TrimSpace(d), "style-src") {
				if strings.Contains(d, bad) {
					t.Errorf("CSP directive %q allows %s", d, bad)
				}
			}
		}
	}
	srv := newServer(t)
	_, page := get(t, "GET", srv.URL+"/ui/")
	inline := regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>[^<]+</script>|<style|\sstyle=|\son[a-z]+=|javascript:`)
	if m := inline.FindString(page); m != "" {
		t.Errorf("index.html has inline code the CSP blocks: %q", m)
	}
	for _, f := range []string{"app.js", "stream.js", "render.js", "subs.js"} {
		_, js := get(t, "GET", srv.URL+"/ui/"+f)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if strings.Contains(js, bad) {
				t.Errorf("%s uses %s", f, bad)
			}
		}
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	res, _ := get(t, "GET", srv.URL+"/ui")
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want a redirect to /ui/", res.StatusCode, res.Header.Get("Location"))
	}
	res, _ = get(t, "GET", srv.URL+"/ui/nope.js")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/nope.js: %d", res.StatusCode)
	}
	res, _ = get(t, "POST", srv.URL+"/ui/")
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /ui/: %d, Allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	res, body := get(t, "HEAD", srv.URL+"/ui/config.json")
	if res.StatusCode != 200 || body != "" || res.ContentLength <= 0 {
		t.Errorf("HEAD /ui/config.json: %d, body %q, length %d", res.StatusCode, body, res.ContentLength)
	}
	for _, p := range []string{"/", "/v1/stream/ui", "/uix", "/x/ui/"} {
		if res, _ := get(t, "GET", srv.URL+p); res.StatusCode != 299 {
			t.Errorf("GET %s: %d, want it passed on", p, res.StatusCode)
		}
	}
}

func TestConfigFollowsPrefix(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(Handler("/streams/"))
	defer srv.Close()
	_, body := get(t, "GET", srv.URL+"/ui/config.json")
	var cfg struct{ StreamPrefix string }
	if err := json.Unmarshal([]byte(body), &cfg); err != nil || cfg.StreamPrefix != "/streams/" {
		t.Fatalf("config %q (%v)", body, err)
	}
}
