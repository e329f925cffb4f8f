package sse

import (
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
)

// FuzzParser checks that the parser never panics, never returns an error
// outside its contract, and agrees with refParse on every input, limit and
// chunking.
func FuzzParser(f *testing.F) {
	for _, seed := range []string{
		"",
		"data: hello\n\n",
		"data: a\r\ndata: b\r\n\r\n",
		"data: a\rdata: b\r\r",
		"event: control\ndata: {\"streamNextOffset\":\"1\"}\n\n",
		"id: 1\nretry: 100\ndata\n\n",
		": comment\n\n",
		"\xef\xbb\xbfdata: bom\n\n",
		"data: incomplete",
		"id: a\x00b\ndata: x\n\n",
		"data:  x\n:\n\r\n\r",
		"data: 0123456789012345678901234567890123456789\n\n",
	} {
		f.Add([]byte(seed), uint16(0), uint16(0), uint64(1))
		f.Add([]byte(seed), uint16(8), uint16(16), uint64(2))
	}
	f.Fuzz(func(t *testing.T, in []byte, maxLine, maxEvent uint16, chunkSeed uint64) {
		ml, me := int(maxLine), int(maxEvent)
		if ml == 0 {
			ml = DefaultMaxLine
		}
		if me == 0 {
			me = DefaultMaxEvent
		}
		r := &chunkReader{s: string(in), rng: rand.New(rand.NewPCG(chunkSeed, 0))}
		got, err := parseAll(r, int(maxLine), int(maxEvent))
		switch {
		case err == io.EOF, err == io.ErrUnexpectedEOF, errors.Is(err, ErrLineTooLong), errors.Is(err, ErrEventTooLarge):
		default:
			t.Fatalf("unexpected error %v", err)
		}
		for _, ev := range got {
			if len(ev.Data) > me {
				t.Fatalf("event of %d bytes passed limit %d", len(ev.Data), me)
			}
		}
		want, wantErr := refParse(string(in), ml, me)
		if err != wantErr || !reflect.DeepEqual(got, want) {
			t.Fatalf("limits %d/%d:\nparser    %q, %v\nreference %q, %v", ml, me, got, err, want, wantErr)
		}
	})
}
