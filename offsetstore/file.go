package offsetstore

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// File is a [Store] and [EpochStore] kept in one file on disk. Open it with
// [OpenFile]; it is safe for concurrent use and must be closed with
// [File.Close].
//
// # Crash safety
//
// Every successful Save or SaveEpoch replaces the whole file atomically: the
// new content is written to a temporary file in the same directory, the
// temporary file is fsynced, renamed over the offset file, and the directory
// is fsynced. Therefore:
//
//   - When Save returns nil, the saved value (and every value saved before
//     it) survives a crash of the process or of the machine, provided the
//     filesystem and disk honour fsync.
//   - A crash at any instant (process killed, machine powered off) leaves the
//     file holding either its previous content or its new content, never a
//     mix; a torn or otherwise damaged file is detected by its checksum and
//     reported as [ErrCorrupt] when opened, never silently replaced.
//   - When Save returns an error the value may or may not have reached the
//     disk; it is kept in memory, returned by Load, and written by the next
//     successful save.
//
// Saves of different keys from many goroutines are coalesced: a save that
// arrives while a write is in progress waits for it and is then written
// together with all other pending saves in one write, so the fsync cost is
// shared.
//
// # Exclusive use
//
// OpenFile takes an exclusive lock (flock(2)) on a companion file named
// path+".lock", so a second File on the same path, in this process or
// another, is refused with [ErrLocked] until Close; the error names the
// holder's process ID, host and the time it took the lock, which the holder
// writes into the lock file. The lock file is left in place on Close
// (deleting it while a process holds it would let a second one in). On
// platforms without flock only opens within one process are detected.
type File struct {
	path   string
	unlock func() error

	sem chan struct{} // held while writing the file; serialises writers

	mu      sync.Mutex
	st      *state
	gen     uint64 // bumped by every change to st
	durable uint64 // st as of gen durable was last written to disk
	writes  uint64 // successful file writes, for tests
	closed  bool
}

// OpenFile opens the offset file at path, creating it on the first save if
// it does not exist. The directory must exist. It fails with a [*FileError]
// wrapping [ErrLocked] if another File holds path, [ErrCorrupt] if the file is
// damaged (including an empty file), or [ErrUnknownVersion] if it was written
// in a format this release does not read. It never discards an existing
// file. Temporary files left by a crash during a save are removed.
func OpenFile(path string) (*File, error) {
	if path == "" {
		return nil, &FileError{Op: "open", Path: path, Err: errors.New("empty path")}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &FileError{Op: "open", Path: path, Err: err}
	}
	unlock, err := lockPath(abs)
	if err != nil {
		return nil, &FileError{Op: "lock", Path: path, Err: err}
	}
	f := &File{path: path, unlock: unlock, sem: make(chan struct{}, 1)}
	st, err := readState(abs)
	if err != nil {
		_ = unlock()
		return nil, &FileError{Op: "open", Path: path, Err: err}
	}
	f.st = st
	removeTemps(abs)
	return f, nil
}

func readState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, err
	}
	return decodeState(b)
}

const tempInfix = ".tmp-"

// removeTemps deletes temporary files a crashed save may have left behind.
// The caller holds the lock, so no other File is writing them.
func removeTemps(path string) {
	dir, base := filepath.Split(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), base+tempInfix) && e.Type().IsRegular() {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// Path returns the path given to OpenFile.
func (f *File) Path() string { return f.path }

// Load returns the position saved under key.
func (f *File) Load(ctx context.Context, key string) (Position, bool, error) {
	if err := ValidateKey("key", key); err != nil {
		return Position{}, false, err
	}
	if err := ctx.Err(); err != nil {
		return Position{}, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return Position{}, false, ErrClosed
	}
	pos, ok := f.st.positions[key]
	return pos, ok, nil
}

// LoadEpoch returns the epoch saved for producerID.
func (f *File) LoadEpoch(ctx context.Context, producerID string) (int64, bool, error) {
	if err := ValidateKey("producer ID", producerID); err != nil {
		return 0, false, err
	}
	if err := ctx.Err(); err != nil {
		return 0, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, false, ErrClosed
	}
	e, ok := f.st.epochs[producerID]
	return e, ok, nil
}

// Save records pos under key and returns once it is durable on disk (see the
// crash-safety guarantee on [File]). It fails with [ErrInvalid] on an empty
// key, an empty offset, a negative skip or a string that is not valid UTF-8,
// with [ErrClosed] after Close, with ctx's error if ctx is done before the
// write starts, and with a [*FileError] if the write fails.
func (f *File) Save(ctx context.Context, key string, pos Position) error {
	if err := ValidateKey("key", key); err != nil {
		return err
	}
	if err := ValidatePosition(pos); err != nil {
		return err
	}
	return f.update(ctx, func(s *state) { s.positions[key] = pos })
}

// SaveEpoch records epoch for producerID and returns once it is durable on
// disk, with the same guarantee and errors as [File.Save].
func (f *File) SaveEpoch(ctx context.Context, producerID string, epoch int64) error {
	if err := ValidateKey("producer ID", producerID); err != nil {
		return err
	}
	if err := validateEpoch(epoch); err != nil {
		return err
	}
	return f.update(ctx, func(s *state) { s.epochs[producerID] = epoch })
}

// update applies change in memory, then makes it durable, sharing one write
// with every other change pending at the time (group commit).
func (f *File) update(ctx context.Context, change func(*state)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	change(f.st)
	f.gen++
	mine := f.gen
	f.mu.Unlock()

	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-f.sem }()

	f.mu.Lock()
	if f.durable >= mine {
		// Another goroutine wrote our change while we waited.
		f.mu.Unlock()
		return nil
	}
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	content, err := encodeState(f.st)
	gen := f.gen
	f.mu.Unlock()
	if err != nil {
		return &FileError{Op: "save", Path: f.path, Err: err}
	}
	if err := writeAtomic(f.path, content); err != nil {
		return &FileError{Op: "save", Path: f.path, Err: err}
	}
	f.mu.Lock()
	f.durable = gen
	f.writes++
	f.mu.Unlock()
	return nil
}

// writeAtomic replaces path with content: write a temporary file in the same
// directory, fsync it, rename it over path, fsync the directory.
func writeAtomic(path string, content []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+tempInfix+"*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(content); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// Close waits for a write in progress, then releases the lock. Later calls
// return [ErrClosed]; Close itself is idempotent and returns nil when called
// again.
func (f *File) Close() error {
	f.sem <- struct{}{} // wait for any write in progress
	defer func() { <-f.sem }()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	if err := f.unlock(); err != nil {
		return &FileError{Op: "close", Path: f.path, Err: err}
	}
	return nil
}
