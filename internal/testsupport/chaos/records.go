package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Event is one message a writer appends: the writer's ID, the producer
// epoch of the writer process that wrote it, and its sequence number in the
// writer's history (0, 1, 2, ... across restarts: a restarted writer resumes
// after the last sequence number it logged as acknowledged).
type Event struct {
	W string `json:"w"`
	E int64  `json:"e"`
	S int64  `json:"s"`
}

// AckRecord is one line of a writer's ack log: an event the Writer
// acknowledged, and the offset the acknowledgement reported (the stream's
// offset after the event's batch).
type AckRecord struct {
	W string `json:"w"`
	E int64  `json:"e"`
	S int64  `json:"s"`
	O string `json:"o"`
}

// HandledRecord is one line of a reader's handled log: the message's
// position after it (Offset, Skip) and the message itself.
type HandledRecord struct {
	Offset string          `json:"o"`
	Skip   int64           `json:"k"`
	M      json.RawMessage `json:"m"`
}

// Log is an append-only file of JSON lines. Every Append writes one line
// and fsyncs it before returning, so a line Append returned for survives a
// crash of the process (and of the machine, as far as fsync goes).
type Log struct {
	f    *os.File
	size int64
}

// OpenLog opens (creating) the log at path and truncates it to size bytes
// when size >= 0, or to its last complete line when size < 0. Truncation
// removes what a killed process wrote past its last commit.
func OpenLog(path string, size int64) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if size < 0 {
		_, size, err = readLines(f)
		if err != nil {
			f.Close()
			return nil, err
		}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if size > st.Size() {
		f.Close()
		return nil, fmt.Errorf("chaos: log %s is %d bytes, shorter than its committed length %d", path, st.Size(), size)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return &Log{f: f, size: size}, nil
}

// Append writes v as one JSON line, fsyncs, and returns the log's length
// after the line.
func (l *Log) Append(v any) (int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return l.size, err
	}
	b = append(b, '\n')
	n, err := l.f.Write(b)
	l.size += int64(n)
	if err != nil {
		return l.size, err
	}
	return l.size, l.f.Sync()
}

// Size returns the log's length in bytes.
func (l *Log) Size() int64 { return l.size }

// Close closes the log file.
func (l *Log) Close() error { return l.f.Close() }

// readLines returns the complete lines of r and their total length; a last
// line without its newline is left out.
func readLines(r io.Reader) ([][]byte, int64, error) {
	var (
		lines [][]byte
		n     int64
	)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return lines, n, nil
		}
		if err != nil {
			return nil, 0, err
		}
		n += int64(len(line))
		lines = append(lines, bytes.TrimSuffix(line, []byte("\n")))
	}
}

// ReadLog reads the complete JSON lines of the log at path into values of
// T. A missing file is an empty log. A torn last line (no newline) is
// reported in torn and left out; a line that does not decode is an error.
func ReadLog[T any](path string) (recs []T, torn bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	lines, n, err := readLines(f)
	if err != nil {
		return nil, false, err
	}
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	for i, line := range lines {
		var v T
		if err := json.Unmarshal(line, &v); err != nil {
			return nil, false, fmt.Errorf("chaos: %s line %d: %w", path, i+1, err)
		}
		recs = append(recs, v)
	}
	return recs, st.Size() != n, nil
}
