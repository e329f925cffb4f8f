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

// batch is the chunk the Reader hands out, and its decoding. slot is
// reused for every message (no allocation per message for the value
// itself). For the default JSONCodec one json.Decoder walks a GET's array:
// its decode state is reused (json.Unmarshal per message costs several
// allocations) and the array is scanned once, not split first.
type batch[T any] struct {
	data    []byte
	spans   []jsonframe.Span
	idx, n  int
	off     Offset      // the offset the chunk was read from
	next    Offset      // the offset after it
	json    bool        // a JSON batch: spans (or dec) frame its messages
	fresh   bool        // every position left in the batch is after the last delivered one (see freshBatch)
	decoded *decoded[T] // the batch's values, decoded ahead (nil: decode in take)
	event   ReadEvent   // the chunk being handed out, for HookRead

	slot     *T
	fastJSON bool          // the codec is the default JSONCodec: walk arrays with dec
	rawJSON  bool          // BytesCodec: JSON batches are validated before they are split
	dec      *json.Decoder // walks a lazy batch
	br       bytes.Reader
	lazy     bool // the batch is read by dec, element by element (n unknown)
	lazyDone bool
}

// load makes ch the current batch, dropping the r.reading.pos.Skip items
// already handled, and moves r.reading.pos past it.
func (r *Reader[T]) load(off Offset, ch rawChunk, ahead *decoded[T]) error {
	k := r.reading.pos.Skip
	r.cur.off, r.cur.next = off, ch.next
	r.cur.idx, r.cur.n = 0, 0
	r.cur.lazy, r.cur.lazyDone = false, false
	if r.cur.decoded != nil {
		if r.ahead.slabs == nil {
			r.ahead.slabs = r.cur.decoded
		}
		r.cur.decoded = nil
	}
	r.cur.data = ch.data
	r.cur.json = r.reading.isJSON
	var items int64
	switch {
	case r.reading.isJSON && ahead != nil:
		// Decoded ahead (see WithDecodeAhead): take hands the values out.
		r.cur.decoded = ahead
		r.cur.spans, ahead.spans = ahead.spans, r.cur.spans
		items = r.spansLoaded(k)
	case r.reading.isJSON && r.cur.fastJSON && ch.parts == nil && len(bytes.TrimSpace(ch.data)) > 0:
		// One json.Decoder walks the array: no separate split pass.
		if err := r.startLazy(ch.data); err != nil {
			return err
		}
		if err := r.skipLazy(k); err != nil {
			return err
		}
		if !r.cur.lazyDone {
			r.reading.pos = Position{Offset: string(ch.next)}
			return nil
		}
		items = int64(r.cur.idx)
		r.cur.lazy = false
	case r.reading.isJSON:
		if err := r.split(ch.data, ch.parts); err != nil {
			return err
		}
		items = r.spansLoaded(k)
	default:
		items = int64(len(ch.data))
		if k < items {
			r.cur.data = ch.data[k:]
			r.cur.n = 1
		}
	}
	if k >= items {
		r.reading.pos = Position{Offset: string(ch.next), Skip: k - items}
		r.cur.n, r.cur.idx = 0, 0
	} else {
		r.reading.pos = Position{Offset: string(ch.next)}
	}
	r.cur.fresh = r.freshBatch()
	return nil
}

// spansLoaded sets the batch's length from its spans, skips its first k
// items, and returns its length.
func (r *Reader[T]) spansLoaded(k int64) int64 {
	items := int64(len(r.cur.spans))
	r.cur.n = len(r.cur.spans)
	if k < items {
		r.cur.idx = int(k)
	}
	return items
}

// skipLazy walks the lazy batch past its first k elements (already
// handled), or to its end.
func (r *Reader[T]) skipLazy(k int64) error {
	for int64(r.cur.idx) < k && !r.cur.lazyDone {
		var skip json.RawMessage
		if err := r.cur.dec.Decode(&skip); err != nil {
			return r.batchError(err)
		}
		r.cur.idx++
		if r.cur.lazyDone = !r.cur.dec.More(); r.cur.lazyDone {
			if err := r.finishLazy(); err != nil {
				return err
			}
		}
	}
	return nil
}

