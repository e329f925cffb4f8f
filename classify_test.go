package durable

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// TestStatusMapping: status and header combinations a real server never
// sends (headers of another kind of request, garbage values, odd
// spellings) still map to one sentinel. The statuses a server does send
// are checked against the testserver: TestInjectedStatusMappings and
// TestErrorMappingsAgainstServer.
func TestStatusMapping(t *testing.T) {
	t.Parallel()
	plain := AppendOptions{ContentType: "text/plain"}
	seq := AppendOptions{ContentType: "text/plain", Seq: "0001"}
	prod := AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p", Epoch: 1, Seq: 5}}
	for _, tc := range []struct {
		name   string
		opts   AppendOptions
		status int
		hdr    map[string]string
		want   error
	}{
		{"403 epoch header on plain append", plain, 403, map[string]string{"Producer-Epoch": "3"}, ErrForbidden},
		{"403 producer, garbage epoch", prod, 403, map[string]string{"Producer-Epoch": "x"}, ErrForbidden},
		{"409 closed wins over seq", seq, 409, map[string]string{"Stream-Closed": "TRUE"}, ErrStreamClosed},
		{"409 closed: false is absent", plain, 409, map[string]string{"Stream-Closed": "false"}, ErrContentTypeMismatch},
		{"409 gap headers on plain append", plain, 409, map[string]string{"Producer-Expected-Seq": "3"}, ErrContentTypeMismatch},
		{"409 producer, no gap headers", prod, 409, nil, ErrContentTypeMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t, WithRetry(RetryPolicy{MaxAttempts: 1}))
			mt.RegisterNoResponder(reply(tc.status, tc.hdr, "reason"))
			// The HEAD that disambiguates a Stream-Seq 409 fails here, so the
			// error stays what the 409 says.
			mt.RegisterResponder(http.MethodHead, mockBase+"s", reply(500, nil, ""))
			_, err := c.Append(context.Background(), "s", []byte("x"), tc.opts)
			require.ErrorIs(t, err, tc.want)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tc.status, e.Status)
			require.Equal(t, "reason", e.Message)
		})
	}
}

