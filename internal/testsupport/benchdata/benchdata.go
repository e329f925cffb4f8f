// Package benchdata holds the messages of the SDK's benchmarks, shared by
// the core module's benchmarks and those of its nested modules (the
// instrumentation overhead of otel/ runs the same writer and catch-up
// cases as the core).
package benchdata

import (
	"fmt"
	"strings"
)

// Msg is the message of the writer benchmarks: it encodes to exactly 100
// bytes of JSON.
type Msg struct {
	ID      int    `json:"id"`
	Payload string `json:"payload"`
}

// NewMsg returns the Msg with id, its payload padded so that it encodes
// to 100 bytes (id up to 7 digits).
func NewMsg(id int) Msg {
	// {"id":1234567,"payload":"..."}
	return Msg{ID: id, Payload: strings.Repeat("x", 100-len(fmt.Sprintf(`{"id":%d,"payload":""}`, id)))}
}

// Msgs returns the 1,000 messages the JSON writer cases cycle through.
func Msgs() []Msg {
	msgs := make([]Msg, 1000)
	for i := range msgs {
		msgs[i] = NewMsg(1000000 + i)
	}
	return msgs
}

// Rec is the small JSON message of the catch-up benchmarks.
type Rec struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	OK   bool   `json:"ok"`
}

// CatchUpMessages is the size of the catch-up benchmarks' stream.
const CatchUpMessages = 1_000_000

// CatchUpBodies calls appendBody with each JSON array body that together
// fill the catch-up stream (Rec messages with IDs 0 to n-1, batch of them
// per body), and returns the size of the messages in bytes.
func CatchUpBodies(n, batch int, appendBody func([]byte) error) (int64, error) {
	var size int64
	buf := make([]byte, 0, batch*64)
	for first := 0; first < n; first += batch {
		buf = append(buf[:0], '[')
		for i := first; i < min(first+batch, n); i++ {
			if i > first {
				buf = append(buf, ',')
			}
			start := len(buf)
			buf = fmt.Appendf(buf, `{"id":%d,"name":"user-%d","ok":true}`, i, i)
			size += int64(len(buf) - start)
		}
		buf = append(buf, ']')
		if err := appendBody(buf); err != nil {
			return size, err
		}
	}
	return size, nil
}
