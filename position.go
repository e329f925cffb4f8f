package durable

import (
	"context"
	"strings"
)

// Position is a consumer position in a stream: a server offset plus how
// many messages (JSON streams) or bytes (other streams) past it were
// already handled. It is what a Store saves.
//
// A Reader gives every message the position just after it: message i
// (0-based) of a batch read from offset O has (O, i+1), except the batch's
// last message, whose position is normalised to (next offset, 0). Reading
// from an offset always returns the same data in the same order, so a
// position pins one message exactly, even inside a batch, and resuming from
// (O, k) means reading from O and dropping the first k messages (or bytes).
type Position struct {
	// Offset is the server offset ("-1" is the start of the stream). It must
	// not be empty.
	Offset string
	// Skip counts the messages (JSON streams) or bytes (other streams) past
	// Offset that were already handled. It must not be negative.
	Skip int64
	// Meta is opaque application data saved atomically with the position
	// (for example the length of an output file written so far). It must be
	// valid UTF-8; encode binary data (for example in base64) first.
	Meta string
}

// Compare orders two positions of the same stream: it returns -1 when p is
// before q, 0 when they are equal and +1 when p is after q. Offsets compare
// lexicographically (as the protocol orders them), the start sentinel "-1"
// before every real offset, then Skip decides. Meta is ignored.
//
// The positions one Reader delivers, across restarts on the same store,
// increase strictly in this order (a batch's last position is normalised to
// (next offset, 0)). Positions from different readers need not compare
// consistently: (offset, skip) names a message relative to where a read
// started, and two readers may start reads at different offsets. The "now"
// sentinel names no fixed place and must not be compared.
func (p Position) Compare(q Position) int {
	if p.Offset != q.Offset {
		switch {
		case p.Offset == string(OffsetStart):
			return -1
		case q.Offset == string(OffsetStart):
			return 1
		}
		return strings.Compare(p.Offset, q.Offset)
	}
	switch {
	case p.Skip < q.Skip:
		return -1
	case p.Skip > q.Skip:
		return 1
	}
	return 0
}

// Store loads and saves a Reader's positions by key (WithStore). The
// offsetstore package has a crash-safe file store and a memory store; the
// offsetstore/pgstore module keeps positions in Postgres. Implementations
// must be safe for concurrent use.
type Store interface {
	// Load returns the position saved under key; ok is false when none was.
	Load(ctx context.Context, key string) (pos Position, ok bool, err error)
	// Save records pos under key. When Save returns nil the position is as
	// durable as the implementation promises.
	Save(ctx context.Context, key string, pos Position) error
}

// EpochStore loads and saves the last epoch claimed by a Writer's
// idempotent producer (WithEpochStore), so that a restarted writer claims a
// higher one and fences its predecessor. Implementations must be safe for
// concurrent use.
type EpochStore interface {
	// LoadEpoch returns the epoch saved for producerID; ok is false when none
	// was.
	LoadEpoch(ctx context.Context, producerID string) (epoch int64, ok bool, err error)
	// SaveEpoch records epoch for producerID.
	SaveEpoch(ctx context.Context, producerID string, epoch int64) error
}
