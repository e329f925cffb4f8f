package durable

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOddAppendResponses: answers to an append that a real server would not
// send; each must become a typed error.
func TestOddAppendResponses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		hdr  map[string]string
		opts AppendOptions
	}{
		{"missing next offset", map[string]string{}, AppendOptions{ContentType: "text/plain"}},
		{"sentinel -1", map[string]string{"Stream-Next-Offset": "-1"}, AppendOptions{ContentType: "text/plain"}},
		{"sentinel now", map[string]string{"Stream-Next-Offset": "now"}, AppendOptions{ContentType: "text/plain"}},
		{"offset with slash", map[string]string{"Stream-Next-Offset": "a/b"}, AppendOptions{ContentType: "text/plain"}},
		{"offset too long", map[string]string{"Stream-Next-Offset": strings.Repeat("9", 2000)}, AppendOptions{ContentType: "text/plain"}},
		{"garbage producer epoch", map[string]string{"Stream-Next-Offset": "1", "Producer-Epoch": "x"},
			AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}}},
		{"garbage producer seq", map[string]string{"Stream-Next-Offset": "1", "Producer-Seq": "-3"},
			AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p"}}},
		{"close not confirmed", map[string]string{"Stream-Next-Offset": "1"}, AppendOptions{ContentType: "text/plain", Close: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, mt := mockClient(t)
			mt.RegisterResponder(http.MethodPost, mockBase+"s", reply(http.StatusNoContent, tc.hdr, ""))
			_, err := c.Append(context.Background(), "s", []byte("x"), tc.opts)
			require.ErrorIs(t, err, ErrProtocol)
			require.False(t, IsRetryable(err))
		})
	}
}

// The Node reference server answers a producer duplicate with 204 and the
// producer headers but no Stream-Next-Offset; a first-time append must still
// carry the offset.
func TestProducerDuplicateWithoutOffset(t *testing.T) {
	t.Parallel()
	dup := map[string]string{"Producer-Epoch": "0", "Producer-Seq": "3"}
	prod := AppendOptions{ContentType: "text/plain", Producer: &Producer{ID: "p", Seq: 3}}

	c, mt := mockClient(t)
	mt.RegisterResponder(http.MethodPost, mockBase+"s", reply(http.StatusNoContent, dup, ""))
	res, err := c.Append(context.Background(), "s", []byte("x"), prod)
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	require.Equal(t, Offset(""), res.NextOffset)
	require.Equal(t, int64(3), res.ProducerSeq)

	c, mt = mockClient(t)
	mt.RegisterResponder(http.MethodPost, mockBase+"s", reply(http.StatusOK, dup, ""))
	_, err = c.Append(context.Background(), "s", []byte("x"), prod)
	require.ErrorIs(t, err, ErrProtocol, "a 200 producer append without an offset")
}
