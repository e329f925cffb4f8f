package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/durablego/durable/internal/testsupport/cpuclock"
)

// BenchmarkReaderDecode isolates the Reader's per-batch work on one 1 MiB
// JSON chunk of small messages (no HTTP): split + decode + delivery of
// every message, beside the ceiling json.Unmarshal of the same body into
// a reused []benchRec. CPU-bound and single-threaded, so much steadier
// than the end-to-end catch-up on a loaded machine. One op = one chunk.
//
//	go test -run '^$' -bench ReaderDecode -benchmem -count 6 .
func BenchmarkReaderDecode(b *testing.B) {
	body, n := benchChunk(1 << 20)
	b.Run("typed", func(b *testing.B) {
		r := benchDecodeReader[benchRec](b)
		sink := 0
		benchDecode(b, body, n, func() { sink += decodeChunk(b, r, body) })
	})
	b.Run("raw", func(b *testing.B) {
		r := benchDecodeReader[[]byte](b)
		sink := 0
		benchDecode(b, body, n, func() { sink += decodeChunk(b, r, body) })
	})
	b.Run("ceiling-encoding-json", func(b *testing.B) {
		var recs []benchRec
		sink := 0
		benchDecode(b, body, n, func() { sink += unmarshalChunk(b, body, &recs) })
	})
}

// BenchmarkReaderDecodePaired runs the cases of BenchmarkReaderDecode
// alternately, chunk by chunk, and reports each one's rate relative to the
// ceiling measured in the same op: the figures to quote on a noisy
// machine.
func BenchmarkReaderDecodePaired(b *testing.B) {
	body, n := benchChunk(1 << 20)
	typed := benchDecodeReader[benchRec](b)
	raw := benchDecodeReader[[]byte](b)
	var recs []benchRec
	var dTyped, dRaw, dCeil time.Duration
	sink := 0
	timed := func(d *time.Duration, f func()) {
		t0 := time.Now()
		f()
		*d += time.Since(t0)
	}
	for b.Loop() {
		timed(&dCeil, func() { sink += unmarshalChunk(b, body, &recs) })
		timed(&dTyped, func() { sink += decodeChunk(b, typed, body) })
		timed(&dRaw, func() { sink += decodeChunk(b, raw, body) })
	}
	msgs := float64(n * b.N)
	b.ReportMetric(msgs/dCeil.Seconds(), "ceiling-msgs/s")
	b.ReportMetric(msgs/dTyped.Seconds(), "typed-msgs/s")
	b.ReportMetric(dCeil.Seconds()/dTyped.Seconds(), "typed/ceiling")
	b.ReportMetric(dCeil.Seconds()/dRaw.Seconds(), "raw/ceiling")
	b.ReportMetric(0, "ns/op")
}

// decodeChunk loads body as a batch and takes every message.
func decodeChunk[T any](b *testing.B, r *Reader[T], body []byte) int {
	if err := r.load("0", rawChunk{data: body, next: "1"}, nil); err != nil {
		b.Fatal(err)
	}
	n := 0
	for {
		_, ok, err := r.take()
		if err != nil {
			b.Fatal(err)
		}
		if !ok {
			return n
		}
		n++
	}
}

// unmarshalChunk decodes body with encoding/json into *recs (reused), the
// ceiling the Reader's decoding is compared with, and sums the IDs.
func unmarshalChunk(b *testing.B, body []byte, recs *[]benchRec) int {
	*recs = (*recs)[:0]
	if err := json.Unmarshal(body, recs); err != nil {
		b.Fatal(err)
	}
	sum := 0
	for i := range *recs {
		sum += (*recs)[i].ID
	}
	return sum
}

func benchDecodeReader[T any](b *testing.B) *Reader[T] {
	c, err := NewClient("http://127.0.0.1:1/")
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewReader(c, "s", codecOf[T](), WithLive(LiveNone), WithManualCommit())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	r.setContentType("application/json")
	return r
}

func benchDecode(b *testing.B, body []byte, n int, op func()) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	m0 := mallocs()
	cpu0 := cpuclock.Process()
	for b.Loop() {
		op()
	}
	msgs := float64(n) * float64(b.N)
	b.ReportMetric(float64(mallocs()-m0)/msgs, "allocs/msg")
	b.ReportMetric(msgs/b.Elapsed().Seconds(), "msgs/s")
	if cpu := cpuclock.Process() - cpu0; cpu > 0 {
		// The process's CPU time: steadier than msgs/s on a shared machine.
		b.ReportMetric(float64(cpu.Nanoseconds())/msgs, "cpu-ns/msg")
	}
}

// benchChunk returns a JSON array of the catch-up benchmark's messages of
// about size bytes, and how many messages it holds.
func benchChunk(size int) ([]byte, int) {
	buf := []byte{'['}
	n := 0
	for len(buf) < size {
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = fmt.Appendf(buf, `{"id":%d,"name":"user-%d","ok":true}`, n, n)
		n++
	}
	return append(buf, ']'), n
}
