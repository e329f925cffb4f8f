package hostile

import (
	"io"
	"strings"
)

// blockMin is the least size of a pattern reader's pre-expanded block.
const blockMin = 8 << 10

// patternReader yields a pattern repeated, n bytes in all (endless when n
// is negative), from one small pre-expanded block: memory use does not
// depend on n.
type patternReader struct {
	block []byte // the pattern repeated, whole copies, >= blockMin bytes
	plen  int
	off   int   // position within the pattern
	left  int64 // bytes still to yield; < 0 = endless
}

func newPattern(pattern string, n int64) *patternReader {
	if pattern == "" {
		panic("hostile: empty pattern")
	}
	copies := (blockMin + len(pattern) - 1) / len(pattern)
	return &patternReader{
		block: []byte(strings.Repeat(pattern, copies+1)),
		plen:  len(pattern),
		left:  n,
	}
}

// Read fills p with the next bytes of the pattern.
func (r *patternReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if r.left > 0 && int64(len(p)) > r.left {
		p = p[:r.left]
	}
	total := 0
	for len(p) > 0 {
		n := copy(p, r.block[r.off:])
		r.off = (r.off + n) % r.plen
		p = p[n:]
		total += n
	}
	if r.left > 0 {
		r.left -= int64(total)
	}
	return total, nil
}

// concat joins literal strings and readers into one reader.
func concat(parts ...any) io.Reader {
	rs := make([]io.Reader, 0, len(parts))
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			rs = append(rs, strings.NewReader(v))
		case io.Reader:
			rs = append(rs, v)
		default:
			panic("hostile: concat takes strings and readers")
		}
	}
	return io.MultiReader(rs...)
}
