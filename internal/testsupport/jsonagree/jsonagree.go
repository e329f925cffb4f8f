// Package jsonagree checks that a JSON library agrees with encoding/json:
// on the same input it must accept and reject the same documents, decode
// to the same values and encode those values to the same bytes. jsoncodec's
// tests and fuzz target use it for the codec they ship, and bench/codecs
// for the candidate libraries; both are other modules of this repository.
package jsonagree

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Inner is a nested struct with an optional field.
type Inner struct {
	X int8    `json:"x"`
	Y *string `json:"y,omitempty"`
}

// Embedded is embedded in Shape: its fields are promoted.
type Embedded struct {
	E  int `json:"e"`
	Up string
}

// Upper has a pointer-receiver UnmarshalText and a value MarshalText.
type Upper string

// UnmarshalText implements encoding.TextUnmarshaler.
func (u *Upper) UnmarshalText(b []byte) error {
	if bytes.ContainsRune(b, '!') {
		return fmt.Errorf("no '!' allowed")
	}
	*u = Upper(strings.ToUpper(string(b)))
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (u Upper) MarshalText() ([]byte, error) { return []byte(strings.ToLower(string(u))), nil }

// Shape holds every kind of field encoding/json handles in its own way.
type Shape struct {
	I   int               `json:"i"`
	I8  int8              `json:"i8"`
	U   uint16            `json:"u"`
	F   float64           `json:"f"`
	F32 float32           `json:"f32"`
	S   string            `json:"s"`
	QS  int               `json:"qs,string"`
	B   bool              `json:"b"`
	P   *int              `json:"p"`
	Sl  []string          `json:"sl"`
	Ar  [2]int            `json:"ar"`
	By  []byte            `json:"by"`
	M   map[string]int    `json:"m"`
	MI  map[int]string    `json:"mi"`
	MU  map[Upper]int     `json:"mu"`
	A   any               `json:"a"`
	R   json.RawMessage   `json:"r"`
	N   json.Number       `json:"n"`
	T   time.Time         `json:"t"`
	Up  Upper             `json:"up"`
	In  Inner             `json:"in"`
	PIn *Inner            `json:"pin"`
	L   []Inner           `json:"l"`
	Any map[string]any    `json:"any"`
	Ptr **[]float64       `json:"ptr"`
	Ifc fmt.Stringer      `json:"ifc"`
	Skp int               `json:"-"`
	Om  string            `json:",omitempty"`
	Emb map[string][]bool `json:"emb"`
	Embedded
}

// Plain is Shape without its ",string" field.
type Plain struct {
	I   int               `json:"i"`
	I8  int8              `json:"i8"`
	U   uint16            `json:"u"`
	F   float64           `json:"f"`
	F32 float32           `json:"f32"`
	S   string            `json:"s"`
	B   bool              `json:"b"`
	P   *int              `json:"p"`
	Sl  []string          `json:"sl"`
	Ar  [2]int            `json:"ar"`
	By  []byte            `json:"by"`
	M   map[string]int    `json:"m"`
	MI  map[int]string    `json:"mi"`
	MU  map[Upper]int     `json:"mu"`
	A   any               `json:"a"`
	R   json.RawMessage   `json:"r"`
	N   json.Number       `json:"n"`
	T   time.Time         `json:"t"`
	Up  Upper             `json:"up"`
	In  Inner             `json:"in"`
	PIn *Inner            `json:"pin"`
	L   []Inner           `json:"l"`
	Any map[string]any    `json:"any"`
	Ptr **[]float64       `json:"ptr"`
	Ifc fmt.Stringer      `json:"ifc"`
	Skp int               `json:"-"`
	Om  string            `json:",omitempty"`
	Emb map[string][]bool `json:"emb"`
	Embedded
}

// Cases are inputs, valid or not, on which a library must agree with
// encoding/json (and seeds for fuzz targets that compare them).
var Cases = []string{
	`{}`, `null`, ` {"i": 1} `, `[]`, `1`, `"x"`, ``, ` `, `{`, `{"i":1}}`, `{"i":1} x`, `{"i":1}{"i":2}`,
	`{"i":1,"i8":-128,"u":65535,"f":1.5e-7,"f32":3.4e38,"s":"a\u00e9\n\"\\/","qs":"12","b":true,"p":7}`,
	`{"i8":128}`, `{"u":-1}`, `{"u":65536}`, `{"i":1.5}`, `{"i":1e2}`, `{"f32":3.5e38}`, `{"f":1e400}`, `{"i":"1"}`,
	`{"qs":12}`, `{"qs":"x"}`, `{"qs":" 12"}`, `{"qs":"12 "}`, `{"qs":null}`, `{"qs":"null"}`,
	`{"s":"\ud800"}`, `{"s":"\udc00\ud800"}`, "{\"s\":\"\xff\xfe\"}", "{\"s\":\"a\x01\"}", `{"s":"\x"}`, `{"s":"\u12"}`,
	`{"I":1,"S":"upper keys"}`, `{"i":1,"i":2}`, `{"m":{"a":1,"a":2}}`, `{"unknown":{"deep":[1,2,{"x":null}]}}`,
	`{"sl":["a",null,"c"]}`, `{"sl":"a"}`, `{"ar":[1]}`, `{"ar":[1,2,3]}`, `{"by":"AQID"}`, `{"by":"AQI"}`, `{"by":"!!"}`, `{"by":[1,2]}`, `{"by":null}`,
	`{"m":{"a":1,"b":null}}`, `{"m":[]}`, `{"mi":{"1":"a","-2":"b"}}`, `{"mi":{"x":"a"}}`, `{"mi":{"1.5":"a"}}`,
	`{"mu":{"abc":1}}`, `{"mu":{"a!":1}}`, `{"up":"abc"}`, `{"up":"a!"}`, `{"up":1}`,
	`{"a":{"k":[1,"2",null,true,{"z":1e300}]}}`, `{"a":12345678901234567890}`, `{"a":-0}`, `{"a":1e400}`,
	`{"r":[1, 2 ,3]}`, `{"r":null}`, `{"r":"x"}`, `{"n":12.5}`, `{"n":"12.5"}`, `{"n":"x"}`, `{"n":true}`,
	`{"t":"2024-10-09T00:00:00Z"}`, `{"t":"2024-10-09T00:00:00.123456789+02:00"}`, `{"t":"yesterday"}`, `{"t":12}`, `{"t":null}`,
	`{"in":{"x":1,"y":"s"}}`, `{"in":{"X":1}}`, `{"in":[]}`, `{"pin":{"x":2}}`, `{"pin":null}`, `{"l":[{"x":1},{"x":300}]}`,
	`{"any":{"a":[],"b":{}}}`, `{"ptr":[1.5,2]}`, `{"ptr":null}`, `{"ifc":null}`, `{"ifc":{}}`, `{"-":1}`, `{"Skp":1}`,
	`{"Om":"x"}`, `{"emb":{"x":[true,false]}}`, `{"e":3,"Up":"u"}`, `{"Embedded":{"e":1}}`,
	`{"i":1,}`, `{"i":01}`, `{"i":-}`, `{"i":1.}`, `{"i":.5}`, `{"i":+1}`, `{"i":0x10}`, `{"i":NaN}`, `{"i":true}`, `{'i':1}`, `{i:1}`,
	"{\"i\":1}\x00", "\ufeff{}", `{"i":1` + strings.Repeat(" ", 100) + `}`, `[` + strings.Repeat(`[`, 10000) + strings.Repeat(`]`, 10000) + `]`,
}

// Check decodes data with encoding/json and with dec into fresh values of
// T and fails t if they disagree on the outcome or the value; when both
// decode, it also checks that enc appends the value to a prefix as the
// bytes of json.Marshal.
func Check[T any](t testing.TB, dec func([]byte, *T) error, enc func([]byte, T) ([]byte, error), data []byte) {
	t.Helper()
	if err := Diff(dec, enc, data); err != nil {
		t.Fatal(err)
	}
}

// Diff is Check returning the disagreement as an error (nil when they
// agree), for a caller that counts them.
func Diff[T any](dec func([]byte, *T) error, enc func([]byte, T) ([]byte, error), data []byte) error {
	var want, got T
	errW := json.Unmarshal(data, &want)
	errG := dec(data, &got)
	if (errW == nil) != (errG == nil) {
		return fmt.Errorf("%T on %q: encoding/json error %v, library error %v", want, data, errW, errG)
	}
	if errW != nil {
		return nil
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("%T on %q:\nencoding/json %#v\nlibrary       %#v", want, data, want, got)
	}
	wantB, errW := json.Marshal(want)
	gotB, errG := enc([]byte("prefix"), got)
	if (errW == nil) != (errG == nil) {
		return fmt.Errorf("encoding %#v: json.Marshal error %v, library error %v", want, errW, errG)
	}
	if errW == nil && string(gotB) != "prefix"+string(wantB) {
		return fmt.Errorf("encoding %#v:\njson.Marshal %s\nlibrary      %s", want, wantB, bytes.TrimPrefix(gotB, []byte("prefix")))
	}
	return nil
}
