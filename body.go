package durable

import (
	"fmt"
	"io"
)

// Reading bodies into memory. One function reads every body the SDK keeps
// (unary responses, Client.Read, the Reader's reads); error bodies are only
// excerpted (readExcerpt).

// firstSlab and maxSlab size the pieces a body of unknown length is read
// into before it is joined.
const (
	firstSlab = 32 << 10
	maxSlab   = 4 << 20
)

// readBody reads all of body, at most limit bytes, into buf (reused: its
// contents are replaced). A body larger than limit is ErrResponseTooLarge,
// found from contentLength (-1 = unknown) before reading when it is
// declared. A body of unknown length that outgrows buf is read in slabs and
// joined once at the end, so that memory and copying stay about one times
// the body, and a body over the limit is dropped without ever being joined.
// A body cut short is io.ErrUnexpectedEOF (from net/http), which is
// retryable.
func readBody(buf []byte, body io.Reader, contentLength, limit int64) ([]byte, error) {
	buf = buf[:0]
	if contentLength > limit {
		return buf, fmt.Errorf("%w: Content-Length %d > %d", ErrResponseTooLarge, contentLength, limit)
	}
	if contentLength >= 0 && int64(cap(buf)) < contentLength+1 {
		buf = make([]byte, 0, contentLength+1) // +1: EOF is seen without growing
	}
	if cap(buf) == 0 {
		buf = make([]byte, 0, firstSlab)
	}
	var (
		slabs [][]byte // full slabs before buf, in order
		total int64    // bytes in slabs
	)
	for {
		if len(buf) == cap(buf) {
			total += int64(len(buf))
			slabs = append(slabs, buf)
			size := min(max(2*len(buf), firstSlab), maxSlab)
			buf = make([]byte, 0, size)
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if total+int64(len(buf)) > limit {
			return buf[:0], fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf[:0], err
		}
	}
	if len(slabs) == 0 {
		return buf, nil
	}
	out := make([]byte, 0, total+int64(len(buf)))
	for _, s := range slabs {
		out = append(out, s...)
	}
	return append(out, buf...), nil
}

// readExcerpt reads up to maxMessage bytes of an error body for the
// error's message; the rest is not read.
func readExcerpt(body io.Reader) []byte {
	b, _ := io.ReadAll(io.LimitReader(body, maxMessage))
	return b
}
