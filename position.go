package durable

import (
	"strings"

	"github.com/durablego/durable/offsetstore"
)

// Position is a consumer position in a stream: a server offset plus how
// many messages (JSON streams) or bytes (other streams) past it were
// already handled. It is the type the offsetstore package saves.
//
// A Reader gives every message the position just after it: message i
// (0-based) of a batch read from offset O has (O, i+1), except the batch's
// last message, whose position is normalised to (next offset, 0). Reading
// from an offset always returns the same data in the same order, so a
// position pins one message exactly, even inside a batch, and resuming from
// (O, k) means reading from O and dropping the first k messages (or bytes).
type Position = offsetstore.Position

// ComparePositions orders two positions of the same stream: it returns -1
// when a is before b, 0 when they are equal and +1 when a is after b.
// Offsets compare lexicographically (PROTOCOL.md §8), the start sentinel
// "-1" before every real offset, then Skip decides. Meta is ignored.
// The positions one Reader delivers, across restarts on the same store,
// increase strictly in this order (a batch's last position is normalised to
// (next offset, 0)). Positions from different readers need not compare
// consistently: (offset, skip) names a message relative to where a read
// started, and two readers may start reads at different offsets.
// The "now" sentinel names no fixed place and must not be compared.
func ComparePositions(a, b Position) int {
	if a.Offset != b.Offset {
		switch {
		case a.Offset == string(OffsetStart):
			return -1
		case b.Offset == string(OffsetStart):
			return 1
		}
		return strings.Compare(a.Offset, b.Offset)
	}
	switch {
	case a.Skip < b.Skip:
		return -1
	case a.Skip > b.Skip:
		return 1
	}
	return 0
}
