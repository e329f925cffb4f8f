package durable

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// FuzzToChunk: whatever a server answers to a read, toChunk returns a
// chunk that keeps the protocol's promises, or an error; it never panics
// and never holds more than the limit.
func FuzzToChunk(f *testing.F) {
	f.Add(200, "0000_0002", "application/json", "true", "", `[1,2]`, "0000_0001", false)
	f.Add(204, "0000_0002", "", "true", "c1", ``, "0000_0002", true)
	f.Add(304, "", "application/json", "", "", ``, "0000_0002", false)
	f.Add(200, "-1", "text/plain", "false", "", `x`, "", false)
	f.Add(200, "0000_0001", "text/event-stream", "", "", "data: x\n\n", "0000_0002", false)
	f.Fuzz(func(t *testing.T, status int, next, ctype, upToDate, cursor, body string, offset string, longPoll bool) {
		h := http.Header{}
		h.Set("Stream-Next-Offset", next)
		h.Set("Content-Type", ctype)
		h.Set("Stream-Up-To-Date", upToDate)
		h.Set("Stream-Cursor", cursor)
		raw := &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: -1}
		q := readQuery{offset: Offset(offset), limit: 64, checkJSON: true, ifNoneMatch: "e"}
		if longPoll {
			q.live = LiveLongPoll
		}
		var buf []byte
		ch, err := toChunk(&response{status: status, header: h, raw: raw}, q, &buf)
		if err != nil {
			return
		}
		if len(ch.data) > 64 {
			t.Fatalf("%d bytes kept over a limit of 64", len(ch.data))
		}
		if ch.notModified {
			return
		}
		if checkOffset("next", string(ch.next)) != nil {
			t.Fatalf("invalid next offset %q accepted", ch.next)
		}
		if isRealOffset(Offset(offset)) && ch.next < Offset(offset) {
			t.Fatalf("next offset %q before the requested %q", ch.next, offset)
		}
		if len(ch.data) > 0 && (ch.ctype == "" || (strings.HasPrefix(ch.ctype, "application/json") && !isJSONArray(ch.data))) {
			t.Fatalf("data %q with content type %q accepted", ch.data, ch.ctype)
		}
	})
}
