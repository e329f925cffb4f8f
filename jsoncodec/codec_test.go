package jsoncodec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/durablego/durable/internal/testsupport/jsonagree"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// agree checks Codec[T] against encoding/json on data.
func agree[T any](t testing.TB, data []byte) {
	t.Helper()
	jsonagree.Check(t, Codec[T]{}.Decode, Codec[T]{}.Append, data)
}

func TestCodecAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	for _, c := range jsonagree.Cases {
		agree[jsonagree.Shape](t, []byte(c))
		agree[jsonagree.Plain](t, []byte(c))
		agree[any](t, []byte(c))
		agree[map[string]any](t, []byte(c))
		agree[[]any](t, []byte(c))
		agree[*jsonagree.Shape](t, []byte(c))
		agree[json.RawMessage](t, []byte(c))
		agree[string](t, []byte(c))
		agree[int](t, []byte(c))
	}
}

// FuzzCodec: on any input the Codec decodes what encoding/json decodes to
// the same value, rejects what it rejects, and encodes the value to the
// same bytes.
func FuzzCodec(f *testing.F) {
	for _, c := range jsonagree.Cases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		agree[jsonagree.Shape](t, data)
		agree[jsonagree.Plain](t, data)
		agree[any](t, data)
		agree[[]jsonagree.Inner](t, data)
	})
}

// TestDecodeKeepsNoInput: the Reader reuses the bytes it hands to Decode,
// so a decoded value must alias neither them nor any buffer the library
// reuses for the next call.
func TestDecodeKeepsNoInput(t *testing.T) {
	t.Parallel()
	data := []byte(`{"s":"hello","r":{"k":"v"},"n":12.5,"a":"any","sl":["x"],"any":{"k":"v"},"by":"AQI=","e":1,"Up":"up"}`)
	var v jsonagree.Shape
	if err := (Codec[jsonagree.Shape]{}).Decode(data, &v); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%#v", v)
	other := bytes.ReplaceAll(data, []byte("e"), []byte("E"))
	for i := range data {
		data[i] = 'Z'
	}
	for range 100 {
		var w jsonagree.Shape
		if err := (Codec[jsonagree.Shape]{}).Decode(other, &w); err != nil {
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
		{true, useStd[quoted]()}, {true, useStd[deep]()}, {true, useStd[jsonagree.Shape]()},
		{false, useStd[plain]()}, {false, useStd[jsonagree.Inner]()}, {false, useStd[any]()}, {false, useStd[map[string]any]()},
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
