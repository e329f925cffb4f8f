package durable

import (
	"testing"
)

type codecEvent struct {
	ID int `json:"id"`
}

func TestCodecFor(t *testing.T) {
	if _, ok := mustCodec[[]byte](t, nil).(BytesCodec); !ok {
		t.Error("[]byte does not default to BytesCodec")
	}
	if _, ok := mustCodec[codecEvent](t, nil).(JSONCodec[codecEvent]); !ok {
		t.Error("struct does not default to JSONCodec")
	}
	if _, err := codecFor[codecEvent](BytesCodec{}); err == nil {
		t.Error("mismatched codec accepted")
	}
	if _, ok := mustCodec[[]byte](t, JSONCodec[[]byte]{}).(JSONCodec[[]byte]); !ok {
		t.Error("chosen codec ignored")
	}
}

func mustCodec[T any](t *testing.T, chosen any) Codec[T] {
	t.Helper()
	c, err := codecFor[T](chosen)
	if err != nil {
		t.Fatal(err)
	}
	return c
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
