package jsoncodec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/durablego/durable"
	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// rec has reference fields, so that a value overwritten after it was
// handed out would show.
type rec struct {
	N    int            `json:"n"`
	S    string         `json:"s"`
	Tags []string       `json:"tags"`
	M    map[string]int `json:"m"`
}

// delivery is what a Reader handed out for one message, or the
// DecodeError it reported there (its Err aside: the two libraries word
// their errors differently).
type delivery struct {
	pos   durable.Position
	val   rec
	data  string
	bad   bool
	index int
	off   durable.Offset
}

func newServer(t *testing.T, opts ...testserver.Option) *durable.Client {
	t.Helper()
	srv := testserver.New(append([]testserver.Option{testserver.WithLongPollTimeout(time.Second)}, opts...)...)
	t.Cleanup(srv.Close)
	c, err := durable.NewClient(srv.StreamURL(""))
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// readAll reads total messages (errors included) with a Reader[rec] in
// the given live mode.
func readAll(t *testing.T, c *durable.Client, stream string, total int, codec durable.Codec[rec], opts ...durable.Option) []delivery {
	t.Helper()
	r, err := durable.NewReader(c, stream, codec, append([]durable.Option{durable.WithManualCommit()}, opts...)...)
	require.NoError(t, err)
	defer r.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []delivery
	for len(out) < total {
		m, err := r.Next(ctx)
		if err != nil {
			var de *durable.DecodeError
			require.ErrorAs(t, err, &de, "message %d", len(out))
			out = append(out, delivery{pos: de.Position, data: string(de.Data), bad: true, index: de.Index, off: de.BatchOffset})
			continue
		}
		out = append(out, delivery{pos: m.Position, val: m.Value, data: string(m.Data)})
	}
	return out
}

// TestReaderDecodesLikeJSONCodec: over catch-up, long-poll and SSE, a
// Reader with this Codec delivers exactly what one with the default
// JSONCodec delivers (decoding in Next): the same values, bytes and
// positions, and the same DecodeError at the same message for messages
// that do not fit T, after which both carry on.
func TestReaderDecodesLikeJSONCodec(t *testing.T) {
	t.Parallel()
	c := newServer(t, testserver.WithChunkLimit(64<<10))
	const stream, total = "like", 6000
	bad := map[int]string{
		17:   `{"n":"seventeen"}`,
		2048: `{"n":1,"tags":"not a list"}`,
		3000: `{"n":3000,"m":{"k":1.5}}`,
		5999: `[1,2]`,
	}
	_, err := c.Create(context.Background(), stream, durable.CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	for from := 0; from < total; from += 500 {
		body := []byte{'['}
		for i := from; i < from+500; i++ {
			if i > from {
				body = append(body, ',')
			}
			if b, ok := bad[i]; ok {
				body = append(body, b...)
				continue
			}
			body = fmt.Appendf(body, `{"n":%d,"s":"é \"%d\" \u2028","tags":["t%d",null],"m":{"k":%d}, "extra":[{}]}`, i, i, i, i)
		}
		body = append(body, ']')
		_, err := c.Append(context.Background(), stream, body, durable.AppendOptions{ContentType: "application/json"})
		require.NoError(t, err)
	}
	for name, live := range map[string]durable.LiveMode{"catch-up": durable.LiveNone, "long-poll": durable.LiveLongPoll, "sse": durable.LiveSSE} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := readAll(t, c, stream, total, durable.JSONCodec[rec]{}, durable.WithLive(live), durable.WithDecodeAhead(0))
			got := readAll(t, c, stream, total, Codec[rec]{}, durable.WithLive(live))
			require.Equal(t, want, got)
			n := 0
			for i, d := range got {
				if d.bad {
					n++
					require.Contains(t, bad, i, "message %d", i)
					require.Equal(t, bad[i], d.data)
				}
			}
			require.Equal(t, len(bad), n)
		})
	}
}

// TestReaderDecodeErrorPosition: the Reader's DecodeError names the
// message this Codec could not decode, and a Reader opened again at the
// position saved before it meets it again.
func TestReaderDecodeErrorPosition(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	_, err := c.Create(context.Background(), "s", durable.CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	_, err = c.Append(context.Background(), "s", []byte(`[{"n":0},{"n":"not a number"},{"n":2}]`), durable.AppendOptions{ContentType: "application/json"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := durable.NewReader(c, "s", Codec[rec]{}, durable.WithLive(durable.LiveNone))
	require.NoError(t, err)
	defer r.Close(context.Background())
	m, err := r.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, m.Value.N)
	_, err = r.Next(ctx)
	var de *durable.DecodeError
	require.ErrorAs(t, err, &de)
	require.Equal(t, durable.Position{Offset: "-1", Skip: 2}, de.Position)
	require.Equal(t, 1, de.Index)
	require.Contains(t, string(de.Data), "not a number")
	m, err = r.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, m.Value.N)
	_, err = r.Next(ctx)
	require.ErrorIs(t, err, durable.ErrCaughtUp)
}

// TestWriterWithCodec: what a Writer encodes with this Codec, a Reader with
// the default codec reads back unchanged.
func TestWriterWithCodec(t *testing.T) {
	t.Parallel()
	c := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Create(ctx, "w", durable.CreateOptions{ContentType: "application/json"})
	require.NoError(t, err)
	w, err := durable.NewWriter(c, "w", Codec[rec]{})
	require.NoError(t, err)
	var sent []rec
	for i := range 1000 {
		v := rec{N: i, S: fmt.Sprintf("<%d> & \"q\"", i), Tags: []string{"a"}, M: map[string]int{"z": i, "a": -i}}
		sent = append(sent, v)
		require.NoError(t, w.Write(ctx, v))
	}
	require.NoError(t, w.CloseStream(ctx))
	require.NoError(t, w.Close(ctx))
	r, err := durable.NewReader(c, "w", durable.JSONCodec[rec]{})
	require.NoError(t, err)
	defer r.Close(context.Background())
	var got []rec
	for {
		m, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, m.Value)
	}
	require.Equal(t, sent, got)
}
