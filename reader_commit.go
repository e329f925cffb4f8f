package durable

// The Reader's positions in its store: the one it starts from, and
// commits (by the caller, by interval, and on Close).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// commitState is what the Reader delivered, what the caller handled, and
// what is saved in the store. It is guarded by the Reader's mu.
type commitState struct {
	last         Position // last delivered position
	hasLast      bool
	pending      Position // last position returned by Next, not yet handled
	hasPending   bool
	handled      Position
	hasHandled   bool
	handledAhead bool // a Commit put handled past the last delivered position
	committed    Position
	hasCommit    bool
	meta         string
	lastSave     time.Time
}

// Commit records the message at pos (a Message's Position) as handled,
// with every message before it, and saves pos to the store, unless a
// position at or after it was already saved: a commit never moves the
// saved position backwards. Set pos.Meta first to save application data
// with it. Commit may be called from any goroutine; saves are serialised,
// and no other method of the Reader waits for the store while one runs.
// After Close it fails with ErrClosed.
func (r *Reader[T]) Commit(ctx context.Context, pos Position) error {
	if pos.Offset == "" || pos.Skip < 0 {
		return fmt.Errorf("%w: commit of an empty or negative position", ErrInvalidArgument)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	if r.commit.hasPending && pos.Compare(r.commit.pending) >= 0 {
		r.commit.hasPending = false
	}
	r.markHandledLocked(pos)
	if r.commit.hasLast && r.commit.handled.Compare(r.commit.last) > 0 {
		r.commit.handledAhead = true
	}
	r.commit.meta = pos.Meta
	r.mu.Unlock()
	return r.save(ctx, pos, true)
}

// markHandledLocked advances the handled position.
func (r *Reader[T]) markHandledLocked(p Position) {
	if !r.commit.hasHandled || p.Compare(r.commit.handled) > 0 {
		r.commit.handled, r.commit.hasHandled = Position{Offset: p.Offset, Skip: p.Skip}, true
	}
}

// save writes pos to the store unless a position at or after it is saved
// already. Saves are serialised by r.saving (so a later position is never
// overwritten by an earlier one), and r.mu is not held across the store's
// I/O. With wait false, save does nothing while another save runs (that
// one, or the next, will cover pos); with wait true it waits for its turn,
// or for ctx.
func (r *Reader[T]) save(ctx context.Context, pos Position, wait bool) error {
	if wait {
		select {
		case r.saving <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrCommit, ctx.Err())
		}
	} else {
		select {
		case r.saving <- struct{}{}:
		default:
			return nil
		}
	}
	defer func() { <-r.saving }()
	r.mu.Lock()
	done := r.commit.hasCommit && pos.Compare(r.commit.committed) <= 0
	r.mu.Unlock()
	if done {
		return nil
	}
	if r.cfg.store != nil {
		start := time.Now()
		err := r.cfg.store.Save(ctx, r.key, pos)
		r.c.cfg.hooks.onCommit(CommitEvent{Stream: streamOf(r.url), Key: r.key, Position: pos, Latency: time.Since(start), Err: err})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrCommit, err)
		}
	}
	r.mu.Lock()
	r.commit.committed, r.commit.hasCommit = pos, true
	r.commit.lastSave = time.Now()
	r.stats.Commits++
	r.mu.Unlock()
	return nil
}

// toSaveLocked returns the handled position when interval commits are on
// and it is ahead of the saved one.
func (r *Reader[T]) toSaveLocked() (Position, bool) {
	if r.cfg.commitInterval == 0 || !r.commit.hasHandled || (r.commit.hasCommit && r.commit.handled.Compare(r.commit.committed) <= 0) {
		return Position{}, false
	}
	pos := r.commit.handled
	pos.Meta = r.commit.meta
	return pos, true
}

