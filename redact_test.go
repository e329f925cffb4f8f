package durable

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/jarcoal/httpmock"
	"github.com/stretchr/testify/require"
)

func TestErrorURLRedacted(t *testing.T) {
	t.Parallel()
	mt := httpmock.NewMockTransport()
	c, err := NewClient("http://user:hunter2@mock.test/v1/stream/", WithHTTPClient(&http.Client{Transport: mt}), WithRetry(NoRetry()))
	require.NoError(t, err)
	mt.RegisterNoResponder(reply(404, nil, "no such stream"))
	_, err = c.Read(context.Background(), "http://mock.test/s?token=abc&offset=1", ReadOptions{})
	require.ErrorIs(t, err, ErrNotFound)
	require.NotContains(t, err.Error(), "abc")
	_, err = c.Head(context.Background(), "s")
	require.ErrorIs(t, err, ErrNotFound)
	require.NotContains(t, err.Error(), "hunter2")
	require.Contains(t, err.Error(), "no such stream")
}

func TestNetworkErrorRedacted(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t, WithRetry(NoRetry()))
	mt.RegisterNoResponder(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("boom")
	})
	_, err := c.Head(context.Background(), "http://mock.test/v1/stream/s?token=abc")
	require.ErrorContains(t, err, "boom")
	require.NotContains(t, err.Error(), "abc")
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"http://h/v1/stream/a", "http://h/v1/stream/a"},
		{"http://user:pass@h/a", "http://REDACTED@h/a"},
		{"http://h/a?offset=5&token=abc", "http://h/a?offset=5&token=REDACTED"},
		{"http://h/a?X-Api-Key=k&live=sse", "http://h/a?X-Api-Key=REDACTED&live=sse"},
		{"http://h/a?access_token=t#frag", "http://h/a?access_token=REDACTED"},
		{"http://u:p@h/%zz?token=x", "http://REDACTED@h/%zz"},
		{"user:pass@h/v1/stream/a", "REDACTED@h/v1/stream/a"},
		{"user@h/v1/stream/a?token=abc", "REDACTED@h/v1/stream/a?token=REDACTED"},
		{"orders", "orders"},
		{"a/b@c", "a/b@c"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := redactURL(tc.in)
			require.Equal(t, tc.want, got)
			require.NotContains(t, got, "pass")
			require.NotContains(t, got, "abc")
		})
	}
}

func TestScrubSecrets(t *testing.T) {
	t.Parallel()
	secrets := []string{"Bearer s3cr3t-token", "s3cr3t-token", "hunter22"}
	for _, tc := range []struct{ in, want string }{
		{"bad auth: Bearer s3cr3t-token", "bad auth: REDACTED"},
		{"token s3cr3t-token and hunter22", "token REDACTED and REDACTED"},
		{"cut short: s3cr3t-to", "cut short: REDACTED"},
		{"nothing here", "nothing here"},
	} {
		require.Equal(t, tc.want, scrubSecrets(tc.in, secrets), tc.in)
	}
}

func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"http://u:pw@h/a?token=pw", "https://h/?a=1&api_key=pw", "pw", "http://%zz@pw"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.Contains(s, "hunter2") {
			t.Skip()
		}
		out := redactURL("http://user:hunter2@h/p?token=hunter2&x=" + s)
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %q", out)
		}
	})
}
