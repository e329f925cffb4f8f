package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// inputBatch is a group of messages read from the input, or the error that
// ended the input (io.EOF at its end).
type inputBatch struct {
	msgs [][]byte
	err  error
}

// readJSONLines reads r as one JSON message per line and sends the messages
// to out in batches: after a line arrives, every further complete line that is
// already buffered joins the batch (up to maxBytes), so a fast producer is
// sent in few requests and a slow one without delay. Blank lines are skipped;
// a line that is not one valid JSON value ends the input with an error naming
// it. The last batch carries io.EOF (or the error). done stops the reader
// early.
func readJSONLines(r io.Reader, maxBytes int, out chan<- inputBatch, done <-chan struct{}) {
	defer close(out)
	br := bufio.NewReaderSize(r, 64<<10)
	line := 0
	var batch [][]byte
	size := 0
	send := func(err error) bool {
		select {
		case out <- inputBatch{msgs: batch, err: err}:
			batch, size = nil, 0
			return true
		case <-done:
			return false
		}
	}
	for {
		b, err := readLine(br, maxBytes)
		line++
		if len(b) > 0 {
			if err == nil || errors.Is(err, io.EOF) {
				if verr := validJSONMessage(b); verr != nil {
					send(&lineError{line: line, err: verr})
					return
				}
				batch = append(batch, b)
				size += len(b) + 1
			}
		}
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				err = &lineError{line: line, err: err}
			}
			send(err)
			return
		}
		// More complete lines already here? Then keep filling the batch.
		if len(batch) > 0 && (size >= maxBytes || !lineBuffered(br)) {
			if !send(nil) {
				return
			}
		}
	}
}

// lineError reports a stdin line append cannot send: not one JSON value, or
// too long.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("stdin line %d %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

var errLineTooLong = errors.New("is longer than --max-batch-bytes")

// readLine returns the next line without its line ending, trimmed of blanks
// (a blank line is returned empty). It fails with errLineTooLong for a line
// longer than maxBytes.
func readLine(br *bufio.Reader, maxBytes int) ([]byte, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > maxBytes+2 { // allow for "\r\n"
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) > maxBytes {
			return nil, errLineTooLong
		}
		return line, err
	}
}

// lineBuffered reports whether a complete line is already buffered.
func lineBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.IndexByte(b, '\n') >= 0
}

// errNotJSON reports a message that is not exactly one JSON value.
var errNotJSON = errors.New("is not one JSON value")

// validJSONMessage checks that b is exactly one JSON value; the error says
// what is wrong (the JSON syntax error).
func validJSONMessage(b []byte) error {
	if json.Valid(b) {
		return nil
	}
	var v json.RawMessage
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("%w (%v)", errNotJSON, err)
	}
	return errNotJSON
}

// readChunks reads r (a byte stream) and sends what each read returns, up to
// maxBytes, as one message: a pipe delivers data as it is written, a file in
// maxBytes pieces.
func readChunks(r io.Reader, maxBytes int, out chan<- inputBatch, done <-chan struct{}) {
	defer close(out)
	for {
		buf := make([]byte, maxBytes)
		n, err := r.Read(buf)
		var b inputBatch
		if n > 0 {
			b.msgs = [][]byte{buf[:n]}
		}
		b.err = err
		if n == 0 && err == nil {
			continue
		}
		select {
		case out <- b:
		case <-done:
			return
		}
		if err != nil {
			return
		}
	}
}

// jsonBatch frames JSON messages as one append body: a JSON array with one
// element per message. The server stores each element as a message, so a
// message that is itself an array stays one message.
func jsonBatch(msgs [][]byte) ([]byte, error) {
	n := 2
	for _, m := range msgs {
		n += len(m) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, m := range msgs {
		if err := validJSONMessage(m); err != nil {
			return nil, err
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, m...)
	}
	return append(out, ']'), nil
}
