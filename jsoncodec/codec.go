// Package jsoncodec is a durable.Codec on github.com/goccy/go-json, a faster
// implementation of the encoding/json API: a Reader[T] decodes typed
// messages several times faster than with the default durable.JSONCodec,
// with the same values and the same errors at the same messages. It is a
// module of its own so that the core module keeps its two dependencies.
//
//	r, err := durable.NewReader(client, "orders", jsoncodec.Codec[Event]{})
//
// Why this library: BENCHMARKS.md ("codecs") measures it beside
// bytedance/sonic, segmentio/encoding, json-iterator and encoding/json v2
// on this SDK's message shapes, and the README's dependency table gives the
// reasons.
package jsoncodec

import (
	stdjson "encoding/json"
	"reflect"
	"strings"
	"sync"

	"github.com/durablego/durable"
	gojson "github.com/goccy/go-json"
)

// Codec encodes and decodes values of T as JSON with github.com/goccy/go-json.
// It accepts and rejects what encoding/json does, decodes to the same
// values and encodes to the same bytes as json.Marshal (FuzzCodec compares
// the two). For a T with a ",string" field option anywhere in it, whose
// edge cases go-json handles differently, it uses encoding/json itself. It
// keeps nothing of the data it decodes. The zero value is ready to use and
// safe for concurrent use.
type Codec[T any] struct{}

var _ durable.Codec[struct{}] = Codec[struct{}]{}

// Append implements durable.Codec: it appends the JSON encoding of v to dst.
// On an error dst is returned unchanged.
func (Codec[T]) Append(dst []byte, v T) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if useStd[T]() {
		b, err = stdjson.Marshal(v)
	} else {
		b, err = gojson.Marshal(v)
	}
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// Decode implements durable.Codec: it decodes one JSON value from data into
// v, as json.Unmarshal does.
func (Codec[T]) Decode(data []byte, v *T) error {
	if useStd[T]() {
		return stdjson.Unmarshal(data, v)
	}
	return gojson.Unmarshal(data, v)
}

// stdTypes caches, per type, whether it must go through encoding/json.
var stdTypes sync.Map // reflect.Type -> bool

// useStd reports whether T, or a type it holds, has a field with the
// ",string" option.
func useStd[T any]() bool {
	t := reflect.TypeFor[T]()
	if v, ok := stdTypes.Load(t); ok {
		return v.(bool)
	}
	v := hasStringOption(t, map[reflect.Type]bool{})
	stdTypes.Store(t, v)
	return v
}

func hasStringOption(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return hasStringOption(t.Elem(), seen)
	case reflect.Map:
		return hasStringOption(t.Key(), seen) || hasStringOption(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if _, opts, _ := strings.Cut(f.Tag.Get("json"), ","); hasOption(opts, "string") {
				return true
			}
			if hasStringOption(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// hasOption reports whether the comma-separated options of a json tag
// include name.
func hasOption(opts, name string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == name {
			return true
		}
	}
	return false
}
