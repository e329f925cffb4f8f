package durable

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/durablego/durable/internal/sse"
	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

var sseHeader = map[string]string{"Content-Type": "text/event-stream"}

func ctl(js string) string { return "event: control\ndata: " + js + "\n\n" }

func TestSSEStreamMock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		hdr     map[string]string
		body    string
		ctype   string
		want    []Chunk
		wantErr error // returned by the Next after the chunks
	}{
		{
			name: "text data then close",
			body: "event: data\ndata: hello\n\n" + ctl(`{"streamNextOffset":"5","streamCursor":"c1"}`) +
				": keep-alive comment\n\n" +
				"event: data\r\ndata: two\r\ndata: lines\r\n\r\n" + ctl(`{"streamNextOffset":"9","streamClosed":true}`),
			want: []Chunk{
				{Data: []byte("hello"), NextOffset: "5", Cursor: "c1"},
				{Data: []byte("two\nlines"), NextOffset: "9", Closed: true, UpToDate: true},
			},
			wantErr: io.EOF,
		},
		{
			name: "base64 split over lines",
			hdr:  map[string]string{"Stream-Sse-Data-Encoding": "base64"},
			body: "event: data\ndata: AQIDBAUG\ndata: BwgJCg==\n\n" + ctl(`{"streamNextOffset":"5","streamCursor":"c","upToDate":true}`),
			want: []Chunk{{Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, NextOffset: "5", Cursor: "c", UpToDate: true}},
			// connection ends without a close
			wantErr: ErrDisconnected,
		},
		{
			name:  "json batches merged",
			ctype: "application/json",
			body:  "event: data\ndata: [\ndata: {\"k\":1}\ndata: ]\n\nevent: data\ndata: [2,3]\n\nevent: data\ndata: []\n\n" + ctl(`{"streamNextOffset":"5","streamCursor":"c"}`),
			want:  []Chunk{{Data: []byte(`[{"k":1},2,3]`), ContentType: "application/json", NextOffset: "5", Cursor: "c"}},
			// partial data without control is dropped
			wantErr: ErrDisconnected,
		},
		{
			name:    "data without control is not delivered",
			body:    "event: data\ndata: orphan\n\n",
			wantErr: ErrDisconnected,
		},
		{name: "truncated event", body: "event: data\ndata: orph", wantErr: ErrDisconnected},
		{name: "control not json", body: ctl(`{nope`), wantErr: ErrProtocol},
		{name: "control without offset", body: ctl(`{"streamCursor":"c"}`), wantErr: ErrProtocol},
		{name: "control sentinel offset", body: ctl(`{"streamNextOffset":"now"}`), wantErr: ErrProtocol},
		{name: "bad base64", hdr: map[string]string{"Stream-Sse-Data-Encoding": "base64"}, body: "event: data\ndata: !!!\n\n", wantErr: ErrProtocol},
		{name: "json data not an array", ctype: "application/json", body: "event: data\ndata: {}\n\n", wantErr: ErrProtocol},
		{
			name: "offset goes backwards",
			body: ctl(`{"streamNextOffset":"5","streamCursor":"c"}`) + ctl(`{"streamNextOffset":"4","streamCursor":"c"}`),
			want: []Chunk{{NextOffset: "5", Cursor: "c"}}, wantErr: ErrProtocol,
		},
		{name: "unknown events ignored", body: "event: ping\ndata: x\n\n" + ctl(`{"streamNextOffset":"5","streamClosed":true}`),
			want: []Chunk{{NextOffset: "5", Closed: true, UpToDate: true}}, wantErr: io.EOF},
		{name: "oversized line", body: "event: data\ndata: " + strings.Repeat("x", 5000) + "\n\n", wantErr: ErrResponseTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t, WithMaxResponseBytes(4096))
			h := map[string]string{"Content-Type": "text/event-stream"}
			for k, v := range tc.hdr {
				h[k] = v
			}
			mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
				require.Equal(t, "sse", req.URL.Query().Get("live"))
				require.Equal(t, "3", req.URL.Query().Get("offset"))
				return mkResp(req, 200, h, io.NopCloser(strings.NewReader(tc.body)), -1), nil
			})
			s, err := c.OpenSSE(context.Background(), "s", ReadOptions{Offset: "3", ContentType: tc.ctype})
			require.NoError(t, err)
			defer s.Close()
			for _, want := range tc.want {
				got, err := s.Next(context.Background())
				require.NoError(t, err)
				if want.ContentType == "" {
					want.ContentType = tc.ctype
				}
				require.Equal(t, want, got)
			}
			_, err = s.Next(context.Background())
			require.ErrorIs(t, err, tc.wantErr)
			_, err2 := s.Next(context.Background())
			require.ErrorIs(t, err2, tc.wantErr, "sticky")
		})
	}
}

func TestSSEWrongContentType(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t)
	mt.RegisterNoResponder(reply(200, map[string]string{"Content-Type": "text/html"}, "<html>"))
	_, err := c.OpenSSE(context.Background(), "s", ReadOptions{})
	require.ErrorIs(t, err, ErrProtocol)
}

