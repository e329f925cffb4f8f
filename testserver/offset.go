package testserver

import (
	"strconv"
)

// Offsets are "HHHHHHHHHHHHHHHH_PPPPPPPPPPPPPPPP": two zero-padded 16-digit
// decimal fields. The first is reserved (always zero today); the second is
// the byte position in the stream's logical log. Fixed width makes
// lexicographic order equal stream order, and every append adds at least
// one byte, so offsets handed out are strictly increasing.
const offsetLen = 33

// formatOffset renders a log position as an offset token.
func formatOffset(pos int64) string {
	var b [offsetLen]byte
	for i := 0; i < 16; i++ {
		b[i] = '0'
	}
	b[16] = '_'
	p := pos
	for i := offsetLen - 1; i > 16; i-- {
		b[i] = byte('0' + p%10)
		p /= 10
	}
	return string(b[:])
}

// parseOffset parses an offset token minted by formatOffset. It does not
// accept the sentinels -1 and now; callers handle those first.
func parseOffset(s string) (int64, bool) {
	if len(s) != offsetLen || s[16] != '_' {
		return 0, false
	}
	for i := 0; i < offsetLen; i++ {
		if i == 16 {
			continue
		}
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	if s[:16] != "0000000000000000" {
		return 0, false
	}
	n, err := strconv.ParseInt(s[17:], 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}
