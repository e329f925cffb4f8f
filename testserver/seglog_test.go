package testserver

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSegLog(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		sizes []int
	}{
		{"small", []int{1, 2, 3, 1000, 5}},
		{"grows first segment", []int{1000, 3000, 100000, 1 << 20, 2 << 20}},
		{"spills into new segments", []int{segSize - 10, 20, segSize, 7, segSize / 2}},
		{"oversized record", []int{5, segSize + 123, 9}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var l segLog
			var flat []byte
			rng := rand.New(rand.NewPCG(1, 2))
			var held [][]byte // slices taken before later writes
			var heldAt [][2]int64
			for _, n := range tc.sizes {
				p := make([]byte, n)
				for i := range p {
					p[i] = byte(i*31 + n)
				}
				l.write(p)
				flat = append(flat, p...)
				a := rng.Int64N(int64(len(flat)))
				held = append(held, l.slice(a, int64(len(flat))))
				heldAt = append(heldAt, [2]int64{a, int64(len(flat))})
			}
			if l.len() != int64(len(flat)) {
				t.Fatalf("len %d, want %d", l.len(), len(flat))
			}
			for i := 0; i < 25; i++ {
				a := rng.Int64N(int64(len(flat)) + 1)
				b := a + rng.Int64N(int64(len(flat))-a+1)
				if got := l.slice(a, b); !bytes.Equal(got, flat[a:b]) {
					t.Fatalf("slice(%d,%d) differs", a, b)
				}
				if got := l.appendRange([]byte("x"), a, b); !bytes.Equal(got[1:], flat[a:b]) {
					t.Fatalf("appendRange(%d,%d) differs", a, b)
				}
			}
			for i, h := range held {
				if !bytes.Equal(h, flat[heldAt[i][0]:heldAt[i][1]]) {
					t.Fatalf("slice %d changed after later writes", i)
				}
			}
		})
	}
}

func TestLargeJSONStreamAcrossSegments(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithChunkLimit(3<<20))
	u := srv.StreamURL("large/json")
	mustStatus(t, call(t, "PUT", u, jsonH, ""), 201)
	batch := string(jsonBatch(2000)) // ~110 KB
	const batches = 60               // ~6.6 MB: crosses a segment boundary
	for i := 0; i < batches; i++ {
		mustStatus(t, call(t, "POST", u, jsonH, batch), 204)
	}
	msgs := 0
	offset := "-1"
	for reads := 0; ; reads++ {
		r := call(t, "GET", u+"?offset="+offset, nil, "")
		mustStatus(t, r, 200)
		if !json.Valid([]byte(r.body)) || r.body[0] != '[' {
			t.Fatalf("read %d: not a JSON array", reads)
		}
		msgs += strings.Count(r.body, `"kind"`)
		offset = r.get("Stream-Next-Offset")
		if r.get("Stream-Up-To-Date") == "true" {
			break
		}
		if reads > 20 {
			t.Fatal("too many reads")
		}
	}
	if msgs != batches*2000 {
		t.Fatalf("%d messages, want %d", msgs, batches*2000)
	}
}
