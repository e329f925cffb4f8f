package durable

// Credentials never leak: tokens given as headers (WithHeader,
// WithHeaderFunc) or in URLs (userinfo, ?token=, ?api_key=) must not
// appear in any error rendering, any log line (Debug level) or any panic,
// whatever fails.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/hostile"
	"github.com/stretchr/testify/require"
)

// The fault matrix (faultmatrix_test.go) runs with every credential
// attached and greps all it produced: that is the main secrets test. The
// tests here cover what the matrix does not.

// TestSecretsAreSent makes sure the secrets-mode client really sends the
// credentials, so that their absence from errors means something.
func TestSecretsAreSent(t *testing.T) {
	t.Parallel()
	srv := hostile.TinyChunks(10, 10, hostile.WithContentType("text/plain"))
	t.Cleanup(srv.Close)
	e := &relEnv{t: t, log: &relLog{}, secret: true}
	c := e.client(srv.URL + "/v1/stream/")
	_, err := c.Head(context.Background(), e.stream(srv.URL+"/v1/stream/", "s"))
	require.NoError(t, err)
	req, ok := srv.Recorder().Last()
	require.True(t, ok)
	require.Equal(t, "Bearer "+relSecrets[1], req.Header.Get("Authorization"), "HeaderFunc overrides the static header")
	require.Equal(t, relSecrets[2], req.Header.Get("X-Api-Key"))
	require.Contains(t, req.URL, relSecrets[5])
	require.Contains(t, req.URL, relSecrets[6])
}

// TestSecretsInvalidInput: URLs with credentials that the client rejects
// before sending anything.
func TestSecretsInvalidInput(t *testing.T) {
	t.Parallel()
	u, p, q := relSecrets[3], relSecrets[4], relSecrets[5]
	bases := []string{
		"ftp://" + u + ":" + p + "@example.com/v1/stream/",
		"http://" + u + ":" + p + "@example.com/v1/stream/?token=" + q,
		"http://" + u + ":" + p + "@example.com/v1/stream/#" + q,
		"http://" + u + ":" + p + "@[::1/v1/stream/",
		"http://" + u + ":" + p + "@exa mple.com/%zz?token=" + q,
	}
	var texts []string
	for _, b := range bases {
		_, err := NewClient(b)
		require.Error(t, err, b)
		require.ErrorIs(t, err, ErrInvalidArgument)
		texts = append(texts, errTexts(err)...)
	}
	log := &relLog{}
	c, err := NewClient("http://127.0.0.1:1/v1/stream/", WithLogger(log.logger()), WithRetry(NoRetry()))
	require.NoError(t, err)
	streams := []string{
		"http://" + u + ":" + p + "@[::1/s?token=" + q,
		"http://" + u + ":" + p + "@127.0.0.1:1/%zz?token=" + q,
		"http://" + u + ":" + p + "@/s?token=" + q,
		"s?token=" + q,
		"s#" + q,
	}
	ctx := context.Background()
	for _, s := range streams {
		_, err := c.Head(ctx, s)
		require.Error(t, err, s)
		texts = append(texts, errTexts(err)...)
		_, err = c.Append(ctx, s, []byte("x"), AppendOptions{ContentType: "text/plain"})
		require.Error(t, err, s)
		texts = append(texts, errTexts(err)...)
		_, err = c.Read(ctx, s, ReadOptions{})
		require.Error(t, err, s)
		texts = append(texts, errTexts(err)...)
	}
	texts = append(texts, log.String())
	for _, leak := range secretsIn(texts...) {
		t.Errorf("secret leaked: %s", leak)
	}
}

// TestSecretsSchemelessBaseURL: a base URL without a scheme but with
// userinfo parses as an opaque URL, and redactURL leaves it whole.
func TestSecretsSchemelessBaseURL(t *testing.T) {
	t.Parallel()
	_, err := NewClient(relSecrets[3] + ":" + relSecrets[4] + "@example.com/v1/stream/")
	require.ErrorIs(t, err, ErrInvalidArgument)
	for _, leak := range secretsIn(errTexts(err)...) {
		t.Errorf("secret leaked: %s", leak)
	}
}

