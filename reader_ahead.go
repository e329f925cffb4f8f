package durable

// Reading ahead during catch-up: the GET of the next chunk, started while
// this one is handed out, and the decoding of its messages in parallel.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"sync"

	"github.com/durablego/durable/internal/jsonframe"
	"github.com/durablego/durable/internal/protocol"
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

// readAhead is the Reader's read of the next chunk during catch-up, and
// the spares it reuses.
type readAhead[T any] struct {
	pf    *prefetched[T] // the catch-up read of the next chunk, started early
	buf   []byte         // spare read buffer for the next prefetch
	slabs *decoded[T]    // spare slabs for the next chunk decoded ahead
}

// prefetched is a catch-up read started ahead of need.
type prefetched[T any] struct {
	off    Offset
	done   chan struct{} // closed when ch, buf, dec, decOK and err are set
	cancel context.CancelFunc
	ch     rawChunk
	buf    []byte
	dec    *decoded[T] // the chunk decoded ahead (with decOK), or spare slabs
	decOK  bool
	err    error
}

// prefetch starts the catch-up GET of off in the background, into the
// spare buffer, so that the request and the transfer of the next chunk
// overlap with the decoding and handling of this one. It is consumed (its
// outcome, error included, taken as that of the read) by the next fetch
// of off, or cancelled by a fetch of anything else and by Close. The
// request keeps the caller's context values, not its cancellation. Its
// answer is as of when it was sent: if it turns out to be the tail, data
// appended (or a close) since then is seen by the read after it, as if it
// had happened a moment later.
func (r *Reader[T]) prefetch(ctx context.Context, off Offset) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(r.closeCtx, cancel)
	pf := &prefetched[T]{off: off, done: make(chan struct{}), cancel: cancel, buf: r.ahead.buf}
	r.ahead.buf = nil
	r.ahead.pf = pf
	// Decode ahead only what take would decode with one json.Decoder: a
	// GET of a JSON stream read with the default JSONCodec.
	workers := r.cfg.decodeWorkers
	if !r.cur.fastJSON || !r.reading.isJSON {
		workers = 0
	}
	if workers > 0 {
		pf.dec = r.ahead.slabs
		r.ahead.slabs = nil
		if pf.dec == nil {
			pf.dec = new(decoded[T])
		}
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		defer close(pf.done)
		defer stop()
		defer cancel()
		pf.ch, pf.err = r.tr.catchUp(pctx, &pf.buf, off, "")
		if workers > 0 && pf.err == nil && !pf.ch.notModified && pf.ch.parts == nil && protocol.IsJSON(pf.ch.ctype) {
			pf.decOK = decodeAhead(pctx, pf.ch.data, pf.dec, workers)
		}
	}()
}

// awaitPrefetch waits for the catch-up read started ahead (r.ahead.pf) and
// returns its outcome as that of this read, with the chunk's values when
// they were decoded ahead. If ctx ends first, r.ahead.pf is kept for the next
// call.
func (r *Reader[T]) awaitPrefetch(ctx context.Context) (rawChunk, *decoded[T], error) {
	pf := r.ahead.pf
	select {
	case <-pf.done:
	case <-ctx.Done():
		return rawChunk{}, nil, ctx.Err()
	}
	r.ahead.pf = nil
	r.tr.buf, r.ahead.buf = pf.buf, r.tr.buf
	var ahead *decoded[T]
	if pf.dec != nil {
		if pf.decOK && pf.err == nil {
			ahead = pf.dec
		} else if r.ahead.slabs == nil {
			r.ahead.slabs = pf.dec // spare slabs again
		}
	}
	return pf.ch, ahead, pf.err
}

// dropPrefetch cancels a prefetch that is not wanted. Its buffer is left
// to it (and then to the garbage collector).
func (r *Reader[T]) dropPrefetch() {
	if r.ahead.pf != nil {
		r.ahead.pf.cancel()
		r.ahead.pf = nil
	}
}
