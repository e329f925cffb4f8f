package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/durablego/durable/offsetstore"
)

// outputMeta is what tail saves in Position.Meta when it writes to an
// output file: which file, and how long it was when the position was saved.
type outputMeta struct {
	Output string `json:"output"` // absolute path of the output file
	Length int64  `json:"length"` // its length in bytes at the saved position
}

func (m outputMeta) encode() string {
	b, _ := json.Marshal(m) // cannot fail: a string and an integer
	return string(b)
}

func decodeOutputMeta(s string) (outputMeta, error) {
	var m outputMeta
	if err := json.Unmarshal([]byte(s), &m); err != nil || m.Output == "" || m.Length < 0 {
		return outputMeta{}, fmt.Errorf("saved position has no valid output record (%q)", s)
	}
	return m, nil
}

// checkpoint keeps the tail's output and its saved position in step.
//
// Without an output file, lines go to stdout and each is followed by a save
// of its position (when there is a store): a process killed between the two
// repeats at most that last line when restarted.
//
// With an output file the order for every group of messages is: write them
// to the file, fsync it, then save the position after the last one together
// with the file's new length (in Position.Meta). A restart first truncates
// the file to the saved length, which removes exactly what was written after
// the last saved position, and reads again from that position. So a process
// killed at any instant and restarted with the same files yields every
// message in the file exactly once.
type checkpoint struct {
	store *offsetstore.File // nil: no offset file
	key   string
	// save saves a position under key (default: store.Save); tail saves
	// through its Reader.
	save func(ctx context.Context, pos offsetstore.Position) error

	out     *os.File // nil: stdout
	outPath string
	w       *bufio.Writer // buffers out (or stdout)
	length  int64         // bytes of out, written and pending

	pos     offsetstore.Position // position after the last message written
	saved   offsetstore.Position // last position saved
	pending int                  // messages written since the last save
	written int64                // messages written in all
}

// errOutputMismatch reports an output file that does not match its saved
// record; tail refuses to touch it.
var errOutputMismatch = errors.New("output file does not match the offset file")

// openOutput opens (creating if needed) the output file and brings it in
// step with pos, the saved position (ok false: none saved yet). It returns
// the position to save before anything is written when none was saved.
func (c *checkpoint) openOutput(path string, pos offsetstore.Position, ok bool) (cut int64, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return 0, err
	}
	c.outPath = abs
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, err
	}
	size := st.Size()
	if ok {
		m, err := decodeOutputMeta(pos.Meta)
		if err != nil {
			f.Close()
			return 0, fmt.Errorf("%w: %v (the offset file was written without --output?)", errOutputMismatch, err)
		}
		if m.Output != abs {
			f.Close()
			return 0, fmt.Errorf("%w: it records output %s, not %s", errOutputMismatch, m.Output, abs)
		}
		if size < m.Length {
			f.Close()
			return 0, fmt.Errorf("%w: %s is %d bytes, shorter than the %d recorded: it was changed by something else", errOutputMismatch, abs, size, m.Length)
		}
		if size > m.Length {
			// Written after the last saved position: cut it off, it will
			// be read and written again.
			if err := f.Truncate(m.Length); err != nil {
				f.Close()
				return 0, err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return 0, err
			}
			cut = size - m.Length
			size = m.Length
		}
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return 0, err
	}
	c.out = f
	c.length = size
	c.w = bufio.NewWriterSize(f, 64<<10)
	return cut, nil
}

// meta returns the Meta to save with the current position.
func (c *checkpoint) meta() string {
	if c.out == nil {
		return ""
	}
	return outputMeta{Output: c.outPath, Length: c.length}.encode()
}

// write writes one message (already framed as its output bytes) and records
// pos as the position after it.
func (c *checkpoint) write(b []byte, pos offsetstore.Position) error {
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	c.length += int64(len(b))
	c.pos = pos
	c.pending++
	c.written++
	return nil
}

// commit makes everything written durable (output file) or visible (stdout)
// and then saves the position after it. Nothing to do when nothing was
// written since the last commit.
func (c *checkpoint) commit(ctx context.Context) error {
	if c.pending == 0 {
		return nil
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	if c.out != nil {
		if err := c.out.Sync(); err != nil {
			return err
		}
	}
	if c.store != nil {
		p := c.pos
		p.Meta = c.meta()
		save := c.save
		if save == nil {
			save = func(ctx context.Context, p offsetstore.Position) error { return c.store.Save(ctx, c.key, p) }
		}
		if err := save(ctx, p); err != nil {
			return err // pending stays: the next commit saves again
		}
		c.saved = p
	}
	c.pending = 0
	return nil
}

// saveStart saves the starting position before anything is written, so that
// a restart resumes from exactly there (and, with an output file, knows the
// file's length before this tail began).
func (c *checkpoint) saveStart(ctx context.Context, pos offsetstore.Position) error {
	c.pos = pos
	if c.store == nil {
		return nil
	}
	pos.Meta = c.meta()
	if err := c.store.Save(ctx, c.key, pos); err != nil {
		return err
	}
	c.saved = pos
	return nil
}

// close releases the output file.
func (c *checkpoint) close() error {
	if c.out == nil {
		return nil
	}
	err := c.out.Close()
	c.out = nil
	return err
}