// autoCommit saves the handled position in interval mode when it is ahead
// of the saved one and the interval has passed, or at once with force
// (about to wait for data, or at the end). Without force it does not wait
// for a save under way.
func (r *Reader[T]) autoCommit(ctx context.Context, force bool) error {
	r.mu.Lock()
	pos, ok := r.toSaveLocked()
	due := force || time.Since(r.commit.lastSave) >= r.cfg.commitInterval
	r.mu.Unlock()
	if !ok || !due {
		return nil
	}
	return r.save(ctx, pos, force)
}

// Close stops the Reader: a Next in progress returns ErrClosed, an
// open SSE connection is closed, the goroutines the Reader started are
// stopped, and in interval-commit mode the handled position is saved (its
// error is returned). ctx bounds Close: the save and the wait for
// goroutines end when it does (ctx's error is returned). Close does not
// close the stream on the server (see Client.CloseStream) nor the store.
// Calling it again does nothing and returns nil.
func (r *Reader[T]) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.closeCancel()
	pos, ok := r.toSaveLocked()
	read := Offset(r.reading.pos.Offset)
	r.mu.Unlock()
	if len(r.c.cfg.hooks.upToDate) > 0 {
		r.c.cfg.hooks.onUpToDate(UpToDateEvent{Stream: streamOf(r.url), Key: r.key, Offset: read, Closed: true})
	}
	var err error
	if ok {
		err = r.save(ctx, pos, true)
	}
	done := make(chan struct{})
	go func() {
		r.bg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = ctx.Err()
		}
	}
	return err
}

// start loads the position to start from.
func (r *Reader[T]) start(ctx context.Context) error {
	if r.cfg.store != nil {
		pos, ok, err := r.loadPosition(ctx)
		if err != nil {
			return fmt.Errorf("%w: load position %q: %w", ErrCommit, r.key, err)
		}
		if ok {
			r.reading.pos = Position{Offset: pos.Offset, Skip: pos.Skip}
			r.mu.Lock()
			r.commit.last, r.commit.hasLast = pos, true
			r.commit.handled, r.commit.hasHandled = pos, true
			r.commit.committed, r.commit.hasCommit = pos, true
			r.commit.meta = pos.Meta
			r.mu.Unlock()
			r.reading.saved = true
			r.reading.started = true
			return nil
		}
	}
	r.reading.pos = Position{Offset: string(r.cfg.start)}
	r.reading.started = true
	return nil
}

// loadPosition reads the saved position: under the Reader's key or, when the key
// is the default and nothing is saved under it, under the stream's full URL
// (the default key of earlier releases), so that an upgrade resumes instead
// of reading the stream again. Saves go to the Reader's key.
func (r *Reader[T]) loadPosition(ctx context.Context) (Position, bool, error) {
	pos, ok, err := r.cfg.store.Load(ctx, r.key)
	if err != nil || ok || r.cfg.key != "" {
		return pos, ok, err
	}
	return r.cfg.store.Load(ctx, r.url)
}

// storeKey is the default key of a Reader's position: the stream's path on
// its server, without scheme, host, port, user info or query, so that the
// same service resumes when it reaches the server by another name.
func storeKey(streamURL string) string {
	u, err := url.Parse(streamURL)
	if err != nil {
		return streamURL
	}
	return u.EscapedPath()
}

// rejected explains a 400 or 410 answer to the first read from a saved
// position: the server does not know the position (it is for another
// stream, or before the stream's retention). The Reader does not start
// over on its own: that would read the whole stream again.
func (r *Reader[T]) rejected(err error) error {
	var e *Error
	if !r.reading.saved || !errors.As(err, &e) || (e.Status != http.StatusBadRequest && e.Status != http.StatusGone) {
		return err
	}
	cp := *e
	cp.Err = fmt.Errorf("%w (offset %s under key %q): %w", ErrPositionRejected, r.reading.pos.Offset, r.key, e.Err)
	cp.hint = "remove the key from the store, or use another key, to read from the start"
	return &cp
}