// TestSecretsServerEcho: a server whose error bodies and headers echo the
// request (URL, Authorization, custom headers) — a common, careless
// pattern. The Client quotes error bodies in Error.Message, so it must
// scrub the credentials it sent.
func TestSecretsServerEcho(t *testing.T) {
	t.Parallel()
	statuses := []int{400, 401, 403, 404, 409, 410, 412, 413, 429, 500, 503}
	for _, status := range statuses {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(status)
				fmt.Fprintf(w, "denied %s %s auth=%q key=%q", r.Method, r.URL.String(), r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"))
			}))
			t.Cleanup(srv.Close)
			e := &relEnv{t: t, log: &relLog{}, secret: true}
			base := srv.URL + "/v1/stream/"
			c := e.client(base, WithRetry(RetryPolicy{Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1, MaxAttempts: 2}))
			s := e.stream(base, "s")
			ctx, cancel := context.WithTimeout(context.Background(), cellDeadline)
			defer cancel()
			var texts []string
			for _, run := range []func() error{
				func() error { _, err := c.Head(ctx, s); return err },
				func() error { _, err := c.Read(ctx, s, ReadOptions{}); return err },
				func() error { _, err := c.Read(ctx, s, ReadOptions{Live: LiveSSE}); return err },
				func() error {
					_, err := c.Append(ctx, s, []byte("x"), AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}})
					return err
				},
				func() error { _, err := c.Create(ctx, s, CreateOptions{}); return err },
				func() error { return c.Delete(ctx, s) },
			} {
				err := run()
				require.Error(t, err)
				texts = append(texts, errTexts(err)...)
			}
			texts = append(texts, e.log.String())
			for _, leak := range secretsIn(texts...) {
				t.Errorf("secret leaked: %s", leak)
			}
		})
	}
}

// TestSecretsNoPanicText: operations that fail in odd ways (a HeaderFunc
// error, a cancelled context, a nil-ish option) never panic, and if they
// did, the panic value would be checked too.
func TestSecretsNoPanicText(t *testing.T) {
	t.Parallel()
	srv := hostile.EndlessBody(hostile.WithContentType("text/plain"))
	t.Cleanup(srv.Close)
	log := &relLog{}
	base := srv.URL + "/v1/stream/"
	e := &relEnv{t: t, log: log, secret: true}
	var texts []string
	guard := func(name string, f func() error) {
		defer func() {
			if r := recover(); r != nil {
				texts = append(texts, fmt.Sprint(r), fmt.Sprintf("%#v", r))
				t.Errorf("%s panicked: %v", name, r)
			}
		}()
		texts = append(texts, errTexts(f())...)
	}
	c := e.client(base, WithMaxResponseSize(1<<16), WithHeaderFunc(func(context.Context) (http.Header, error) {
		return nil, fmt.Errorf("token service down")
	}))
	s := e.stream(base, "s")
	guard("headerfunc error", func() error { _, err := c.Head(context.Background(), s); return err })
	c2 := e.client(base, WithMaxResponseSize(1<<16), WithRetry(NoRetry()))
	guard("too large", func() error { _, err := c2.Read(context.Background(), s, ReadOptions{}); return err })
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	guard("cancelled", func() error { _, err := c2.Read(cancelled, s, ReadOptions{}); return err })
	guard("sse too large", func() error {
		_, err := c2.Read(context.Background(), s, ReadOptions{Live: LiveSSE})
		return err
	})
	texts = append(texts, log.String())
	for _, leak := range secretsIn(texts...) {
		t.Errorf("secret leaked: %s", leak)
	}
	require.False(t, strings.Contains(log.String(), "SECRET"))
}
