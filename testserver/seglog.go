package testserver

import "sort"

// segSize is the capacity of one log segment. Segments are never grown or
// copied once allocated, so appends cost O(bytes appended) with no large
// re-allocations, and readers may keep sub-slices without holding a lock.
const segSize = 4 << 20

// segLog is an append-only byte log stored in fixed segments. A record
// appended with reserve+write never straddles two segments unless it is
// larger than a segment (then it gets a segment of its own).
type segLog struct {
	segs   [][]byte
	starts []int64 // log position of each segment's first byte
	size   int64
}

func (l *segLog) len() int64 { return l.size }

// reserve makes sure the next n bytes land in one segment.
func (l *segLog) reserve(n int) {
	k := len(l.segs)
	if k > 0 {
		last := l.segs[k-1]
		if cap(last)-len(last) >= n {
			return
		}
		if cap(last) < segSize && len(last)+n <= segSize {
			// A small first segment grows by doubling up to segSize. Readers
			// holding sub-slices of the old array still see the same bytes.
			c := max(2*cap(last), len(last)+n)
			c = min(c, segSize)
			grown := make([]byte, len(last), c)
			copy(grown, last)
			l.segs[k-1] = grown
			return
		}
	}
	c := max(n, segSize)
	if k == 0 {
		c = max(n, 1024) // most streams are small: start small
	}
	l.segs = append(l.segs, make([]byte, 0, c))
	l.starts = append(l.starts, l.size)
}

// write appends p; callers reserve first so p fits the last segment.
func (l *segLog) write(p []byte) {
	if len(p) == 0 {
		return
	}
	l.reserve(len(p))
	k := len(l.segs) - 1
	l.segs[k] = append(l.segs[k], p...)
	l.size += int64(len(p))
}

func (l *segLog) writeByte(c byte) {
	l.reserve(1)
	k := len(l.segs) - 1
	l.segs[k] = append(l.segs[k], c)
	l.size++
}

// slice returns the bytes [a, b). It shares memory when the range lies in
// one segment and copies otherwise.
func (l *segLog) slice(a, b int64) []byte {
	if a >= b {
		return nil
	}
	i := l.segIndex(a)
	if off := a - l.starts[i]; b-l.starts[i] <= int64(len(l.segs[i])) {
		end := off + (b - a)
		return l.segs[i][off:end:end]
	}
	return l.appendRange(make([]byte, 0, b-a), a, b)
}

// appendRange appends the bytes [a, b) to dst.
func (l *segLog) appendRange(dst []byte, a, b int64) []byte {
	for i := l.segIndex(a); a < b && i < len(l.segs); i++ {
		seg := l.segs[i]
		off := a - l.starts[i]
		end := int64(len(seg))
		if lim := b - l.starts[i]; lim < end {
			end = lim
		}
		dst = append(dst, seg[off:end]...)
		a = l.starts[i] + end
	}
	return dst
}

// segIndex returns the segment holding position a (a < size).
func (l *segLog) segIndex(a int64) int {
	return sort.Search(len(l.starts), func(i int) bool { return l.starts[i] > a }) - 1
}
