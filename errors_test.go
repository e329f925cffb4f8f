package durable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestErrorFormatting(t *testing.T) {
	t.Parallel()
	e := &Error{Op: "append", URL: "http://h/s", Status: 403, Err: ErrStaleEpoch, ServerEpoch: 7, Message: "fenced"}
	require.Equal(t, "durable: append http://h/s: stale producer epoch: the server's epoch is 7 (HTTP 403): fenced", e.Error())
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
		{"501", &Error{Status: 501, Err: ErrStatus}, false},
		{"429", &Error{Status: 429, Err: ErrStatus}, true},
		{"408", &Error{Status: 408, Err: ErrStatus}, true},
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

func TestErrorMessageNotRepeated(t *testing.T) {
	t.Parallel()
	e := &Error{Op: "head", URL: "http://h/s", Status: 404, Err: ErrNotFound, Message: "Stream not found"}
	require.Equal(t, "durable: head http://h/s: stream not found (HTTP 404)", e.Error())
	e.Message = "no such stream: s"
	require.Equal(t, "durable: head http://h/s: stream not found (HTTP 404): no such stream: s", e.Error())
}

// TestErrorMessagesSayEachThingOnce: the errors of common mistakes, as a
// real server answers them, name the operation and say each thing once
// (before: "409 Conflict: stream closed: stream is closed", "404 Not
// Found: stream not found: not found", "stream exists with a different
// configuration: stream exists with different configuration"), a content
// type mismatch names both types, a 404 on Create says what to check, a
// refused connection does not repeat the method and URL, and a message
// that does not decode reads naturally.
func TestErrorMessagesSayEachThingOnce(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil)
	ctx := context.Background()
	base := srv.URL()
	_, err := c.Create(ctx, "closed", CreateOptions{ContentType: "application/json", Closed: true})
	require.NoError(t, err)
	_, err = c.Create(ctx, "text", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	_, err = c.Create(ctx, "json", CreateOptions{ContentType: "application/json", Data: []byte(`[{"n":1},{"n":"two"}]`)})
	require.NoError(t, err)
	elsewhere, err := NewClient(base + "/api/")
	require.NoError(t, err)
	dead, err := NewClient("http://127.0.0.1:1", WithRetry(RetryPolicy{MaxAttempts: 1}))
	require.NoError(t, err)
	decode := func() error {
		r, err := NewReader(c, "json", JSONCodec[event]{}, WithLive(LiveNone))
		require.NoError(t, err)
		defer r.Close(ctx)
		_, err = r.Next(ctx)
		require.NoError(t, err)
		_, err = r.Next(ctx)
		return err
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{second(c.AppendJSON(ctx, "closed", 1, AppendOptions{})),
			"durable: append " + base + "/v1/stream/closed: stream closed (HTTP 409)"},
		{second(c.Head(ctx, "nope")),
			"durable: head " + base + "/v1/stream/nope: stream not found (HTTP 404)"},
		{second(c.Create(ctx, "closed", CreateOptions{ContentType: "text/plain"})),
			"durable: create " + base + "/v1/stream/closed: stream exists with a different configuration (HTTP 409)"},
		{second(c.Append(ctx, "text", []byte("{}"), AppendOptions{ContentType: "application/json"})),
			"durable: append " + base + "/v1/stream/text: content type does not match the stream's: sent application/json, the stream's is text/plain (HTTP 409)"},
		{second(elsewhere.Create(ctx, "svc", CreateOptions{})),
			"durable: create " + base + "/api/svc: stream not found (HTTP 404); is the base URL the streams root? The usual form is " + base + "/v1/stream/"},
		{second(c.Read(ctx, "text", ReadOptions{Offset: "bogus"})),
			"durable: read " + base + "/v1/stream/text?offset=bogus: bad request (HTTP 400): malformed offset"},
		{second(dead.Head(ctx, "zz")),
			"durable: head http://127.0.0.1:1/v1/stream/zz: dial tcp 127.0.0.1:1: connect: connection refused"},
		{decode(),
			"durable: the 2nd message of the batch read from the start of the stream does not decode: json: cannot unmarshal string into Go struct field event.n of type int"},
	} {
		require.Error(t, tc.err)
		require.Equal(t, tc.want, tc.err.Error())
	}
}

// second returns the error of a call that returns a value and an error.
func second[V any](_ V, err error) error { return err }

func TestNetworkErrorTyped(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t, WithRetry(RetryPolicy{MaxAttempts: 1}))
	mt.RegisterNoResponder(func(*http.Request) (*http.Response, error) {
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	})
	_, err := c.Head(context.Background(), "s")
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "head", e.Op)
	require.Zero(t, e.Status)
	require.True(t, IsRetryable(err))
}

// TestErrorOps: every operation reports the Error.Op its documentation
// names, and those are all the values the package emits: create, append,
// close, head, delete, read (Client.Read and a Reader), sse and write.
func TestErrorOps(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t, WithRetry(RetryPolicy{MaxAttempts: 1}))
	mt.RegisterNoResponder(reply(404, nil, "no such stream"))
	ctx := context.Background()
	ops := map[string]func() error{
		"create": func() error { _, err := c.Create(ctx, "s", CreateOptions{}); return err },
		"append": func() error {
			_, err := c.Append(ctx, "s", []byte("x"), AppendOptions{ContentType: "text/plain"})
			return err
		},
		"close":  func() error { _, err := c.CloseStream(ctx, "s", nil, AppendOptions{}); return err },
		"head":   func() error { _, err := c.Head(ctx, "s"); return err },
		"delete": func() error { return c.Delete(ctx, "s") },
		"read":   func() error { _, err := c.Read(ctx, "s", ReadOptions{}); return err },
		"sse":    func() error { _, err := c.OpenSSE(ctx, "s", ReadOptions{}); return err },
	}
	reader := func() error {
		r, err := NewReader(c, "s", BytesCodec{}, WithLive(LiveNone))
		require.NoError(t, err)
		defer r.Close(ctx)
		_, err = r.Next(ctx)
		return err
	}
	writer := func() error {
		w, err := NewWriter(c, "s", BytesCodec{}, WithRetry(RetryPolicy{MaxAttempts: 1}))
		require.NoError(t, err)
		defer w.Close(ctx)
		_, err = w.WriteSync(ctx, []byte("x"))
		return err
	}
	check := func(want string, f func() error) {
		t.Helper()
		var e *Error
		require.ErrorAs(t, f(), &e, want)
		require.Equal(t, want, e.Op)
		require.ErrorIs(t, e, ErrNotFound)
	}
	for op, f := range ops {
		check(op, f)
	}
	check("read", reader)
	check("write", writer)
}

// TestErrorStatusSaysWhich: a status without a sentinel of its own is
// ErrStatus, and the message names the status.
func TestErrorStatusSaysWhich(t *testing.T) {
	t.Parallel()
	e := &Error{Op: "append", URL: "http://h/s", Status: 413, Err: ErrStatus}
	require.Equal(t, "durable: append http://h/s: request entity too large (HTTP 413)", e.Error())
	require.ErrorIs(t, e, ErrStatus)
}
