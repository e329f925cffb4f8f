package durable

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durablego/durable/testserver"
	"github.com/stretchr/testify/require"
)

// aheadRec has reference fields, so that a value handed out and then
// overwritten by a later chunk's decoding would show.
type aheadRec struct {
	N    int            `json:"n"`
	Tags []string       `json:"tags"`
	M    map[string]int `json:"m"`
}

// countedRec is an aheadRec that counts its decodings in countedDecodes,
// so that a test sees whether a chunk's values were all decoded before
// Next handed out its first message.
type countedRec struct{ aheadRec }

var countedDecodes atomic.Int64

func (c *countedRec) UnmarshalJSON(b []byte) error {
	countedDecodes.Add(1)
	return json.Unmarshal(b, &c.aheadRec)
}

type seenMsg struct {
	pos  Position
	val  aheadRec
	data string
	err  string
}

// TestReaderDecodeAhead: decoding read-ahead chunks in the background, with
// one or several goroutines, delivers exactly what decoding in Next
// delivers: the same values (none overwritten by later chunks), data,
// positions and the same DecodeError at the same position for a message
// that does not fit T, after which Next carries on.
func TestReaderDecodeAhead(t *testing.T) {
	t.Parallel()
	// ~60 bytes a message, 128 KiB chunks: ~2,000 messages a chunk, enough
	// for 4 goroutines of minDecodeShare each.
	srv, c := newReaderServer(t, testserver.WithChunkLimit(128<<10))
	_ = srv
	const stream, total, bad = "ahead", 12000, 9001
	createJSON(t, c, stream)
	for from := 0; from < total; from += 1000 {
		var body []byte
		body = append(body, '[')
		for i := from; i < from+1000; i++ {
			if i > from {
				body = append(body, ',')
			}
			if i == bad {
				body = fmt.Appendf(body, `{"n":"bad %d"}`, i)
				continue
			}
			body = fmt.Appendf(body, `{"n":%d,"tags":["t%d","u"],"m":{"k":%d}}`, i, i, i)
		}
		body = append(body, ']')
		_, err := c.Append(context.Background(), stream, body, AppendOptions{ContentType: "application/json"})
		require.NoError(t, err)
	}
	// read reads the stream and returns what Next returned, and how many
	// chunks were decoded ahead: all their values decoded (countedDecodes)
	// by the time Next returned their first message. Decoding in Next
	// decodes one message per call (and a message that does not decode a
	// second time, for its error).
	read := func(t *testing.T, workers int) ([]seenMsg, int) {
		countedDecodes.Store(0)
		r := openReader[countedRec](t, c, stream, WithLive(LiveNone), WithDecodeAhead(workers))
		ctx := ctxT(t, 30*time.Second)
		var out []seenMsg
		type chunk struct{ first, decoded, msgs int64 }
		chunks := map[int]*chunk{}
		ci := 0 // the chunk being handed out: its last message is at the read's next offset (Skip 0)
		for {
			m, err := r.Next(ctx)
			if errors.Is(err, ErrCaughtUp) {
				break
			}
			if err != nil {
				var de *DecodeError
				require.ErrorAs(t, err, &de)
				out = append(out, seenMsg{pos: de.Position, data: string(de.Data), err: err.Error()})
				if de.Position.Skip == 0 {
					ci++
				}
				continue
			}
			if chunks[ci] == nil {
				chunks[ci] = &chunk{first: int64(len(out)), decoded: countedDecodes.Load()}
			}
			chunks[ci].msgs++
			out = append(out, seenMsg{pos: m.Position, val: m.Value.aheadRec, data: string(m.Data)})
			if m.Position.Skip == 0 {
				ci++
			}
		}
		ahead := 0
		for _, ch := range chunks {
			if ch.decoded >= ch.first+ch.msgs {
				ahead++
			}
		}
		return out, ahead
	}
	want, none := read(t, 0)
	require.Zero(t, none, "WithDecodeAhead(0) decodes in Next")
	require.Len(t, want, total)
	for i, m := range want {
		if i == bad {
			require.Contains(t, m.data, "bad 9001")
			require.Contains(t, m.err, "does not decode")
			continue
		}
		require.Empty(t, m.err)
		require.Equal(t, aheadRec{N: i, Tags: []string{fmt.Sprintf("t%d", i), "u"}, M: map[string]int{"k": i}}, m.val)
		enc, err := json.Marshal(m.val)
		require.NoError(t, err)
		require.JSONEq(t, string(enc), m.data)
	}
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			got, ahead := read(t, workers)
			require.Greater(t, ahead, 2, "chunks were decoded ahead")
			require.Equal(t, want, got)
		})
	}
}

