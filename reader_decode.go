package durable

// The Reader's current batch: loading a chunk, splitting or walking its
// JSON array, and handing its messages out one at a time with their
// positions, dropping stale ones and duplicates.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/durablego/durable/internal/jsonframe"
)

// load makes ch the current batch, dropping the readPos.Skip items already
// handled, and moves readPos past it.
func (r *Reader[T]) load(off Offset, ch rawChunk, ahead *decoded[T]) error {
	k := r.readPos.Skip
	r.batchOff, r.batchNext = off, ch.next
	r.idx, r.n = 0, 0
	r.lazy, r.lazyDone = false, false
	if r.ahead != nil {
		if r.pfDec == nil {
			r.pfDec = r.ahead
		}
		r.ahead = nil
	}
	r.data = ch.data
	r.jsonBatch = r.isJSON
	var items int64
	switch {
	case r.isJSON && ahead != nil:
		// Decoded ahead (see WithDecodeAhead): take hands the values out.
		r.ahead = ahead
		r.aheadChunks++
		r.spans, ahead.spans = ahead.spans, r.spans
		items = int64(len(r.spans))
		r.n = len(r.spans)
		if k < items {
			r.idx = int(k)
		}
	case r.isJSON && r.fastJSON && ch.parts == nil && len(bytes.TrimSpace(ch.data)) > 0:
		// One json.Decoder walks the array: no separate split pass.
		if err := r.startLazy(ch.data); err != nil {
			return err
		}
		for int64(r.idx) < k && !r.lazyDone {
			var skip json.RawMessage
			if err := r.dec.Decode(&skip); err != nil {
				return r.batchError(err)
			}
			r.idx++
			if r.lazyDone = !r.dec.More(); r.lazyDone {
				if err := r.finishLazy(); err != nil {
					return err
				}
			}
		}
		if !r.lazyDone {
			r.readPos = Position{Offset: string(ch.next)}
			return nil
		}
		items = int64(r.idx)
		r.lazy = false
	case r.isJSON:
		r.spans = r.spans[:0]
		start := 0
		parts := ch.parts
		if parts == nil {
			parts = []int{len(ch.data)}
		}
		for _, end := range parts {
			part := ch.data[start:end]
			if len(bytes.TrimSpace(part)) > 0 {
				if r.rawJSON && !json.Valid(part) {
					// Raw readers hand the bytes on: check them here (a
					// decoding codec checks its own input).
					return r.batchError(errors.New("invalid JSON"))
				}
				before := len(r.spans)
				var err error
				r.spans, err = jsonframe.Split(r.spans, part)
				if err != nil {
					return r.batchError(err)
				}
				for j := before; j < len(r.spans); j++ {
					r.spans[j].Start += start
					r.spans[j].End += start
				}
			}
			start = end
		}
		items = int64(len(r.spans))
		r.n = len(r.spans)
		if k < items {
			r.idx = int(k)
		}
	default:
		items = int64(len(ch.data))
		if k < items {
			r.data = ch.data[k:]
			r.n = 1
		}
	}
	if k >= items {
		r.readPos = Position{Offset: string(ch.next), Skip: k - items}
		r.n, r.idx = 0, 0
	} else {
		r.readPos = Position{Offset: string(ch.next)}
	}
	r.batchFresh = r.freshBatch()
	return nil
}

// freshBatch reports whether every position left in a split (or decoded
// ahead) batch is after the last delivered one, so that take and deliver
// need not compare each message's position: true when the first one is,
// and the batch's positions increase (its next offset is after its own).
func (r *Reader[T]) freshBatch() bool {
	if r.lazy || !r.jsonBatch || r.idx >= r.n {
		return false
	}
	if (Position{Offset: string(r.batchNext)}).Compare(Position{Offset: string(r.batchOff), Skip: int64(r.n)}) <= 0 {
		return false
	}
	if !r.hasLast {
		return true
	}
	first := Position{Offset: string(r.batchOff), Skip: int64(r.idx + 1)}
	if r.idx == r.n-1 {
		first = Position{Offset: string(r.batchNext)}
	}
	return first.Compare(r.last) > 0
}

// batchError reports a JSON batch that is not a well-formed array.
func (r *Reader[T]) batchError(err error) error {
	return &Error{Op: "read", URL: redactURL(r.url), Status: http.StatusOK,
		Err: fmt.Errorf("%w: JSON stream data is not a JSON array: %w", ErrProtocol, err)}
}

// startLazy points the Reader's json.Decoder at data, past its '['.
func (r *Reader[T]) startLazy(data []byte) error {
	r.br.Reset(data)
	if r.dec == nil {
		r.dec = json.NewDecoder(&r.br)
	} else {
		*r.dec = *json.NewDecoder(&r.br)
	}
	tok, err := r.dec.Token()
	if err != nil {
		return r.batchError(err)
	}
	if tok != json.Delim('[') {
		return r.batchError(fmt.Errorf("starts with %v", tok))
	}
	r.lazy = true
	if r.lazyDone = !r.dec.More(); r.lazyDone {
		return r.finishLazy()
	}
	return nil
}

// finishLazy checks that the array ends with ']' and nothing follows.
func (r *Reader[T]) finishLazy() error {
	tok, err := r.dec.Token()
	if err != nil {
		return r.batchError(err)
	}
	if tok != json.Delim(']') {
		return r.batchError(fmt.Errorf("unexpected %v", tok))
	}
	if _, err := r.dec.Token(); err != io.EOF {
		return r.batchError(fmt.Errorf("data after the array"))
	}
	return nil
}