func TestSeqConflictDisambiguatedByHead(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		streamType string
		want       error
	}{
		{"application/json", ErrContentTypeMismatch},
		{"text/plain; charset=utf-8", ErrSeqConflict},
	} {
		t.Run(tc.streamType, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t)
			mt.RegisterResponder(http.MethodPost, mockBase+"s", reply(409, nil, ""))
			mt.RegisterResponder(http.MethodHead, mockBase+"s", reply(200, map[string]string{"Content-Type": tc.streamType, "Stream-Next-Offset": "1"}, ""))
			_, err := c.Append(context.Background(), "s", []byte("x"), AppendOptions{ContentType: "text/plain", Seq: "2"})
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestClientSideValidation(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"empty append", func() error { _, err := c.Append(ctx, "s", nil, AppendOptions{ContentType: "text/plain"}); return err }},
		{"append without content type", func() error { _, err := c.Append(ctx, "s", []byte("x"), AppendOptions{}); return err }},
		{"producer without id", func() error {
			_, err := c.Append(ctx, "s", []byte("x"), AppendOptions{ContentType: "a/b", Producer: &Producer{}})
			return err
		}},
		{"negative epoch", func() error {
			_, err := c.Append(ctx, "s", []byte("x"), AppendOptions{ContentType: "a/b", Producer: &Producer{ID: "p", Epoch: -1}})
			return err
		}},
		{"seq over 2^53", func() error {
			_, err := c.Append(ctx, "s", []byte("x"), AppendOptions{ContentType: "a/b", Producer: &Producer{ID: "p", Seq: 1 << 53}})
			return err
		}},
		{"stream-seq newline", func() error {
			_, err := c.Append(ctx, "s", []byte("x"), AppendOptions{ContentType: "a/b", Seq: "1\n2"})
			return err
		}},
		{"unmarshalable json", func() error { _, err := c.AppendJSON(ctx, "s", func() {}, AppendOptions{}); return err }},
		{"ttl and expires", func() error {
			_, err := c.Create(ctx, "s", CreateOptions{TTL: 1e9, ExpiresAt: timeNowPlusHour()})
			return err
		}},
		{"sub-second ttl", func() error { _, err := c.Create(ctx, "s", CreateOptions{TTL: 1500e6}); return err }},
		{"fork offset without source", func() error { _, err := c.Create(ctx, "s", CreateOptions{ForkOffset: "3"}); return err }},
		{"fork from other host", func() error { _, err := c.Create(ctx, "s", CreateOptions{ForkFrom: "http://other/x"}); return err }},
		{"negative sub-offset", func() error {
			_, err := c.Create(ctx, "s", CreateOptions{ForkFrom: "src", ForkSubOffset: -1})
			return err
		}},
		{"read auto", func() error { _, err := c.Read(ctx, "s", ReadOptions{Live: LiveAuto}); return err }},
		{"read bogus live", func() error { _, err := c.Read(ctx, "s", ReadOptions{Live: "push"}); return err }},
		{"empty stream name", func() error { return c.Delete(ctx, "") }},
		{"close data without type", func() error { _, err := c.CloseStream(ctx, "s", []byte("x"), AppendOptions{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.ErrorIs(t, tc.do(), ErrInvalidArgument)
		})
	}
	require.Zero(t, mt.GetTotalCallCount(), "nothing sent for invalid arguments")
}

func timeNowPlusHour() time.Time { return time.Now().Add(time.Hour) }

func TestErrorMappingsAgainstServer(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, []testserver.Option{testserver.WithMaxBodySize(16)}, WithRetry(RetryPolicy{MaxAttempts: 1}))
	ctx := context.Background()
	_, err := c.Create(ctx, "e", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	tp := AppendOptions{ContentType: "text/plain"}

	for _, tc := range []struct {
		name  string
		do    func() error
		want  error
		check func(t *testing.T, e *Error)
	}{
		{"create with other config", func() error {
			_, err := c.Create(ctx, "e", CreateOptions{ContentType: "application/json"})
			return err
		}, ErrStreamExists, nil},
		{"content type mismatch", func() error {
			_, err := c.Append(ctx, "e", []byte("1"), AppendOptions{ContentType: "application/json"})
			return err
		}, ErrContentTypeMismatch, nil},
		{"payload too large", func() error {
			_, err := c.Append(ctx, "e", []byte(strings.Repeat("x", 64)), tp)
			return err
		}, ErrStatus, nil},
		{"not found", func() error { _, err := c.Append(ctx, "nope", []byte("x"), tp); return err }, ErrNotFound, nil},
		{"read not found", func() error { _, err := c.Read(ctx, "nope", ReadOptions{}); return err }, ErrNotFound, nil},
		{"sse not found", func() error { _, err := c.OpenSSE(ctx, "nope", ReadOptions{}); return err }, ErrNotFound, nil},
		{"delete not found", func() error { return c.Delete(ctx, "nope") }, ErrNotFound, nil},
		{"bad offset", func() error { _, err := c.Read(ctx, "e", ReadOptions{Offset: "garbage!"}); return err }, ErrBadRequest, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			require.ErrorIs(t, err, tc.want)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.NotZero(t, e.Status)
		})
	}

	// Stream-Seq.
	_, err = c.Append(ctx, "e", []byte("1"), AppendOptions{ContentType: "text/plain", Seq: "b"})
	require.NoError(t, err)
	_, err = c.Append(ctx, "e", []byte("2"), AppendOptions{ContentType: "text/plain", Seq: "a"})
	require.ErrorIs(t, err, ErrSeqConflict)
	// Stream-Seq that would be fine, but the content type is wrong: the HEAD tells.
	_, err = c.Append(ctx, "e", []byte("3"), AppendOptions{ContentType: "application/json", Seq: "c"})
	require.ErrorIs(t, err, ErrContentTypeMismatch)

	// Producers.
	p := func(epoch, seq int64) AppendOptions {
		return AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "w1", Epoch: epoch, Seq: seq}}
	}
	r, err := c.Append(ctx, "e", []byte("p0"), p(1, 0))
	require.NoError(t, err)
	require.False(t, r.Duplicate)
	require.Equal(t, int64(1), r.ProducerEpoch)
	require.Equal(t, int64(0), r.ProducerSeq)
	dup, err := c.Append(ctx, "e", []byte("p0"), p(1, 0))
	require.NoError(t, err)
	require.True(t, dup.Duplicate)
	_, err = c.Append(ctx, "e", []byte("p3"), p(1, 3))
	require.ErrorIs(t, err, ErrProducerSeqGap)
	var e *Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, int64(1), e.ExpectedSeq)
	require.Equal(t, int64(3), e.ReceivedSeq)
	_, err = c.Append(ctx, "e", []byte("z"), p(0, 0))
	require.ErrorIs(t, err, ErrStaleEpoch)
	require.ErrorAs(t, err, &e)
	require.Equal(t, int64(1), e.ServerEpoch)
	_, err = c.Append(ctx, "e", []byte("x"), p(2, 5))
	require.ErrorIs(t, err, ErrBadRequest, "a new epoch must start at seq 0")

	// Closed.
	fin, err := c.CloseStream(ctx, "e", nil, AppendOptions{})
	require.NoError(t, err)
	_, err = c.Append(ctx, "e", []byte("late"), tp)
	require.ErrorIs(t, err, ErrStreamClosed)
	require.ErrorAs(t, err, &e)
	require.Equal(t, fin.NextOffset, e.NextOffset)
	_, err = c.CloseStream(ctx, "e", []byte("late"), AppendOptions{ContentType: "text/plain"})
	require.ErrorIs(t, err, ErrStreamClosed)
}

// TestInjectedStatusMappings: each status a server answers with maps to
// its sentinel, for a HEAD (no body) and for an append (the body is the
// Error's Message); Retry-After is carried on the Error.
func TestInjectedStatusMappings(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil, WithRetry(RetryPolicy{MaxAttempts: 1}))
	ctx := context.Background()
	_, err := c.Create(ctx, "f", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	for _, tc := range []struct {
		status     int
		retryAfter time.Duration
		want       error
	}{
		{400, 0, ErrBadRequest}, {401, 0, ErrUnauthorized}, {403, 0, ErrForbidden}, {404, 0, ErrNotFound},
		{405, 0, ErrStatus}, {410, 0, ErrGone}, {412, 0, ErrStatus},
		{413, 0, ErrStatus}, {418, 0, ErrStatus}, {429, 3 * time.Second, ErrStatus},
		{500, 0, ErrServer}, {501, 0, ErrStatus},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv.InjectFault(testserver.Fault{Path: "f", Status: tc.status, RetryAfter: tc.retryAfter, Count: 2})
			defer srv.ClearFaults()
			_, headErr := c.Head(ctx, "f")
			_, appendErr := c.Append(ctx, "f", []byte("x"), AppendOptions{ContentType: "text/plain"})
			for _, err := range []error{headErr, appendErr} {
				require.ErrorIs(t, err, tc.want)
				var e *Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, tc.status, e.Status)
				require.Equal(t, tc.retryAfter, e.RetryAfter)
			}
			var e *Error
			require.ErrorAs(t, appendErr, &e)
			require.Equal(t, "injected fault", e.Message)
		})
	}
}
