package jsoncodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type inner struct {
	X int8    `json:"x"`
	Y *string `json:"y,omitempty"`
}

type Embedded struct {
	E  int `json:"e"`
	Up string
}

// upper has a pointer-receiver UnmarshalText and a value MarshalText.
type upper string

func (u *upper) UnmarshalText(b []byte) error {
	if bytes.ContainsRune(b, '!') {
		return fmt.Errorf("no '!' allowed")
	}
	*u = upper(strings.ToUpper(string(b)))
	return nil
}

func (u upper) MarshalText() ([]byte, error) { return []byte(strings.ToLower(string(u))), nil }

// shape holds every kind of field encoding/json handles differently.
type shape struct {
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
	MU  map[upper]int     `json:"mu"`
	A   any               `json:"a"`
	R   json.RawMessage   `json:"r"`
	N   json.Number       `json:"n"`
	T   time.Time         `json:"t"`
	Up  upper             `json:"up"`
	In  inner             `json:"in"`
	PIn *inner            `json:"pin"`
	L   []inner           `json:"l"`
	Any map[string]any    `json:"any"`
	Ptr **[]float64       `json:"ptr"`
	Ifc fmt.Stringer      `json:"ifc"`
	Skp int               `json:"-"`
	Om  string            `json:",omitempty"`
	Emb map[string][]bool `json:"emb"`
	Embedded
}

// fast is shape without its ",string" field: decoded by go-json itself.
type fast struct {
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
	MU  map[upper]int     `json:"mu"`
	A   any               `json:"a"`
	R   json.RawMessage   `json:"r"`
	N   json.Number       `json:"n"`
	T   time.Time         `json:"t"`
	Up  upper             `json:"up"`
	In  inner             `json:"in"`
	PIn *inner            `json:"pin"`
	L   []inner           `json:"l"`
	Any map[string]any    `json:"any"`
	Ptr **[]float64       `json:"ptr"`
	Ifc fmt.Stringer      `json:"ifc"`
	Skp int               `json:"-"`
	Om  string            `json:",omitempty"`
	Emb map[string][]bool `json:"emb"`
	Embedded
}

// cases are inputs on which the codec must agree with encoding/json,
// valid or not.
var cases = []string{
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

// agree decodes data with encoding/json and with Codec into fresh values
// of T and fails t if they disagree on the outcome or the value; when both
// decode, it also checks that Codec encodes the value to json.Marshal's
// bytes.
func agree[T any](t testing.TB, data []byte) {
	t.Helper()
	var want, got T
	errW := json.Unmarshal(data, &want)
	errG := Codec[T]{}.Decode(data, &got)
	if (errW == nil) != (errG == nil) {
		t.Fatalf("%T on %q: encoding/json error %v, Codec error %v", want, data, errW, errG)
	}
	if errW != nil {
		return
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%T on %q:\nencoding/json %#v\nCodec         %#v", want, data, want, got)
	}
	wantB, errW := json.Marshal(want)
	gotB, errG := Codec[T]{}.Append([]byte("prefix"), got)
	if (errW == nil) != (errG == nil) {
		t.Fatalf("encoding %#v: json.Marshal error %v, Codec error %v", want, errW, errG)
	}
	if errW == nil && string(gotB) != "prefix"+string(wantB) {
		t.Fatalf("encoding %#v:\njson.Marshal %s\nCodec        %s", want, wantB, gotB[len("prefix"):])
	}
}

func TestCodecAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, c := range cases {
		agree[shape](t, []byte(c))
		agree[fast](t, []byte(c))
		agree[any](t, []byte(c))
		agree[map[string]any](t, []byte(c))
		agree[[]any](t, []byte(c))
		agree[*shape](t, []byte(c))
		agree[json.RawMessage](t, []byte(c))
		agree[string](t, []byte(c))
		agree[int](t, []byte(c))
	}
}

// FuzzCodec: on any input the Codec decodes what encoding/json decodes to
// the same value, rejects what it rejects, and encodes the value to the
// same bytes.
func FuzzCodec(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agree[shape](t, data)
		agree[fast](t, data)
		agree[any](t, data)
		agree[[]inner](t, data)
	})
}

// TestDecodeKeepsNoInput: the Reader reuses the bytes it hands to Decode,
// so a decoded value must alias neither them nor any buffer the library
// reuses for the next call.
func TestDecodeKeepsNoInput(t *testing.T) {
	t.Parallel()
	data := []byte(`{"s":"hello","r":{"k":"v"},"n":12.5,"a":"any","sl":["x"],"any":{"k":"v"},"by":"AQI=","e":1,"Up":"up"}`)
	var v shape
	if err := (Codec[shape]{}).Decode(data, &v); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%#v", v)
	other := bytes.ReplaceAll(data, []byte("e"), []byte("E"))
	for i := range data {
		data[i] = 'Z'
	}
	for range 100 {
		var w shape
		if err := (Codec[shape]{}).Decode(other, &w); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprintf("%#v", v); got != want {
		t.Fatalf("value changed with its input:\nbefore %s\nafter  %s", want, got)
	}
}

// TestStringOptionUsesEncodingJSON: the types that go through encoding/json.
func TestStringOptionUsesEncodingJSON(t *testing.T) {
	t.Parallel()
	type quoted struct {
		N int `json:"n,omitempty,string"`
	}
	type deep struct {
		M map[string][]*quoted
	}
	type plain struct {
		S string `json:"string"`
		N int    `json:",omitempty"`
	}
	for _, c := range []struct {
		std bool
		got bool
	}{
		{true, useStd[quoted]()}, {true, useStd[deep]()}, {true, useStd[shape]()},
		{false, useStd[plain]()}, {false, useStd[inner]()}, {false, useStd[any]()}, {false, useStd[map[string]any]()},
	} {
		if c.std != c.got {
			t.Errorf("useStd: got %v, want %v", c.got, c.std)
		}
	}
	var q quoted
	if err := (Codec[quoted]{}).Decode([]byte(`{"n":"+00"}`), &q); err == nil {
		t.Fatal(`",string" field: "+00" accepted (encoding/json rejects it)`)
	}
}

// TestAppendKeepsDstOnError: a value that cannot be encoded leaves dst as
// it was.
func TestAppendKeepsDstOnError(t *testing.T) {
	t.Parallel()
	dst := []byte("[1,")
	out, err := Codec[any]{}.Append(dst, make(chan int))
	if err == nil || string(out) != "[1," {
		t.Fatalf("Append(chan) = %q, %v", out, err)
	}
}