// toSplit turns the lazy batch into a split one from element i on (after a
// decode error, when the Decoder may be out of step).
func (r *Reader[T]) toSplit(i int) error {
	var err error
	r.spans, err = jsonframe.Split(r.spans[:0], r.data)
	if err != nil {
		return r.batchError(err)
	}
	r.lazy, r.lazyDone = false, false
	r.n, r.idx = len(r.spans), i
	return nil
}

// batchPending reports whether the current batch has items left.
func (r *Reader[T]) batchPending() bool {
	if r.lazy {
		return !r.lazyDone
	}
	return r.idx < r.n
}

// takeLazy decodes the next element with the batch's json.Decoder.
func (r *Reader[T]) takeLazy() (Message[T], bool, error) {
	for r.lazy && !r.lazyDone {
		i := r.idx
		start := int(r.dec.InputOffset())
		var zero T
		*r.slot = zero
		if err := r.dec.Decode(r.slot); err != nil {
			if err := r.toSplit(i); err != nil {
				r.sticky = err
				return Message[T]{}, false, err
			}
			return r.take() // decode element i again, with the codec, for its error
		}
		r.idx++
		end := int(r.dec.InputOffset())
		for start < end && (isJSONSpace(r.data[start]) || r.data[start] == ',') {
			start++
		}
		pos := Position{Offset: string(r.batchOff), Skip: int64(i + 1)}
		if r.lazyDone = !r.dec.More(); r.lazyDone {
			if err := r.finishLazy(); err != nil {
				r.sticky = err
				return Message[T]{}, false, err
			}
			pos = Position{Offset: string(r.batchNext)}
		}
		if m, ok := r.deliver(pos, r.data[start:end], *r.slot, nil); ok {
			return m, true, nil
		}
	}
	return Message[T]{}, false, nil
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// take returns the next message of the current batch, if any.
func (r *Reader[T]) take() (Message[T], bool, error) {
	if r.lazy {
		return r.takeLazy()
	}
	for r.idx < r.n {
		i := r.idx
		r.idx++
		var raw []byte
		if r.jsonBatch {
			sp := r.spans[i]
			raw = r.data[sp.Start:sp.End]
		} else {
			raw = r.data
		}
		pos := Position{Offset: string(r.batchNext)}
		if i < r.n-1 {
			pos = Position{Offset: string(r.batchOff), Skip: int64(i + 1)}
		}
		// r.last is written only by this goroutine: read it unlocked.
		if !r.batchFresh && r.hasLast && pos.Compare(r.last) <= 0 {
			r.mu.Lock()
			r.stats.Stale++
			r.mu.Unlock()
			continue
		}
		var (
			v   T
			err error
		)
		if r.ahead != nil {
			v = r.ahead.vals[i]
			var zero T
			r.ahead.vals[i] = zero // the Reader keeps no reference to a value handed out
		} else {
			v, err = r.decode(raw)
		}
		if err != nil {
			r.deliver(pos, raw, v, err)
			ex := raw
			if len(ex) > 256 {
				ex = ex[:256]
			}
			return Message[T]{}, false, &DecodeError{Position: pos, Offset: r.batchOff, Index: i, Data: bytes.Clone(ex), Err: err}
		}
		if m, ok := r.deliver(pos, raw, v, nil); ok {
			return m, true, nil
		}
	}
	return Message[T]{}, false, nil
}

// deliver records a decoded message (or its decode error, returned as a
// *DecodeError in err's place) and reports whether it is to be returned:
// stale positions and dedupe hits are dropped.
func (r *Reader[T]) deliver(pos Position, raw []byte, v T, decErr error) (Message[T], bool) {
	if decErr == nil && !r.batchFresh && r.hasLast && pos.Compare(r.last) <= 0 {
		r.mu.Lock()
		r.stats.Stale++
		r.mu.Unlock()
		return Message[T]{}, false
	}
	if decErr == nil && r.dedupe != nil && r.seen(r.dedupe(v)) {
		r.mu.Lock()
		r.last, r.hasLast = pos, true
		r.stats.Duplicates++
		r.mu.Unlock()
		return Message[T]{}, false
	}
	r.mu.Lock()
	r.last, r.hasLast = pos, true
	r.pending, r.hasPending = pos, true
	if r.handledAhead && pos.Compare(r.handled) >= 0 {
		r.handledAhead = false
	}
	if decErr == nil {
		r.stats.Delivered++
		r.chunk.Messages++
	}
	r.mu.Unlock()
	return Message[T]{Value: v, Data: raw, Position: pos, Offset: r.batchOff}, true
}

// decode decodes one message with the codec into the reused slot.
func (r *Reader[T]) decode(raw []byte) (T, error) {
	var zero T
	*r.slot = zero
	if err := r.codec.Decode(raw, r.slot); err != nil {
		return zero, err
	}
	return *r.slot, nil
}

// seen reports whether key is in the dedupe window, and adds it if not.
func (r *Reader[T]) seen(key string) bool {
	if _, ok := r.dset[key]; ok {
		return true
	}
	if r.dfill == len(r.dkeys) {
		delete(r.dset, r.dkeys[r.dpos])
	} else {
		r.dfill++
	}
	r.dkeys[r.dpos] = key
	r.dset[key] = struct{}{}
	r.dpos = (r.dpos + 1) % len(r.dkeys)
	return false
}
