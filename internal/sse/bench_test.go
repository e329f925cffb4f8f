package sse

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// BenchmarkParser parses a stream of typical Durable Streams SSE events
// (a data event with a JSON array, then a control event).
func BenchmarkParser(b *testing.B) {
	var buf bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&buf, "event: data\ndata: [{\"id\":%d,\"name\":\"order\",\"amount\":12.5}]\n\n", i)
		fmt.Fprintf(&buf, "event: control\ndata: {\"streamNextOffset\":\"0000000000000000_%016d\",\"streamCursor\":\"c\"}\n\n", i)
		if i%100 == 0 {
			buf.WriteString(": keepalive\n\n")
		}
	}
	in := buf.Bytes()
	r := bytes.NewReader(in)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	b.ResetTimer()
	events := 0
	for range b.N {
		r.Reset(in)
		p := NewParser(r, 0, 0)
		for {
			_, err := p.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			events++
		}
	}
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkParserLargeEvent parses one 1 MiB event made of 1 KiB data lines.
func BenchmarkParserLargeEvent(b *testing.B) {
	in := strings.Repeat("data: "+strings.Repeat("x", 1018)+"\n", 1024) + "\n"
	r := strings.NewReader(in)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for range b.N {
		r.Reset(in)
		p := NewParser(r, 0, 0)
		if _, err := p.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
