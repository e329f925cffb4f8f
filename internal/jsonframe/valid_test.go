package jsonframe

import (
	"encoding/json"
	"strings"
	"testing"
)

var validCases = []string{
	``, ` `, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`, `-1.25e10`, `+1`,
	`"a"`, `"`, `"\"`, `"\u00e9"`, `"\u00g9"`, `"\u12"`, `"\x"`, `"\/\b\f\n\r\t\\"`, "\"a\tb\"", "\"\xff\xfe\"",
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `NaN`,
	`[]`, `[ ]`, `[1,2]`, `[1,]`, `[,1]`, `[1 2]`, `[`, `]`, `[[[]]]`, `[[]`, `[1]]`,
	`{}`, `{ }`, `{"a":1}`, `{"a":1,}`, `{"a" 1}`, `{"a":}`, `{a:1}`, `{"a":1,"b":[true,{"c":null}]}`, `{"a":1}}`,
	` {"a" : [ 1 , "x" ] } `, "\n[1]\r\n", `1 2`, `[] []`, `{}x`, `"a"b`,
}

func TestValidMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	cases := append([]string{
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
		strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
		strings.Repeat("[", 10001),
	}, validCases...)
	for _, c := range cases {
		name := c
		if len(name) > 20 {
			name = name[:20]
		}
		t.Run(name, func(t *testing.T) {
			if got, want := Valid([]byte(c)), json.Valid([]byte(c)); got != want {
				t.Fatalf("Valid(%.40q) = %v, encoding/json says %v", c, got, want)
			}
		})
	}
}

func FuzzValid(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := Valid(b), json.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	// A 100-byte message, the size the Writer benchmarks use.
	msg := []byte(`{"id":1234567,"payload":"` + strings.Repeat("x", 74) + `"}`)
	b.Run("jsonframe", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for range b.N {
			if !Valid(msg) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for range b.N {
			if !json.Valid(msg) {
				b.Fatal("invalid")
			}
		}
	})
}
