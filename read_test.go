package durable

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOddReadResponses: answers to a read that a real server would not send;
// each must become a typed error.
func TestOddReadResponses(t *testing.T) {
	t.Parallel()
	ok := func(extra map[string]string) map[string]string {
		h := map[string]string{"Content-Type": "text/plain", "Stream-Next-Offset": "5"}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	for _, tc := range []struct {
		name   string
		status int
		hdr    map[string]string
		body   string
		opts   ReadOptions
	}{
		{"missing next offset", 200, map[string]string{"Content-Type": "text/plain"}, "x", ReadOptions{}},
		{"next offset -1", 200, ok(map[string]string{"Stream-Next-Offset": "-1"}), "x", ReadOptions{}},
		{"next offset now", 200, ok(map[string]string{"Stream-Next-Offset": "now"}), "", ReadOptions{Offset: OffsetNow}},
		{"goes backwards", 200, ok(map[string]string{"Stream-Next-Offset": "3"}), "", ReadOptions{Offset: "4"}},
		{"event stream to plain read", 200, ok(map[string]string{"Content-Type": "text/event-stream"}), "data: x\n\n", ReadOptions{}},
		{"data without content type", 200, map[string]string{"Stream-Next-Offset": "5"}, "x", ReadOptions{}},
		{"unexpected content type", 200, ok(map[string]string{"Content-Type": "text/html"}), "<html>", ReadOptions{ContentType: "application/json"}},
		{"json not an array", 200, ok(map[string]string{"Content-Type": "application/json"}), `{"a":1}`, ReadOptions{}},
		{"json invalid", 200, ok(map[string]string{"Content-Type": "application/json"}), `[1,`, ReadOptions{}},
		{"204 on catch-up", 204, ok(nil), "", ReadOptions{}},
		{"304 not asked for", 304, ok(nil), "", ReadOptions{}},
		{"control char cursor", 200, ok(map[string]string{"Stream-Cursor": "a\x01"}), "", ReadOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t)
			mt.RegisterNoResponder(reply(tc.status, tc.hdr, tc.body))
			_, err := c.Read(context.Background(), "s", tc.opts)
			require.ErrorIs(t, err, ErrProtocol)
			var e *Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, "read", e.Op)
		})
	}
}
