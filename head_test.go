package durable

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOddHeadResponses: answers to a HEAD that a real server would not send;
// each must become a typed error.
func TestOddHeadResponses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"missing next offset", map[string]string{"Content-Type": "text/plain"}},
		{"bad ttl", map[string]string{"Stream-Next-Offset": "1", "Stream-TTL": "1.5"}},
		{"bad expires", map[string]string{"Stream-Next-Offset": "1", "Stream-Expires-At": "tomorrow"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t)
			mt.RegisterNoResponder(reply(200, tc.hdr, ""))
			_, err := c.Head(context.Background(), "s")
			require.ErrorIs(t, err, ErrProtocol)
		})
	}
}
