// Package offsetstore persists reader positions and writer producer epochs.
//
// A [Store] maps a key (typically a stream URL or a consumer name) to a
// [Position]; an [EpochStore] maps a producer ID to the last epoch it claimed.
// Two implementations are provided:
//
//   - [Memory]: process-local, for tests and for readers that do not need to
//     survive a restart.
//   - [File]: every key in one versioned, checksummed JSON file that is
//     replaced atomically on each save, so that a crash at any instant leaves
//     either the previous or the new content. See [OpenFile] for the exact
//     guarantee.
//
// The interfaces and the Position type are the root package's (the
// consumer of stores defines them); this package provides implementations.
package offsetstore

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/durablego/durable"
)

// Position is the position a Store saves (durable.Position): a server
// offset, how many messages or bytes past it were handled, and opaque
// application data.
type Position = durable.Position

// Store loads and saves positions by key (durable.Store).
type Store = durable.Store

// EpochStore loads and saves producer epochs (durable.EpochStore).
type EpochStore = durable.EpochStore

// Sentinel errors. Test for them with [errors.Is]; errors about a file are
// returned as a [*FileError] that carries the path and wraps one of these.
var (
	// ErrCorrupt reports an offset file that is not a well-formed file of a
	// known version: truncated, garbled, edited by hand (checksum mismatch),
	// or empty. The store refuses to open it rather than silently start over.
	ErrCorrupt = errors.New("offsetstore: corrupt offset file")
	// ErrUnknownVersion reports an offset file written with a format version
	// this package does not understand (for example by a newer release).
	ErrUnknownVersion = errors.New("offsetstore: unknown offset file version")
	// ErrLocked reports that another File (in this or another process) holds
	// the offset file open. The error wrapping it names the holder when
	// known: the process that holds the lock records its process ID, host
	// and start time in the lock file.
	ErrLocked = errors.New("offsetstore: offset file is locked")
	// ErrClosed reports a call on a closed File.
	ErrClosed = errors.New("offsetstore: store is closed")
	// ErrInvalid reports an invalid argument: an empty key or producer ID, an
	// empty offset, a negative skip or epoch, or a string that is not valid
	// UTF-8.
	ErrInvalid = errors.New("offsetstore: invalid argument")
)

// FileError is an error about an offset file. It wraps one of the sentinel
// errors (or an operating-system error) and names the file.
type FileError struct {
	Op   string // "open", "load", "save", "lock", ...
	Path string // the offset file's path
	Err  error  // the cause; errors.Is works through it
}

// Error implements error.
func (e *FileError) Error() string {
	return "offsetstore: " + e.Op + " " + e.Path + ": " + strings.TrimPrefix(e.Err.Error(), "offsetstore: ")
}

// Unwrap returns the cause.
func (e *FileError) Unwrap() error { return e.Err }

// ValidateKey returns an error wrapping [ErrInvalid] when key is not a
// valid key: empty or not valid UTF-8. what names the key in the message
// ("key", "producer ID"). Stores of this package and others (pgstore)
// check their arguments with it, so that an argument error is the same
// whatever the store.
func ValidateKey(what, key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalid, what)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	return nil
}

// ValidatePosition returns an error wrapping [ErrInvalid] when pos cannot
// be saved: an empty offset, a negative skip, or an offset or meta that is
// not valid UTF-8.
func ValidatePosition(pos Position) error {
	switch {
	case pos.Offset == "":
		return fmt.Errorf("%w: empty offset", ErrInvalid)
	case !utf8.ValidString(pos.Offset):
		return fmt.Errorf("%w: offset is not valid UTF-8", ErrInvalid)
	case pos.Skip < 0:
		return fmt.Errorf("%w: negative skip %d", ErrInvalid, pos.Skip)
	case !utf8.ValidString(pos.Meta):
		return fmt.Errorf("%w: meta is not valid UTF-8", ErrInvalid)
	}
	return nil
}

func validateEpoch(epoch int64) error {
	if epoch < 0 {
		return fmt.Errorf("%w: negative epoch %d", ErrInvalid, epoch)
	}
	return nil
}

// Compile-time interface checks.
var (
	_ Store      = (*Memory)(nil)
	_ EpochStore = (*Memory)(nil)
	_ Store      = (*File)(nil)
	_ EpochStore = (*File)(nil)
)
