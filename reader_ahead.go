package durable

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"

	"github.com/durablego/durable/internal/jsonframe"
)

// decoded is a JSON chunk decoded ahead of Next (see WithDecodeAhead): the
// value and the byte span of each element of the array.
type decoded[T any] struct {
	vals  []T
	spans []jsonframe.Span
}

// minDecodeShare is the fewest elements worth a goroutine of their own.
const minDecodeShare = 512

// decodeAhead decodes the JSON array in data into d, reusing d's slices,
// with up to workers goroutines (the caller's included). It reports
// whether every element decoded cleanly; if not (or if ctx ends), d is to
// be ignored and the chunk decoded in Next, which reports the error at its
// position exactly as without decoding ahead.
func decodeAhead[T any](ctx context.Context, data []byte, d *decoded[T], workers int) bool {
	var err error
	d.spans, err = jsonframe.Split(d.spans[:0], data)
	if err != nil {
		return false
	}
	n := len(d.spans)
	if cap(d.vals) < n {
		d.vals = make([]T, n)
	} else {
		d.vals = d.vals[:n]
		clear(d.vals)
	}
	if n == 0 {
		return true
	}
	parts := min(workers, max(1, n/minDecodeShare))
	if parts <= 1 {
		return decodeRange(ctx, data, d, 0, n)
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		bad bool
	)
	for p := 1; p < parts; p++ {
		lo, hi := p*n/parts, (p+1)*n/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !decodeRange(ctx, data, d, lo, hi) {
				mu.Lock()
				bad = true
				mu.Unlock()
			}
		}()
	}
	ok := decodeRange(ctx, data, d, 0, n/parts)
	wg.Wait()
	return ok && !bad
}

// decodeRange decodes elements [lo, hi) of d.spans into d.vals with one
// json.Decoder over those elements framed as an array of their own, and
// checks that the Decoder ends each element exactly where Split did.
func decodeRange[T any](ctx context.Context, data []byte, d *decoded[T], lo, hi int) bool {
	base := d.spans[lo].Start
	body := data[base:d.spans[hi-1].End]
	dec := json.NewDecoder(io.MultiReader(strings.NewReader("["), bytes.NewReader(body), strings.NewReader("]")))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return false
	}
	for i := lo; i < hi; i++ {
		if i%256 == 0 && ctx.Err() != nil {
			return false
		}
		if err := dec.Decode(&d.vals[i]); err != nil {
			return false
		}
		if int(dec.InputOffset()) != 1+d.spans[i].End-base {
			return false
		}
	}
	return true
}
