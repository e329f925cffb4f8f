package durable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

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

func TestErrorFormatting(t *testing.T) {
	t.Parallel()
	e := &Error{Op: "append", URL: "http://h/s", Status: 403, Err: ErrStaleEpoch, ServerEpoch: 7, Message: "fenced"}
	require.Equal(t, "durable: append http://h/s: 403 Forbidden: stale producer epoch (server epoch 7): fenced", e.Error())
	require.ErrorIs(t, e, ErrStaleEpoch)
	var got *Error
	require.ErrorAs(t, fmt.Errorf("wrapped: %w", e), &got)
	require.Equal(t, int64(7), got.ServerEpoch)
}

func TestExcerptBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 1000) // 2000 bytes
	got := excerpt([]byte(long))
	require.LessOrEqual(t, len(got), maxMessage+3) // a cut rune may become U+FFFD
	require.Equal(t, "a b\uFFFDc", excerpt([]byte("a\nb\x00c")))
}

func TestIsRetryable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"503", &Error{Status: 503, Err: ErrServer}, true},
		{"500", &Error{Status: 500, Err: ErrServer}, true},
		{"501", &Error{Status: 501, Err: ErrNotSupported}, false},
		{"429", &Error{Status: 429, Err: ErrRateLimited}, true},
		{"408", &Error{Status: 408, Err: ErrUnexpectedStatus}, true},
		{"404", &Error{Status: 404, Err: ErrNotFound}, false},
		{"409", &Error{Status: 409, Err: ErrStreamClosed}, false},
		{"canceled", &Error{Err: context.Canceled}, false},
		{"deadline", &Error{Err: context.DeadlineExceeded}, false},
		{"dial", &Error{Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, true},
		{"truncated", &Error{Err: io.ErrUnexpectedEOF}, true},
		{"disconnected", &Error{Status: 200, Err: ErrDisconnected}, true},
		{"disconnected no status", &Error{Err: ErrDisconnected}, true},
		{"protocol", &Error{Err: ErrProtocol}, false},
		{"too large", &Error{Err: ErrResponseTooLarge}, false},
		{"redirect", &Error{Err: ErrCrossHostRedirect}, false},
		{"invalid", &Error{Err: ErrInvalidArgument}, false},
		{"plain", errors.New("x"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, IsRetryable(tc.err))
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
