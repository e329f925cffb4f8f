// Package jsonframe scans JSON without decoding it: Split cuts a JSON array
// into the byte spans of its elements (the Reader), and Valid / ValueEnd
// validate values exactly as encoding/json.Valid does (the Writer's message
// check, the testserver's append validation and array flattening).
//
// Split works in one pass without allocating beyond the caller's span slice.
// The splitter checks the array's structure: the opening and closing
// brackets, commas between elements, balanced brackets and braces inside
// elements, and terminated strings (escapes included). It does not check the
// content of scalars or object keys: "[tru]" splits into one element "tru".
// A caller that needs a fully valid element decodes it (json.Unmarshal
// validates) or checks it with json.Valid. If every span returned is valid
// JSON then the whole input is a valid JSON array.
package jsonframe

import (
	"fmt"
)

// Span is the half-open byte range [Start, End) of one element.
type Span struct{ Start, End int }

// SyntaxError reports input that is not a well-formed JSON array.
type SyntaxError struct {
	Offset int    // byte offset of the problem
	Msg    string // what was wrong
}

// Error implements error.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("jsonframe: %s at byte %d", e.Msg, e.Offset)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// Split appends the spans of the elements of the JSON array in data to dst
// and returns the extended slice. Spans exclude surrounding whitespace.
func Split(dst []Span, data []byte) ([]Span, error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return dst, &SyntaxError{Offset: i, Msg: "expected '['"}
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return dst, trailing(data, i+1)
	}
	for {
		start := i
		end, err := element(data, i)
		if err != nil {
			return dst, err
		}
		dst = append(dst, Span{Start: start, End: end})
		i = skipSpace(data, end)
		if i >= len(data) {
			return dst, &SyntaxError{Offset: i, Msg: "unterminated array"}
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case ']':
			return dst, trailing(data, i+1)
		default:
			return dst, &SyntaxError{Offset: i, Msg: fmt.Sprintf("unexpected %q after element", data[i])}
		}
	}
}

func trailing(data []byte, i int) error {
	if j := skipSpace(data, i); j != len(data) {
		return &SyntaxError{Offset: j, Msg: "data after the array"}
	}
	return nil
}

// element scans one value starting at data[i] (not whitespace) and returns
// the index just past it.
func element(data []byte, i int) (int, error) {
	if i >= len(data) {
		return i, &SyntaxError{Offset: i, Msg: "expected a value"}
	}
	switch data[i] {
	case '"':
		return str(data, i)
	case '{', '[':
		return nested(data, i)
	case ',', ']', '}', ':':
		return i, &SyntaxError{Offset: i, Msg: fmt.Sprintf("unexpected %q, expected a value", data[i])}
	}
	// A scalar: runs to the next structural character or whitespace.
	j := i
	for j < len(data) {
		switch c := data[j]; c {
		case ',', ']', '}', '[', '{', ':', '"', ' ', '\t', '\n', '\r':
			if c == '[' || c == '{' || c == ':' || c == '"' || c == '}' {
				return j, &SyntaxError{Offset: j, Msg: fmt.Sprintf("unexpected %q in a scalar", c)}
			}
			return j, nil
		}
		j++
	}
	return j, nil
}

// str scans a string starting at the quote data[i]; it returns the index
// past the closing quote.
func str(data []byte, i int) (int, error) {
	j := i + 1
	for j < len(data) {
		c := data[j]
		if c == '"' {
			return j + 1, nil
		}
		if c == '\\' {
			j += 2
			continue
		}
		if c < 0x20 {
			return j, &SyntaxError{Offset: j, Msg: "control character in a string"}
		}
		j++
	}
	return len(data), &SyntaxError{Offset: i, Msg: "unterminated string"}
}

// nested scans an object or array starting at data[i], checking that
// brackets and braces balance and strings terminate.
func nested(data []byte, i int) (int, error) {
	// A small fixed stack avoids allocation for the usual depths; deeper
	// values fall back to a heap stack.
	var small [64]byte
	stack := small[:0]
	j := i
	for j < len(data) {
		c := data[j]
		switch c {
		case '"':
			k, err := str(data, j)
			if err != nil {
				return k, err
			}
			j = k
			continue
		case '{', '[':
			stack = append(stack, c)
		case '}', ']':
			want := byte('{')
			if c == ']' {
				want = '['
			}
			if len(stack) == 0 || stack[len(stack)-1] != want {
				return j, &SyntaxError{Offset: j, Msg: fmt.Sprintf("unbalanced %q", c)}
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return j + 1, nil
			}
		}
		j++
	}
	return j, &SyntaxError{Offset: i, Msg: "unterminated value"}
}
