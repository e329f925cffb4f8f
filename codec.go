package durable

import (
	"encoding"
	"encoding/json"
	"fmt"
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

// JSONCodec encodes and decodes values with encoding/json. It is the default
// codec of every Reader[T] and Writer[T] whose T is not []byte.
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

// BytesCodec passes bytes through unchanged (Decode copies them). It is the
// default codec of Reader[[]byte] and Writer[[]byte].
type BytesCodec struct{}

// Append implements Codec.
func (BytesCodec) Append(dst []byte, v []byte) ([]byte, error) { return append(dst, v...), nil }

// Decode implements Codec.
func (BytesCodec) Decode(data []byte, v *[]byte) error {
	*v = append((*v)[:0:0], data...)
	return nil
}

// WithCodec makes a Reader[T] or Writer[T] use c instead of its default codec.
// The T of the codec must match the T of the Reader or Writer it is given to;
// a mismatch is reported by NewReader or NewWriter.
func WithCodec[T any](c Codec[T]) Option {
	return Option{name: "WithCodec", reader: func(rc *readerConfig) { rc.codec = c }, writer: func(wc *writerConfig) { wc.codec = c }}
}

// codecFor returns the codec for T: the one chosen with WithCodec, else
// BytesCodec for []byte, else JSONCodec[T].
func codecFor[T any](chosen any) (Codec[T], error) {
	if chosen != nil {
		c, ok := chosen.(Codec[T])
		if !ok {
			var zero T
			return nil, fmt.Errorf("durable: codec %T does not handle %T", chosen, zero)
		}
		return c, nil
	}
	if c, ok := any(BytesCodec{}).(Codec[T]); ok {
		return c, nil
	}
	return JSONCodec[T]{}, nil
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
