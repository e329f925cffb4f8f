// Package protocol holds the wire vocabulary of the Durable Streams protocol
// (header and query names, sentinel offsets, value syntax) shared by the
// client and the testserver, so that both sides spell the protocol once.
package protocol

import (
	"strconv"
	"strings"
)

// Header names defined by the protocol (PROTOCOL.md sections 5 and 13.2).
const (
	HeaderNextOffset       = "Stream-Next-Offset"
	HeaderCursor           = "Stream-Cursor"
	HeaderUpToDate         = "Stream-Up-To-Date"
	HeaderClosed           = "Stream-Closed"
	HeaderTTL              = "Stream-TTL"
	HeaderExpiresAt        = "Stream-Expires-At"
	HeaderSeq              = "Stream-Seq"
	HeaderForkedFrom       = "Stream-Forked-From"
	HeaderForkOffset       = "Stream-Fork-Offset"
	HeaderForkSubOffset    = "Stream-Fork-Sub-Offset"
	HeaderSSEDataEncoding  = "Stream-Sse-Data-Encoding"
	HeaderProducerID       = "Producer-Id"
	HeaderProducerEpoch    = "Producer-Epoch"
	HeaderProducerSeq      = "Producer-Seq"
	HeaderProducerExpected = "Producer-Expected-Seq"
	HeaderProducerReceived = "Producer-Received-Seq"
)

// Query parameter names and values.
const (
	QueryOffset = "offset"
	QueryLive   = "live"
	QueryCursor = "cursor"

	LiveLongPoll = "long-poll"
	LiveSSE      = "sse"
)

// Sentinel offsets a client may send; a server never returns them.
const (
	OffsetStart = "-1"
	OffsetNow   = "now"
)

// ContentTypeJSON is the content type with message-boundary semantics.
const ContentTypeJSON = "application/json"

// SSE event types.
const (
	SSEEventData    = "data"
	SSEEventControl = "control"
)

// MaxProducerNumber is the largest epoch or sequence number the protocol
// allows (2^53-1, for JavaScript interoperability).
const MaxProducerNumber = 1<<53 - 1

// IsTrue reports whether a Stream-Closed / Stream-Up-To-Date style header
// value means true: exactly "true", compared case-insensitively. Any other
// value, including the empty string, means the header is absent.
func IsTrue(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "true") }

// BaseMediaType returns the media type of a Content-Type value without
// parameters, lower-cased: "Application/JSON; charset=utf-8" → "application/json".
func BaseMediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// IsJSON reports whether the content type is application/json.
func IsJSON(ct string) bool { return BaseMediaType(ct) == ContentTypeJSON }

// IsTextual reports whether SSE data for this content type travels as UTF-8
// text (text/* and application/json); every other type is base64 in SSE.
func IsTextual(ct string) bool {
	b := BaseMediaType(ct)
	return strings.HasPrefix(b, "text/") || b == ContentTypeJSON
}

// ParseTTL parses a Stream-TTL value: a non-negative decimal integer with no
// sign, no leading zeros (except "0" itself), no fraction or exponent.
func ParseTTL(v string) (int64, bool) {
	if v == "" || len(v) > 18 {
		return 0, false
	}
	if len(v) > 1 && v[0] == '0' {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// ParseProducerNumber parses a Producer-Epoch or Producer-Seq value: a
// decimal integer in [0, 2^53-1] with no sign or leading zeros.
func ParseProducerNumber(v string) (int64, bool) {
	n, ok := ParseTTL(v)
	if !ok || n > MaxProducerNumber {
		return 0, false
	}
	return n, true
}
