package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/durablego/durable/offsetstore"
)

// logStore is the reader's offset store: an offsetstore.File that checks
// every position the Reader saves. The reader commits each message with
// Position.Meta set to the length of the handled log just after that
// message's line, so the position and the log length are saved in one
// atomic write: that is what lets a restarted reader drop a log line it
// wrote but never committed (see package chaos). A save of a position for
// which no line was written, or with another length, is refused: it would
// commit a message that was not handled.
type logStore struct {
	*offsetstore.File

	mu    sync.Mutex
	saved offsetstore.Position // the last position saved (or loaded at startup)
	lens  map[[2]string]int64  // position -> handled log length after its line
}

func posKey(p offsetstore.Position) [2]string {
	return [2]string{p.Offset, strconv.FormatInt(p.Skip, 10)}
}

// handled records that the log is n bytes long once the message at pos is
// in it.
func (s *logStore) handled(pos offsetstore.Position, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lens[posKey(pos)] = n
}

// Save saves pos after checking its Meta against the handled log.
func (s *logStore) Save(ctx context.Context, key string, pos offsetstore.Position) error {
	s.mu.Lock()
	n, ok := s.lens[posKey(pos)]
	want := strconv.FormatInt(n, 10)
	if !ok && posKey(pos) == posKey(s.saved) {
		ok, want = true, s.saved.Meta
	}
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("chaos: the reader saved position %s+%d, which no handled message has", pos.Offset, pos.Skip)
	}
	if pos.Meta != want {
		return fmt.Errorf("chaos: the reader saved position %s+%d with meta %q, want the handled log length %s", pos.Offset, pos.Skip, pos.Meta, want)
	}
	if err := s.File.Save(ctx, key, pos); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.lens, posKey(pos))
	s.saved = pos
	s.mu.Unlock()
	return nil
}

// openLogStore opens the offset file at path and returns the store, the
// saved position (ok false when none) and the committed handled log length.
func openLogStore(ctx context.Context, path, key string) (*logStore, offsetstore.Position, bool, int64, error) {
	f, err := offsetstore.OpenFile(path)
	if err != nil {
		return nil, offsetstore.Position{}, false, 0, err
	}
	pos, ok, err := f.Load(ctx, key)
	if err != nil {
		f.Close()
		return nil, offsetstore.Position{}, false, 0, err
	}
	var n int64
	if ok {
		if n, err = strconv.ParseInt(pos.Meta, 10, 64); err != nil || n < 0 {
			f.Close()
			return nil, offsetstore.Position{}, false, 0, fmt.Errorf("chaos: saved position %s+%d has no handled log length (meta %q)", pos.Offset, pos.Skip, pos.Meta)
		}
	}
	return &logStore{File: f, saved: pos, lens: map[[2]string]int64{}}, pos, ok, n, nil
}
