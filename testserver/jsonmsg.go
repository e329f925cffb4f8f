package testserver

import (
	"errors"

	"github.com/durablego/durable/internal/jsonframe"
)

var (
	errInvalidJSON = errors.New("invalid JSON")
	errEmptyArray  = errors.New("empty JSON array")
)

// splitJSON validates body as exactly one JSON value (RFC 8259 grammar, as
// encoding/json.Valid accepts it) and returns the messages it stores: the
// elements of a top-level array (one level of flattening), or the value
// itself. Messages are sub-slices of body without surrounding whitespace.
// allowEmpty permits "[]" (a PUT creating an empty stream); otherwise an
// empty array is errEmptyArray. Validation and splitting are one pass.
func splitJSON(body []byte, allowEmpty bool) ([][]byte, error) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '[' {
		end := jsonframe.ValueEnd(body, i, jsonframe.MaxDepth)
		if end < 0 || skipSpace(body, end) != len(body) {
			return nil, errInvalidJSON
		}
		return [][]byte{body[i:end]}, nil
	}
	var msgs [][]byte
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == ']' {
		i++
	} else {
		for {
			// Elements sit one level down: the array counts toward the depth.
			end := jsonframe.ValueEnd(body, i, jsonframe.MaxDepth-1)
			if end < 0 {
				return nil, errInvalidJSON
			}
			msgs = append(msgs, body[i:end])
			i = skipSpace(body, end)
			if i >= len(body) {
				return nil, errInvalidJSON
			}
			if body[i] == ']' {
				i++
				break
			}
			if body[i] != ',' {
				return nil, errInvalidJSON
			}
			i = skipSpace(body, i+1)
		}
	}
	if skipSpace(body, i) != len(body) {
		return nil, errInvalidJSON
	}
	if len(msgs) == 0 && !allowEmpty {
		return nil, errEmptyArray
	}
	return msgs, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