// TestOpenSSERejectsReadOnlyOptions: Live and IfNoneMatch mean nothing to
// an SSE connection; OpenSSE refuses them before any request.
func TestOpenSSERejectsReadOnlyOptions(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t)
	for _, o := range []ReadOptions{{Live: LiveLongPoll}, {IfNoneMatch: `"e"`}} {
		_, err := c.OpenSSE(context.Background(), "s", o)
		require.ErrorIs(t, err, ErrInvalidArgument)
		var e *Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, "sse", e.Op)
	}
	require.Zero(t, mt.GetTotalCallCount())
}

func TestSSENextHonoursContext(t *testing.T) {
	t.Parallel()
	c, mt := mockClient(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	mt.RegisterNoResponder(func(req *http.Request) (*http.Response, error) {
		return mkResp(req, 200, sseHeader, pr, -1), nil
	})
	s, err := c.OpenSSE(context.Background(), "s", ReadOptions{})
	require.NoError(t, err)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Next(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), 2*time.Second)
}

// FuzzSSEDecoder: whatever an SSE body holds, the decoder yields chunks
// whose data stays within the limit, whose parts end in order inside it,
// and whose offsets never go back; it never panics.
func FuzzSSEDecoder(f *testing.F) {
	f.Add("event: data\ndata: [1]\n\n"+ctl(`{"streamNextOffset":"0001","streamCursor":"c"}`), false)
	f.Add("event: data\ndata: eHl6\n\n"+ctl(`{"streamNextOffset":"0002","streamClosed":true}`), true)
	f.Add(ctl(`{"streamNextOffset":"0002"}`)+ctl(`{"streamNextOffset":"0001"}`), false)
	f.Fuzz(func(t *testing.T, body string, b64 bool) {
		const limit = 128
		d := &sseDecoder{op: "read", url: "http://h/s", body: io.NopCloser(strings.NewReader(body)), b64: b64, limit: limit}
		d.p = sse.NewParser(d.body, 256, 256)
		last := Offset("")
		for range len(body) + 1 {
			ch, err := d.next()
			if err != nil {
				return
			}
			if len(ch.data) > limit {
				t.Fatalf("%d bytes over a limit of %d", len(ch.data), limit)
			}
			prev := 0
			for _, end := range ch.parts {
				if end < prev || end > len(ch.data) {
					t.Fatalf("parts %v out of order for %d bytes", ch.parts, len(ch.data))
				}
				prev = end
			}
			if ch.next < last {
				t.Fatalf("offset went back from %q to %q", last, ch.next)
			}
			last = ch.next
		}
		t.Fatal("the decoder did not stop")
	})
}

func TestBinarySSE(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, nil)
	ctx := context.Background()
	data := []byte{0, 1, 2, 0xff, '\n', '\r'}
	_, err := c.Create(ctx, "bin", CreateOptions{ContentType: "application/octet-stream", Data: data, Closed: true})
	require.NoError(t, err)
	s, err := c.OpenSSE(ctx, "bin", ReadOptions{})
	require.NoError(t, err)
	defer s.Close()
	var buf []byte
	for {
		ch, err := s.Next(ctx)
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		buf = append(buf, ch.Data...)
	}
	require.Equal(t, data, buf)
}

func TestSSEServerReconnectInterval(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, []testserver.Option{testserver.WithSSECloseInterval(100 * time.Millisecond)})
	ctx := context.Background()
	_, err := c.Create(ctx, "r", CreateOptions{ContentType: "text/plain", Data: []byte("x")})
	require.NoError(t, err)
	s, err := c.OpenSSE(ctx, "r", ReadOptions{})
	require.NoError(t, err)
	defer s.Close()
	ch, err := s.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, "x", string(ch.Data))
	_, err = s.Next(ctx)
	require.ErrorIs(t, err, ErrDisconnected)
	require.True(t, IsRetryable(err))
}

// TestReadLiveSSE: Read with LiveSSE returns the first chunk of the SSE
// response: the data from the start, or an empty up-to-date chunk at the
// tail (and at OffsetNow), each with the offset and a cursor.
func TestReadLiveSSE(t *testing.T) {
	t.Parallel()
	_, c := newServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cr, err := c.Create(ctx, "tail", CreateOptions{ContentType: "text/plain", Data: []byte("x")})
	require.NoError(t, err)
	for off, data := range map[Offset]string{"": "x", cr.NextOffset: "", OffsetNow: ""} {
		ch, err := c.Read(ctx, "tail", ReadOptions{Offset: off, Live: LiveSSE})
		require.NoError(t, err)
		require.Equal(t, data, string(ch.Data), "from %q", off)
		require.True(t, ch.UpToDate)
		require.Equal(t, cr.NextOffset, ch.NextOffset)
		require.NotEmpty(t, ch.Cursor)
	}
}
