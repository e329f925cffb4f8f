package durable

import (
	"testing"
)

type codecEvent struct {
	ID int `json:"id"`
}

// codecOf is the codec the tests' generic helpers use for T: BytesCodec
// for []byte, JSONCodec for any other T.
func codecOf[T any]() Codec[T] {
	if c, ok := any(BytesCodec{}).(Codec[T]); ok {
		return c
	}
	return JSONCodec[T]{}
}

func TestJSONCodecRoundTrip(t *testing.T) {
	var c JSONCodec[codecEvent]
	b, err := c.Append([]byte("x"), codecEvent{ID: 7})
	if err != nil || string(b) != `x{"id":7}` {
		t.Fatalf("Append = %q, %v", b, err)
	}
	var v codecEvent
	if err := c.Decode(b[1:], &v); err != nil || v.ID != 7 {
		t.Fatalf("Decode = %+v, %v", v, err)
	}
	if _, err := c.Append(nil, codecEvent{}); err != nil {
		t.Fatal(err)
	}
	var bad JSONCodec[func()]
	if _, err := bad.Append(nil, func() {}); err == nil {
		t.Error("encoding a func succeeded")
	}
}

func TestBytesCodecCopies(t *testing.T) {
	src := []byte("abc")
	var v []byte
	if err := (BytesCodec{}).Decode(src, &v); err != nil {
		t.Fatal(err)
	}
	src[0] = 'z'
	if string(v) != "abc" {
		t.Errorf("Decode aliases its input: %q", v)
	}
}
