package testserver

import (
	"encoding/json"
	"errors"
)

var (
	errInvalidJSON = errors.New("invalid JSON")
	errEmptyArray  = errors.New("empty JSON array")
)

// splitJSON validates body as one JSON value and returns the messages it
// stores: the elements of a top-level array (one level of flattening), or
// the value itself. Messages are sub-slices of body with surrounding
// whitespace trimmed. allowEmpty permits "[]" (a PUT creating an empty
// stream); otherwise an empty array is errEmptyArray.
func splitJSON(body []byte, allowEmpty bool) ([][]byte, error) {
	if !json.Valid(body) {
		return nil, errInvalidJSON
	}
	v := trimSpace(body)
	if len(v) == 0 || v[0] != '[' {
		return [][]byte{v}, nil
	}
	inner := v[1 : len(v)-1]
	if len(trimSpace(inner)) == 0 {
		if allowEmpty {
			return nil, nil
		}
		return nil, errEmptyArray
	}
	msgs := make([][]byte, 0, 8)
	depth, start := 0, 0
	inStr, esc := false, false
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		case ',':
			if depth == 0 {
				msgs = append(msgs, trimSpace(inner[start:i]))
				start = i + 1
			}
		}
	}
	msgs = append(msgs, trimSpace(inner[start:]))
	return msgs, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}
