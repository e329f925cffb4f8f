package testserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestSplitJSON(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in    string
		empty bool
		want  []string
		err   error
	}{
		{in: `{"a":1}`, want: []string{`{"a":1}`}},
		{in: "  7 \n", want: []string{`7`}},
		{in: `"s"`, want: []string{`"s"`}},
		{in: `[1, "x,]", [2,3], {"b":[4]}]`, want: []string{`1`, `"x,]"`, `[2,3]`, `{"b":[4]}`}},
		{in: `[[[1,2,3]]]`, want: []string{`[[1,2,3]]`}},
		{in: " [ null , true,false ] ", want: []string{`null`, `true`, `false`}},
		{in: `["\"]\\", "\u00e9"]`, want: []string{`"\"]\\"`, `"\u00e9"`}},
		{in: `[-0.5e+10, 0, 1E3]`, want: []string{`-0.5e+10`, `0`, `1E3`}},
		{in: `[]`, err: errEmptyArray},
		{in: " [ \n ] ", err: errEmptyArray},
		{in: `[]`, empty: true, want: nil},
		{in: ``, err: errInvalidJSON},
		{in: `   `, err: errInvalidJSON},
		{in: `{bad`, err: errInvalidJSON},
		{in: `[1,]`, err: errInvalidJSON},
		{in: `[1 2]`, err: errInvalidJSON},
		{in: `01`, err: errInvalidJSON},
		{in: `[01]`, err: errInvalidJSON},
		{in: `1.`, err: errInvalidJSON},
		{in: `-`, err: errInvalidJSON},
		{in: `"\x"`, err: errInvalidJSON},
		{in: `"\u12g4"`, err: errInvalidJSON},
		{in: "\"a\nb\"", err: errInvalidJSON},
		{in: `{"a" 1}`, err: errInvalidJSON},
		{in: `{1:2}`, err: errInvalidJSON},
		{in: `tru`, err: errInvalidJSON},
		{in: `[1]]`, err: errInvalidJSON},
		{in: `{} {}`, err: errInvalidJSON},
		{in: strings.Repeat("[", 10001) + strings.Repeat("]", 10001), err: errInvalidJSON},
	}
	for _, tc := range cases {
		name := tc.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			got, err := splitJSON([]byte(tc.in), tc.empty)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			var gs []string
			for _, m := range got {
				gs = append(gs, string(m))
			}
			if !reflect.DeepEqual(gs, tc.want) {
				t.Fatalf("got %q, want %q", gs, tc.want)
			}
		})
	}
}

// FuzzSplitJSON checks splitJSON against encoding/json: same validity, and
// the messages re-assembled into an array decode to the same value.
func FuzzSplitJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[1,[2],{"x":"]"}]`, `[]`, ` "s" `, `[1,]`, `-1.5e3`, `[[[]]]`, `{"a":[1,{"b":null}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 1<<16 {
			return
		}
		msgs, err := splitJSON(in, true)
		valid := json.Valid(in)
		if (err == nil) != valid {
			t.Fatalf("splitJSON err %v, json.Valid %v for %q", err, valid, in)
		}
		if err != nil {
			return
		}
		var orig any
		if err := decodeNumbers(in, &orig); err != nil {
			t.Fatal(err)
		}
		joined := []byte("[" + string(bytes.Join(msgs, []byte(","))) + "]")
		var back []any
		if err := decodeNumbers(joined, &back); err != nil {
			t.Fatalf("re-assembled %q: %v", joined, err)
		}
		if arr, ok := orig.([]any); ok {
			if !reflect.DeepEqual(arr, back) && !(len(arr) == 0 && len(back) == 0) {
				t.Fatalf("array %q split into %q", in, joined)
			}
		} else if len(back) != 1 || !reflect.DeepEqual(back[0], orig) {
			t.Fatalf("value %q split into %q", in, joined)
		}
	})
}

func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
