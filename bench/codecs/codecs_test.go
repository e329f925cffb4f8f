// Package codecs measures JSON libraries that could back a fast
// durable.Codec, on the message shapes of this SDK's benchmarks: decoding
// one message into a typed value (what a Reader[T] does for each message)
// and encoding one value (what a Writer[T] does). It is a module of its own,
// never imported, so that the candidates' dependencies stay out of every
// other go.mod. Run on one core:
//
//	cd bench/codecs && go test -run '^$' -bench . -cpu 1 -count 6 | tee out.txt && benchstat -col /lib out.txt
//
// jsoncodec/ holds the codec built on the library chosen (goccy/go-json)
// and the tests that compare it with encoding/json.
package codecs

import (
	stdjson "encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/bytedance/sonic"
	jsonv2 "github.com/go-json-experiment/json"
	gojson "github.com/goccy/go-json"
	jsoniter "github.com/json-iterator/go"
	segjson "github.com/segmentio/encoding/json"
)

// rec is the message of the Reader catch-up benchmarks (about 40 bytes).
type rec struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	OK   bool   `json:"ok"`
}

// msg is the 100-byte message of the Writer benchmarks.
type msg struct {
	ID      int    `json:"id"`
	Payload string `json:"payload"`
}

// event is a richer message of about 200 bytes: nested object, escapes,
// a float, arrays and an optional field.
type event struct {
	Type   string  `json:"type"`
	ID     string  `json:"id"`
	TS     int64   `json:"ts"`
	User   user    `json:"user"`
	Amount float64 `json:"amount"`
	Items  []int   `json:"items"`
	Note   *string `json:"note,omitempty"`
}

type user struct {
	ID   int      `json:"id"`
	Name string   `json:"name"`
	Tags []string `json:"tags"`
}

type lib struct {
	name string
	dec  func([]byte, any) error
	enc  func(any) ([]byte, error)
}

// libs are the candidates, each in its encoding/json-compatible setting.
var libs = []lib{
	{"encoding-json", stdjson.Unmarshal, stdjson.Marshal},
	{"goccy-go-json", gojson.Unmarshal, gojson.Marshal},
	{"segmentio", segjson.Unmarshal, segjson.Marshal},
	{"sonic-std", sonic.ConfigStd.Unmarshal, sonic.ConfigStd.Marshal},
	{"jsoniter-std", jsoniter.ConfigCompatibleWithStandardLibrary.Unmarshal, jsoniter.ConfigCompatibleWithStandardLibrary.Marshal},
	{"json-v2", func(b []byte, v any) error { return jsonv2.Unmarshal(b, v) }, func(v any) ([]byte, error) { return jsonv2.Marshal(v) }},
}

type shape struct {
	name string
	msgs [][]byte
	new  func() any
}

func shapes() []shape {
	var recs, msgs, evs [][]byte
	for i := range 1000 {
		recs = append(recs, fmt.Appendf(nil, `{"id":%d,"name":"user-%d","ok":true}`, i, i))
		head := fmt.Sprintf(`{"id":%d,"payload":""}`, 1000000+i)
		msgs = append(msgs, fmt.Appendf(nil, `{"id":%d,"payload":"%s"}`, 1000000+i, strings.Repeat("x", 100-len(head))))
		evs = append(evs, fmt.Appendf(nil, `{"type":"order.created","id":"ord_%08d","ts":17123456%05d,"user":{"id":%d,"name":"Ada \"L\" Lovelace \u00e9","tags":["vip","eu"]},"amount":%d.25,"items":[1,2,3,%d],"note":"first order, ship fast"}`, i, i, i, i, i))
	}
	return []shape{
		{"rec40B", recs, func() any { return new(rec) }},
		{"msg100B", msgs, func() any { return new(msg) }},
		{"event200B", evs, func() any { return new(event) }},
	}
}

// BenchmarkDecode decodes one message per op into a reused value.
func BenchmarkDecode(b *testing.B) {
	for _, sh := range shapes() {
		size := 0
		for _, m := range sh.msgs {
			size += len(m)
		}
		for _, l := range libs {
			b.Run("shape="+sh.name+"/lib="+l.name, func(b *testing.B) {
				v := sh.new()
				b.SetBytes(int64(size / len(sh.msgs)))
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					if err := l.dec(sh.msgs[n%len(sh.msgs)], v); err != nil {
						b.Fatal(err)
					}
					n++
				}
			})
		}
	}
}

// BenchmarkEncode encodes one value per op.
func BenchmarkEncode(b *testing.B) {
	for _, sh := range shapes() {
		vals := make([]any, len(sh.msgs))
		for i, m := range sh.msgs {
			vals[i] = sh.new()
			if err := stdjson.Unmarshal(m, vals[i]); err != nil {
				b.Fatal(err)
			}
		}
		for _, l := range libs {
			b.Run("shape="+sh.name+"/lib="+l.name, func(b *testing.B) {
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					if _, err := l.enc(vals[n%len(vals)]); err != nil {
						b.Fatal(err)
					}
					n++
				}
			})
		}
	}
}

// TestSameValues: every candidate decodes the benchmark messages to the
// values encoding/json gives (so the benchmarks compare equal work).
func TestSameValues(t *testing.T) {
	for _, sh := range shapes() {
		for _, l := range libs[1:] {
			for _, m := range sh.msgs[:50] {
				want, got := sh.new(), sh.new()
				if err := stdjson.Unmarshal(m, want); err != nil {
					t.Fatal(err)
				}
				if err := l.dec(m, got); err != nil {
					t.Fatalf("%s on %s: %v", l.name, m, err)
				}
				w, _ := stdjson.Marshal(want)
				g, _ := stdjson.Marshal(got)
				if string(w) != string(g) {
					t.Fatalf("%s on %s: %s, want %s", l.name, m, g, w)
				}
			}
		}
	}
}
