package durable

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReaderDecodeErrorIsTypedWithPosition(t *testing.T) {
	t.Parallel()
	for _, mode := range liveModes {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			_, c := newReaderServer(t)
			createJSON(t, c, "s")
			_, err := c.Append(context.Background(), "s", []byte(`[{"n":0},{"n":"not a number"},{"n":2}]`), AppendOptions{ContentType: "application/json"})
			require.NoError(t, err)
			store := newMemStore()
			r := openReader[event](t, c, "s", WithLive(mode), WithStore(store), WithCommitInterval(time.Hour))
			ctx := ctxT(t, 5*time.Second)
			nextEvent(t, ctx, r, 0)
			_, err = r.Next(ctx)
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			require.Equal(t, Position{Offset: "-1", Skip: 2}, de.Position)
			require.Equal(t, 1, de.Index)
			require.Equal(t, Offset("-1"), de.BatchOffset)
			require.Contains(t, string(de.Data), "not a number")
			require.Contains(t, err.Error(), "the 2nd message of the batch read from the start of the stream does not decode")
			// Close does not count the undecodable message as handled.
			require.NoError(t, r.Close(context.Background()))
			saved, ok, err := store.Load(ctx, r.key)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, Position{Offset: "-1", Skip: 1}, saved, "the saved position stays before the bad message")
			// A new reader meets it again, and calling Next again passes over it.
			r2 := openReader[event](t, c, "s", WithLive(mode), WithStore(store))
			_, err = r2.Next(ctx)
			require.ErrorAs(t, err, &de)
			nextEvent(t, ctx, r2, 2)
		})
	}
}

func TestReaderBytesStreams(t *testing.T) {
	t.Parallel()
	for _, ct := range []string{"application/octet-stream", "text/plain"} {
		for _, mode := range liveModes {
			t.Run(ct+"/"+string(mode), func(t *testing.T) {
				t.Parallel()
				_, c := newReaderServer(t)
				ctx := ctxT(t, 5*time.Second)
				_, err := c.Create(ctx, "b", CreateOptions{ContentType: ct, Data: []byte("hello ")})
				require.NoError(t, err)
				r := openReader[[]byte](t, c, "b", WithLive(mode))
				m, err := r.Next(ctx)
				require.NoError(t, err)
				require.Equal(t, "hello ", string(m.Value))
				payload := []byte("world\x00\x01\xff")
				if ct == "text/plain" {
					payload = []byte("world")
				}
				go func() {
					time.Sleep(50 * time.Millisecond)
					_, _ = c.Append(context.Background(), "b", payload, AppendOptions{ContentType: ct})
				}()
				m, err = r.Next(ctx)
				require.NoError(t, err)
				require.Equal(t, payload, m.Value, "SSE base64 decoded for binary streams")
				require.Equal(t, int64(0), m.Position.Skip)

				// Resume with a byte skip.
				store := newMemStore()
				require.NoError(t, store.Save(ctx, "k", Position{Offset: "-1", Skip: 3}))
				r2 := openReader[[]byte](t, c, "b", WithLive(LiveNone), WithStore(store), WithKey("k"))
				m, err = r2.Next(ctx)
				require.NoError(t, err)
				require.Equal(t, append([]byte("lo "), payload...), m.Value)
			})
		}
	}
}

func TestReaderMalformedJSONBatch(t *testing.T) {
	t.Parallel()
	bodies := map[string]string{
		"not an array":    `{"n":1}`,
		"unterminated":    `[{"n":1},{"n":2}`,
		"data after":      `[{"n":1}] x`,
		"missing comma":   `[{"n":1} {"n":2}]`,
		"trailing comma":  `[{"n":1},]`,
		"broken value":    `[{"n":1},{"n":}]`,
		"unbalanced":      `[{"n":[1}]`,
		"garbage element": `[{"n":1},tru]`,
	}
	for name, body := range bodies {
		for _, raw := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/raw=%v", name, raw), func(t *testing.T) {
				t.Parallel()
				hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.Header().Set("Stream-Next-Offset", "0_9")
					w.Header().Set("Stream-Up-To-Date", "true")
					io.WriteString(w, body)
				}))
				t.Cleanup(hs.Close)
				c, err := NewClient(hs.URL + "/")
				require.NoError(t, err)
				t.Cleanup(c.hc.CloseIdleConnections)
				ctx := ctxT(t, 5*time.Second)
				var errs []error
				var next func() error
				if raw {
					r, err := NewReader(c, "s", BytesCodec{}, WithLive(LiveNone))
					require.NoError(t, err)
					defer r.Close(context.Background())
					next = func() error { _, err := r.Next(ctx); return err }
				} else {
					r, err := NewReader(c, "s", JSONCodec[event]{}, WithLive(LiveNone))
					require.NoError(t, err)
					defer r.Close(context.Background())
					next = func() error { _, err := r.Next(ctx); return err }
				}
				for i := 0; i < 4; i++ {
					if err := next(); err != nil {
						errs = append(errs, err)
					}
				}
				require.NotEmpty(t, errs)
				first := errs[0]
				if errors.As(first, new(*DecodeError)) {
					// A value that is not JSON is the codec's to report (typed reader).
					require.False(t, raw)
					return
				}
				if name == "garbage element" && raw {
					return // the splitter checks structure only; raw bytes pass
				}
				require.ErrorIs(t, first, ErrProtocol, "%v", first)
				require.ErrorIs(t, errs[len(errs)-1], ErrProtocol, "sticky")
			})
		}
	}
}
