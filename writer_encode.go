package durable

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/durablego/durable/internal/jsonframe"
)

// Encoding a Writer's values: the codec, with shortcuts for the default
// codecs, and the checks every encoded message passes before it joins a
// batch.

// scratch is a reusable encoding buffer.
type scratch struct {
	b    []byte        // custom codecs
	buf  bytes.Buffer  // the default JSON codec
	enc  *json.Encoder // on buf
	slot any           // fastJSONPtr: a *T the value is copied into
}

func (w *Writer[T]) putScratch(sc *scratch) {
	if cap(sc.b) <= 64<<10 && sc.buf.Cap() <= 64<<10 {
		w.scratch.Put(sc)
	}
}

func (w *Writer[T]) getScratch() *scratch {
	if sc, ok := w.scratch.Get().(*scratch); ok {
		return sc
	}
	sc := &scratch{}
	sc.enc = json.NewEncoder(&sc.buf)
	return sc
}

// encodeMsg encodes one message, into sc unless it can be used as it is
// (T = []byte with the default codec); the result is valid until sc is
// reused.
func (w *Writer[T]) encodeMsg(sc *scratch, v T) ([]byte, error) {
	switch w.fast {
	case fastBytes:
		return w.check(any(v).([]byte), nil)
	case fastJSON, fastJSONPtr:
		// Same output as json.Marshal (HTML escaped), without its copy.
		sc.buf.Reset()
		var err error
		if w.fast == fastJSONPtr {
			// Through a pointer to a reused slot: no allocation to box v.
			p, _ := sc.slot.(*T)
			if p == nil {
				p = new(T)
				sc.slot = p
			}
			*p = v
			err = sc.enc.Encode(p)
			var zero T
			*p = zero // keep no reference to the caller's data
		} else {
			err = sc.enc.Encode(v)
		}
		b := sc.buf.Bytes()
		if n := len(b); err == nil && n > 0 && b[n-1] == '\n' {
			b = b[:n-1]
		}
		return w.check(b, err)
	}
	var err error
	sc.b, err = w.codec.Append(sc.b[:0], v)
	return w.check(sc.b, err)
}

// encode appends one message's encoding to dst and checks it.
func (w *Writer[T]) encode(dst []byte, v T) ([]byte, error) {
	enc, err := w.codec.Append(dst, v)
	if _, err := w.check(enc[len(dst):], err); err != nil {
		return dst, err
	}
	return enc, nil
}

// check vets one encoded message.
func (w *Writer[T]) check(enc []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, &Error{Op: "write", URL: redactURL(w.p.url), Err: fmt.Errorf("%w: %w", ErrEncode, err)}
	}
	switch {
	case w.validate && !jsonframe.Valid(enc):
		return enc, &Error{Op: "write", URL: redactURL(w.p.url), Err: fmt.Errorf("%w: not one valid JSON value", ErrEncode)}
	case !w.p.isJSON && len(enc) == 0:
		return enc, &Error{Op: "write", URL: redactURL(w.p.url), Err: fmt.Errorf("%w: empty message", ErrInvalidArgument)}
	}
	return enc, nil
}

// Encoding shortcuts for the default codecs.
const (
	fastNone  = iota
	fastBytes // BytesCodec: the value is the message
	fastJSON  // JSONCodec: pooled json.Encoder
	// fastJSONPtr is fastJSON encoding through a *T slot, for types whose
	// encoding is the same by value and by pointer (see byPointerSame).
	fastJSONPtr
)
