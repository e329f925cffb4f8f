package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/durablego/durable/cmd/durable/ui"
	"github.com/durablego/durable/internal/testsupport/syncbuf"
)

// startServe runs `durable serve` with args and returns its base URL and
// what it wrote to stderr so far (once the URL is out).
func startServe(t *testing.T, args ...string) (string, *syncbuf.Buffer) {
	t.Helper()
	_, out, errb := cli{}.start(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	var base string
	eventually(t, func() bool {
		base, _, _ = strings.Cut(out.String(), "\n")
		return strings.HasPrefix(base, "http://") && strings.Contains(out.String(), "\n")
	}, "durable serve printed its URL")
	return base, errb
}

func fetch(t *testing.T, method, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// TestServeUI: the UI is on by default (announced on stderr, stdout keeps
// only the base URL), served with its own CSP, while stream responses keep
// the server's headers and CORS; --ui=false removes the route.
func TestServeUI(t *testing.T) {
	t.Parallel()
	base, stderr := startServe(t)
	eventually(t, func() bool { return strings.Contains(stderr.String(), "Test UI at "+base+"/ui/") }, "UI URL on stderr")

	res := fetch(t, "GET", base+"/ui/")
	assert.Equal(t, 200, res.StatusCode)
	assert.Equal(t, ui.ContentSecurityPolicy, res.Header.Get("Content-Security-Policy"))
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	assert.Empty(t, res.Header.Get("Access-Control-Allow-Origin"))

	stream := fetch(t, "HEAD", base+"/v1/stream/__registry__")
	assert.Equal(t, 200, stream.StatusCode, "the registry is on by default")
	assert.Equal(t, "application/json", stream.Header.Get("Content-Type"))
	assert.Equal(t, "nosniff", stream.Header.Get("X-Content-Type-Options"))
	assert.Equal(t, "cross-origin", stream.Header.Get("Cross-Origin-Resource-Policy"))
	assert.Equal(t, "*", stream.Header.Get("Access-Control-Allow-Origin"))
	assert.Empty(t, stream.Header.Get("Content-Security-Policy"), "stream responses are unchanged")

	off, stderrOff := startServe(t, "--ui=false", "--registry=false")
	assert.Equal(t, 404, fetch(t, "GET", off+"/ui/").StatusCode)
	assert.Equal(t, 404, fetch(t, "GET", off+"/ui/app.js").StatusCode)
	assert.Equal(t, 404, fetch(t, "HEAD", off+"/v1/stream/__registry__").StatusCode)
	assert.NotContains(t, stderrOff.String(), "Test UI")
}

func TestServeUIFlags(t *testing.T) {
	t.Parallel()
	r := cli{}.run(t, "serve", "--help")
	for _, w := range []string{"-ui", "/ui/", "-registry", "__registry__", "Test UI is served at /ui/"} {
		assert.Contains(t, r.stderr, w)
	}
	r = cli{}.run(t, "serve", "--addr", "127.0.0.1:0", "--prefix", "/")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "overlaps the Test UI")

	base, _ := startServe(t, "--prefix", "/", "--ui=false")
	res := fetch(t, "GET", base+"/ui")
	assert.Equal(t, 404, res.StatusCode, "a stream path, not the UI, with --ui=false")
	assert.Empty(t, res.Header.Get("Content-Security-Policy"))
}
