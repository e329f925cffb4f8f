package durable

import (
	"encoding"
	"encoding/json"
	"reflect"
)

// Codec converts between a value of T and the bytes of one message.
//
// For application/json streams each message must encode to exactly one valid
// JSON value; the Writer checks this before a message joins a batch, so a bad
// value fails its own Write and never poisons the batch it would have joined.
// For other content types a message is any byte string.
//
// Implementations must be safe for concurrent use.
type Codec[T any] interface {
	// Append appends the encoding of v to dst and returns the extended slice.
	Append(dst []byte, v T) ([]byte, error)
	// Decode decodes one message into v. data is only valid during the call:
	// an implementation that keeps it must copy it.
	Decode(data []byte, v *T) error
}

// JSONCodec encodes and decodes values with encoding/json: give
// JSONCodec[T]{} to NewReader or NewWriter for a stream of JSON values. A
// Reader and a Writer with this codec take fast paths of their own (the
// Reader decodes a whole read with one decoder, and ahead of Next).
type JSONCodec[T any] struct{}

// Append implements Codec.
func (JSONCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// Decode implements Codec.
func (JSONCodec[T]) Decode(data []byte, v *T) error { return json.Unmarshal(data, v) }

// BytesCodec passes bytes through unchanged (Decode copies them): give
// BytesCodec{} to NewReader or NewWriter to handle each message's bytes as
// they are, whatever the stream's content type.
type BytesCodec struct{}

// Append implements Codec.
func (BytesCodec) Append(dst []byte, v []byte) ([]byte, error) { return append(dst, v...), nil }

// Decode implements Codec.
func (BytesCodec) Decode(data []byte, v *[]byte) error {
	*v = append((*v)[:0:0], data...)
	return nil
}

// byPointerSame reports whether encoding/json encodes a T the same way
// whether it is given the value or a pointer to it. It calls a
// pointer-receiver MarshalJSON or MarshalText only on addressable values:
// given a pointer, T and the struct fields and array elements it holds
// inline are addressable; given the value, they are not (what sits behind a
// pointer or in a slice is addressable either way, a map value or an
// interface's content neither way). So the two agree unless one of those
// inline types has such a method only on its pointer.
func byPointerSame[T any]() bool {
	return !pointerOnlyMarshaler(reflect.TypeFor[T](), map[reflect.Type]bool{})
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

func pointerOnlyMarshaler(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	if t.Kind() == reflect.Interface {
		return false
	}
	pt := reflect.PointerTo(t)
	for _, it := range []reflect.Type{marshalerType, textMarshalerType} {
		if pt.Implements(it) && !t.Implements(it) {
			return true
		}
	}
	switch t.Kind() {
	case reflect.Struct:
		for i := range t.NumField() {
			if pointerOnlyMarshaler(t.Field(i).Type, seen) {
				return true
			}
		}
	case reflect.Array:
		return pointerOnlyMarshaler(t.Elem(), seen)
	}
	return false
}
