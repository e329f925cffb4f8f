package jsonframe

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func spans(data string, sp []Span) []string {
	out := []string{}
	for _, s := range sp {
		out = append(out, data[s.Start:s.End])
	}
	return out
}

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
		err  bool
	}{
		{"empty array", "[]", []string{}, false},
		{"empty array spaces", " \n[ \t]\r\n", []string{}, false},
		{"scalars", `[1,-2.5e3,true,false,null]`, []string{"1", "-2.5e3", "true", "false", "null"}, false},
		{"strings with escapes", `["a","b\"]c","\\",""]`, []string{`"a"`, `"b\"]c"`, `"\\"`, `""`}, false},
		{"nested", `[{"a":[1,{"b":"]}"}]}, [[1,2],[3]] ]`, []string{`{"a":[1,{"b":"]}"}]}`, `[[1,2],[3]]`}, false},
		{"whitespace", "[ 1 ,\n {\"x\" : 2} ]", []string{"1", `{"x" : 2}`}, false},
		{"not array", `{"a":1}`, nil, true},
		{"empty input", ``, nil, true},
		{"unterminated", `[1,2`, nil, true},
		{"trailing comma", `[1,]`, nil, true},
		{"leading comma", `[,1]`, nil, true},
		{"missing comma", `[1 2]`, nil, true},
		{"missing comma objects", `[{}{}]`, nil, true},
		{"unbalanced", `[{"a":[1}]`, nil, true},
		{"unterminated string", `["abc]`, nil, true},
		{"control char in string", "[\"a\x01\"]", nil, true},
		{"data after", `[1] x`, nil, true},
		{"two arrays", `[1][2]`, nil, true},
		{"deep", `[` + string(bytes.Repeat([]byte("["), 200)) + string(bytes.Repeat([]byte("]"), 200)) + `]`, []string{string(bytes.Repeat([]byte("["), 200)) + string(bytes.Repeat([]byte("]"), 200))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sp, err := Split(nil, []byte(tt.in))
			if tt.err {
				require.Error(t, err)
				var se *SyntaxError
				require.True(t, errors.As(err, &se))
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, spans(tt.in, sp))
		})
	}
}

func TestSplitAppendsWithoutAllocating(t *testing.T) {
	data := []byte(`[{"id":1,"name":"x"},{"id":2,"name":"y","tags":["a","b"]},3]`)
	dst := make([]Span, 0, 8)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		dst, err = Split(dst[:0], data)
		if err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}

// FuzzSplit checks Split against encoding/json: a valid JSON array splits
// into exactly the elements json.Unmarshal sees, and when every span is
// valid JSON the input is a valid array.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{`[]`, `[1,2,3]`, `[{"a":"b\"c"},[1,[2]],"x",null]`, `[tru]`, `[1,]`, `["\u00e9"]`, " [ 1 ] ", `[{"a":}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sp, err := Split(nil, data)
		var elems []json.RawMessage
		trimmed := bytes.TrimLeft(data, " \t\r\n")
		// (json.Unmarshal also accepts null for a slice: not an array.)
		validArray := len(trimmed) > 0 && trimmed[0] == '[' && json.Valid(data) && json.Unmarshal(data, &elems) == nil
		if validArray {
			if err != nil {
				t.Fatalf("valid array %q: %v", data, err)
			}
			if len(sp) != len(elems) {
				t.Fatalf("%q: %d spans, want %d", data, len(sp), len(elems))
			}
			for i, s := range sp {
				if !bytes.Equal(bytes.TrimSpace(data[s.Start:s.End]), bytes.TrimSpace(elems[i])) {
					t.Fatalf("%q: span %d = %q, want %q", data, i, data[s.Start:s.End], elems[i])
				}
			}
			return
		}
		if err != nil {
			return
		}
		for _, s := range sp {
			if s.Start < 0 || s.End > len(data) || s.Start >= s.End {
				t.Fatalf("%q: bad span %+v", data, s)
			}
			if !json.Valid(data[s.Start:s.End]) {
				return // an invalid scalar or key: allowed, decoding reports it
			}
		}
		t.Fatalf("%q: every span valid but the array is not", data)
	})
}