// split frames the JSON batch data into r.cur.spans: one array or, from SSE,
// one array per data event, parts holding where each event ends in data.
func (r *Reader[T]) split(data []byte, parts []int) error {
	r.cur.spans = r.cur.spans[:0]
	start := 0
	if parts == nil {
		parts = []int{len(data)}
	}
	for _, end := range parts {
		part := data[start:end]
		if len(bytes.TrimSpace(part)) > 0 {
			if r.cur.rawJSON && !json.Valid(part) {
				// Raw readers hand the bytes on: check them here (a
				// decoding codec checks its own input).
				return r.batchError(errors.New("invalid JSON"))
			}
			before := len(r.cur.spans)
			var err error
			r.cur.spans, err = jsonframe.Split(r.cur.spans, part)
			if err != nil {
				return r.batchError(err)
			}
			for j := before; j < len(r.cur.spans); j++ {
				r.cur.spans[j].Start += start
				r.cur.spans[j].End += start
			}
		}
		start = end
	}
	return nil
}

// freshBatch reports whether every position left in a split (or decoded
// ahead) batch is after the last delivered one, so that take and deliver
// need not compare each message's position: true when the first one is,
// and the batch's positions increase (its next offset is after its own).
func (r *Reader[T]) freshBatch() bool {
	if r.cur.lazy || !r.cur.json || r.cur.idx >= r.cur.n {
		return false
	}
	if (Position{Offset: string(r.cur.next)}).Compare(Position{Offset: string(r.cur.off), Skip: int64(r.cur.n)}) <= 0 {
		return false
	}
	if !r.commit.hasLast {
		return true
	}
	first := Position{Offset: string(r.cur.off), Skip: int64(r.cur.idx + 1)}
	if r.cur.idx == r.cur.n-1 {
		first = Position{Offset: string(r.cur.next)}
	}
	return first.Compare(r.commit.last) > 0
}

// batchError reports a JSON batch that is not a well-formed array.
func (r *Reader[T]) batchError(err error) error {
	return &Error{Op: "read", URL: redactURL(r.url), Status: http.StatusOK,
		Err: fmt.Errorf("%w: JSON stream data is not a JSON array: %w", ErrProtocol, err)}
}

// startLazy points the Reader's json.Decoder at data, past its '['.
func (r *Reader[T]) startLazy(data []byte) error {
	r.cur.br.Reset(data)
	if r.cur.dec == nil {
		r.cur.dec = json.NewDecoder(&r.cur.br)
	} else {
		*r.cur.dec = *json.NewDecoder(&r.cur.br)
	}
	tok, err := r.cur.dec.Token()
	if err != nil {
		return r.batchError(err)
	}
	if tok != json.Delim('[') {
		return r.batchError(fmt.Errorf("starts with %v", tok))
	}
	r.cur.lazy = true
	if r.cur.lazyDone = !r.cur.dec.More(); r.cur.lazyDone {
		return r.finishLazy()
	}
	return nil
}

// finishLazy checks that the array ends with ']' and nothing follows.
func (r *Reader[T]) finishLazy() error {
	tok, err := r.cur.dec.Token()
	if err != nil {
		return r.batchError(err)
	}
	if tok != json.Delim(']') {
		return r.batchError(fmt.Errorf("unexpected %v", tok))
	}
	if _, err := r.cur.dec.Token(); err != io.EOF {
		return r.batchError(fmt.Errorf("data after the array"))
	}
	return nil
}

// toSplit turns the lazy batch into a split one from element i on (after a
// decode error, when the Decoder may be out of step).
func (r *Reader[T]) toSplit(i int) error {
	var err error
	r.cur.spans, err = jsonframe.Split(r.cur.spans[:0], r.cur.data)
	if err != nil {
		return r.batchError(err)
	}
	r.cur.lazy, r.cur.lazyDone = false, false
	r.cur.n, r.cur.idx = len(r.cur.spans), i
	return nil
}

// batchPending reports whether the current batch has items left.
func (r *Reader[T]) batchPending() bool {
	if r.cur.lazy {
		return !r.cur.lazyDone
	}
	return r.cur.idx < r.cur.n
}

