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

// Every status and header combination maps to one sentinel.
func TestStatusMapping(t *testing.T) {
	t.Parallel()
	prod := &Producer{ID: "p", Epoch: 1, Seq: 5}
	for _, tc := range []struct {
		name   string
		op     string // append, appendSeq, appendProducer, create, head
		status int
		hdr    map[string]string
		want   error
		check  func(t *testing.T, e *Error)
	}{
		{"400", "append", 400, nil, ErrBadRequest, nil},
		{"401", "head", 401, nil, ErrUnauthorized, nil},
		{"403 plain", "append", 403, nil, ErrForbidden, nil},
		{"403 epoch header on plain append", "append", 403, map[string]string{"Producer-Epoch": "3"}, ErrForbidden, nil},
		{"403 stale epoch", "appendProducer", 403, map[string]string{"Producer-Epoch": "3"}, ErrStaleEpoch,
			func(t *testing.T, e *Error) { require.Equal(t, int64(3), e.ServerEpoch) }},
		{"403 producer, garbage epoch", "appendProducer", 403, map[string]string{"Producer-Epoch": "x"}, ErrForbidden, nil},
		{"404", "head", 404, nil, ErrNotFound, nil},
		{"405", "append", 405, nil, ErrNotSupported, nil},
		{"410", "head", 410, nil, ErrGone, nil},
		{"412", "head", 412, nil, ErrPreconditionFailed, nil},
		{"413", "append", 413, nil, ErrPayloadTooLarge, nil},
		{"418", "head", 418, nil, ErrUnexpectedStatus, nil},
		{"429", "append", 429, map[string]string{"Retry-After": "3"}, ErrRateLimited,
			func(t *testing.T, e *Error) { require.Equal(t, int64(3), int64(e.RetryAfter.Seconds())) }},
		{"500", "append", 500, nil, ErrServer, nil},
		{"501", "append", 501, nil, ErrNotSupported, nil},
		{"409 closed", "append", 409, map[string]string{"Stream-Closed": "true", "Stream-Next-Offset": "42"}, ErrStreamClosed,
			func(t *testing.T, e *Error) { require.Equal(t, Offset("42"), e.NextOffset) }},
		{"409 closed wins over seq", "appendSeq", 409, map[string]string{"Stream-Closed": "TRUE"}, ErrStreamClosed, nil},
		{"409 closed: false is absent", "append", 409, map[string]string{"Stream-Closed": "false"}, ErrContentTypeMismatch, nil},
		{"409 producer gap", "appendProducer", 409, map[string]string{"Producer-Expected-Seq": "3", "Producer-Received-Seq": "5"}, ErrProducerSeqGap,
			func(t *testing.T, e *Error) {
				require.Equal(t, int64(3), e.ExpectedSeq)
				require.Equal(t, int64(5), e.ReceivedSeq)
			}},
		{"409 gap headers on plain append", "append", 409, map[string]string{"Producer-Expected-Seq": "3"}, ErrContentTypeMismatch, nil},
		{"409 seq", "appendSeq", 409, nil, ErrSeqConflict, nil},
		{"409 plain append", "append", 409, nil, ErrContentTypeMismatch, nil},
		{"409 producer, no gap headers", "appendProducer", 409, nil, ErrContentTypeMismatch, nil},
		{"409 create", "create", 409, nil, ErrStreamExists, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t, WithRetry(NoRetry()))
			mt.RegisterNoResponder(reply(tc.status, tc.hdr, "reason"))
			// The HEAD used to disambiguate a Stream-Seq 409 fails here, so the
			// error stays ErrSeqConflict.
			if tc.op == "appendSeq" {
				mt.RegisterResponder(http.MethodHead, mockBase+"s", reply(500, nil, ""))
			}
			ctx := context.Background()
			var err error
			switch tc.op {
			case "append":
				_, err = c.Append(ctx, "s", []byte("x"), AppendOptions{ContentType: "text/plain"})
			case "appendSeq":
				_, err = c.Append(ctx, "s", []byte("x"), AppendOptions{ContentType: "text/plain", Seq: "0001"})
			case "appendProducer":
				_, err = c.Append(ctx, "s", []byte("x"), AppendOptions{ContentType: "text/plain", Producer: prod})
			case "create":
				_, err = c.Create(ctx, "s", CreateOptions{ContentType: "text/plain"})
			case "head":
				_, err = c.Head(ctx, "s")
			}
			require.ErrorIs(t, err, tc.want)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tc.status, e.Status)
			if tc.status != 0 && tc.op != "head" {
				require.Equal(t, "reason", e.Message)
			}
			if tc.check != nil {
				tc.check(t, e)
			}
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
		{"close data without type", func() error { _, err := c.CloseStream(ctx, "s", CloseOptions{Data: []byte("x")}); return err }},
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
	_, c := newServer(t, []testserver.Option{testserver.WithMaxBodySize(16)}, WithRetry(NoRetry()))
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
		}, ErrPayloadTooLarge, nil},
		{"not found", func() error { _, err := c.Append(ctx, "nope", []byte("x"), tp); return err }, ErrNotFound, nil},
		{"read not found", func() error { _, err := c.Read(ctx, "nope", ReadOptions{}); return err }, ErrNotFound, nil},
		{"sse not found", func() error { _, err := c.OpenSSE(ctx, "nope", SSEOptions{}); return err }, ErrNotFound, nil},
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
	fin, err := c.CloseStream(ctx, "e", CloseOptions{})
	require.NoError(t, err)
	_, err = c.Append(ctx, "e", []byte("late"), tp)
	require.ErrorIs(t, err, ErrStreamClosed)
	require.ErrorAs(t, err, &e)
	require.Equal(t, fin.NextOffset, e.NextOffset)
	_, err = c.CloseStream(ctx, "e", CloseOptions{Data: []byte("late"), ContentType: "text/plain"})
	require.ErrorIs(t, err, ErrStreamClosed)
}

func TestInjectedStatusMappings(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, nil, WithRetry(NoRetry()))
	ctx := context.Background()
	_, err := c.Create(ctx, "f", CreateOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	for _, tc := range []struct {
		status int
		want   error
	}{
		{401, ErrUnauthorized}, {403, ErrForbidden}, {412, ErrPreconditionFailed},
		{429, ErrRateLimited}, {500, ErrServer}, {501, ErrNotSupported}, {418, ErrUnexpectedStatus},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv.InjectFault(testserver.Fault{Path: "f", Status: tc.status, Count: 1})
			defer srv.ClearFaults()
			_, err := c.Head(ctx, "f")
			require.ErrorIs(t, err, tc.want)
		})
	}
}