// TestDecodeAheadFallsBack: a chunk decodeAhead cannot decode cleanly is
// left to Next (which reports the error where it is), whatever is wrong.
func TestDecodeAheadFallsBack(t *testing.T) {
	t.Parallel()
	big := func(mid string) []byte {
		b := []byte("[")
		for i := range 3000 {
			if i > 0 {
				b = append(b, ',')
			}
			if i == 2500 {
				b = append(b, mid...)
				continue
			}
			b = fmt.Appendf(b, `{"n":%d}`, i)
		}
		return append(b, ']')
	}
	tests := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"clean", big(`{"n":2500}`), true},
		{"empty array", []byte(" [ ] "), true},
		{"wrong type late", big(`{"n":"x"}`), false},
		{"invalid scalar the splitter passes", big(`tru`), false},
		{"not an array", []byte(`{"n":1}`), false},
		{"trailing data", append(big(`{"n":2500}`), 'x'), false},
	}
	for _, tt := range tests {
		for _, workers := range []int{1, 3} {
			t.Run(fmt.Sprintf("%s/workers=%d", tt.name, workers), func(t *testing.T) {
				var d decoded[event]
				ok := decodeAhead(context.Background(), tt.data, &d, workers)
				require.Equal(t, tt.ok, ok)
				if ok && len(d.vals) > 0 {
					for i, v := range d.vals {
						require.Equal(t, i, v.N)
					}
				}
			})
		}
	}
	t.Run("reused slabs are cleared", func(t *testing.T) {
		var d decoded[aheadRec]
		require.True(t, decodeAhead(context.Background(), []byte(`[{"n":1,"tags":["a"]},{"n":2,"m":{"x":1}}]`), &d, 1))
		require.True(t, decodeAhead(context.Background(), []byte(`[{"n":3},{"n":4}]`), &d, 1))
		require.Equal(t, []aheadRec{{N: 3}, {N: 4}}, d.vals)
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var d decoded[event]
		require.False(t, decodeAhead(ctx, big(`{"n":2500}`), &d, 2))
	})
}

func TestWithDecodeAheadValidated(t *testing.T) {
	t.Parallel()
	c, err := NewClient("http://127.0.0.1:1/v1/stream/")
	require.NoError(t, err)
	_, err = NewReader(c, "s", JSONCodec[event]{}, WithDecodeAhead(-1))
	require.ErrorIs(t, err, ErrInvalidArgument)
	require.ErrorContains(t, err, "WithDecodeAhead")
	r, err := NewReader(c, "s", JSONCodec[event]{}, WithDecodeAhead(0))
	require.NoError(t, err)
	require.NoError(t, r.Close(context.Background()))
}

// FuzzDecodeAhead: on any input, decoding ahead either declines (the chunk
// is then decoded in Next, which reports any error) or yields exactly what
// json.Unmarshal of the whole array yields, whatever the number of workers,
// with each value paired with its own element's bytes; and it declines
// nothing json.Unmarshal accepts.
func FuzzDecodeAhead(f *testing.F) {
	for _, s := range []string{
		`[]`, ` [ ] `, `[{"n":1}]`, `[{"n":1,"s":"a"},{"n":2}]`, `[{"n":"x"}]`, `[tru]`, `[1,2]`,
		`[{"n":1}] x`, `{"n":1}`, `[{"n":1},]`, `[{"s":"\u00e9\"]"}]`, `[null,{"n":3}]`,
		`[{"n":1}` + strings.Repeat(`,{"n":2}`, 1100) + `]`,
	} {
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, w uint8) {
		workers := int(w%4) + 1
		var d decoded[event]
		ok := decodeAhead(context.Background(), data, &d, workers)
		var want []event
		err := json.Unmarshal(data, &want)
		if !ok {
			if err == nil && want != nil {
				t.Fatalf("declined %q, which json.Unmarshal accepts", data)
			}
			return
		}
		if err != nil {
			t.Fatalf("decoded %q ahead, but json.Unmarshal fails: %v", data, err)
		}
		if len(want) != len(d.vals) {
			t.Fatalf("%d values, json.Unmarshal has %d", len(d.vals), len(want))
		}
		for i := range want {
			if want[i] != d.vals[i] {
				t.Fatalf("value %d = %+v, json.Unmarshal has %+v", i, d.vals[i], want[i])
			}
			span := data[d.spans[i].Start:d.spans[i].End]
			var one event
			if err := json.Unmarshal(span, &one); err != nil || one != d.vals[i] {
				t.Fatalf("span %d %q decodes to %+v (%v), not to value %d %+v", i, span, one, err, i, d.vals[i])
			}
		}
	})
}