// takeLazy decodes the next element with the batch's json.Decoder. After
// a decode error it turns the batch into a split one (toSplit) and returns
// no message, for take to go on with.
func (r *Reader[T]) takeLazy() (Message[T], bool, error) {
	for r.cur.lazy && !r.cur.lazyDone {
		i := r.cur.idx
		start := int(r.cur.dec.InputOffset())
		var zero T
		*r.cur.slot = zero
		if err := r.cur.dec.Decode(r.cur.slot); err != nil {
			if err := r.toSplit(i); err != nil {
				r.reading.sticky = err
				return Message[T]{}, false, err
			}
			return Message[T]{}, false, nil // take decodes element i again, with the codec, for its error
		}
		r.cur.idx++
		end := int(r.cur.dec.InputOffset())
		for start < end && (isJSONSpace(r.cur.data[start]) || r.cur.data[start] == ',') {
			start++
		}
		pos := Position{Offset: string(r.cur.off), Skip: int64(i + 1)}
		if r.cur.lazyDone = !r.cur.dec.More(); r.cur.lazyDone {
			if err := r.finishLazy(); err != nil {
				r.reading.sticky = err
				return Message[T]{}, false, err
			}
			pos = Position{Offset: string(r.cur.next)}
		}
		if m, ok := r.deliver(pos, r.cur.data[start:end], *r.cur.slot, nil); ok {
			return m, true, nil
		}
	}
	return Message[T]{}, false, nil
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// take returns the next message of the current batch, if any.
func (r *Reader[T]) take() (Message[T], bool, error) {
	if r.cur.lazy {
		if m, ok, err := r.takeLazy(); ok || err != nil || r.cur.lazy {
			return m, ok, err
		}
		// Split after a decode error: the loop below decodes the element
		// again, with the codec, for its error.
	}
	for r.cur.idx < r.cur.n {
		i := r.cur.idx
		r.cur.idx++
		var raw []byte
		if r.cur.json {
			sp := r.cur.spans[i]
			raw = r.cur.data[sp.Start:sp.End]
		} else {
			raw = r.cur.data
		}
		pos := Position{Offset: string(r.cur.next)}
		if i < r.cur.n-1 {
			pos = Position{Offset: string(r.cur.off), Skip: int64(i + 1)}
		}
		// r.commit.last is written only by this goroutine: read it unlocked.
		if !r.cur.fresh && r.commit.hasLast && pos.Compare(r.commit.last) <= 0 {
			r.mu.Lock()
			r.stats.Stale++
			r.mu.Unlock()
			continue
		}
		var (
			v   T
			err error
		)
		if r.cur.decoded != nil {
			v = r.cur.decoded.vals[i]
			var zero T
			r.cur.decoded.vals[i] = zero // the Reader keeps no reference to a value handed out
		} else {
			v, err = r.decode(raw)
		}
		if err != nil {
			r.deliver(pos, raw, v, err)
			ex := raw
			if len(ex) > 256 {
				ex = ex[:256]
			}
			return Message[T]{}, false, &DecodeError{Position: pos, BatchOffset: r.cur.off, Index: i, Data: bytes.Clone(ex), Err: err}
		}
		if m, ok := r.deliver(pos, raw, v, nil); ok {
			return m, true, nil
		}
	}
	return Message[T]{}, false, nil
}

// deliver records a decoded message (or its decode error, returned as a
// *DecodeError in err's place) and reports whether it is to be returned:
// stale positions are dropped.
func (r *Reader[T]) deliver(pos Position, raw []byte, v T, decErr error) (Message[T], bool) {
	if decErr == nil && !r.cur.fresh && r.commit.hasLast && pos.Compare(r.commit.last) <= 0 {
		r.mu.Lock()
		r.stats.Stale++
		r.mu.Unlock()
		return Message[T]{}, false
	}
	r.mu.Lock()
	r.commit.last, r.commit.hasLast = pos, true
	r.commit.pending, r.commit.hasPending = pos, true
	if r.commit.handledAhead && pos.Compare(r.commit.handled) >= 0 {
		r.commit.handledAhead = false
	}
	if decErr == nil {
		r.stats.Delivered++
		r.cur.event.Messages++
	}
	r.mu.Unlock()
	return Message[T]{Value: v, Data: raw, Position: pos}, true
}

// decode decodes one message with the codec into the reused slot.
func (r *Reader[T]) decode(raw []byte) (T, error) {
	var zero T
	*r.cur.slot = zero
	if err := r.codec.Decode(raw, r.cur.slot); err != nil {
		return zero, err
	}
	return *r.cur.slot, nil
}
