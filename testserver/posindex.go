package testserver

import "sort"

// idxChunk is the number of positions per index chunk. Chunks are never
// re-allocated once full, so indexing millions of messages costs no large
// copies.
const idxChunk = 1 << 14

// posIndex is a sorted, append-only list of log positions stored in
// fixed-size chunks.
type posIndex struct {
	chunks [][]int64
	n      int
}

func (x *posIndex) len() int { return x.n }

func (x *posIndex) at(i int) int64 { return x.chunks[i/idxChunk][i%idxChunk] }

func (x *posIndex) last() (int64, bool) {
	if x.n == 0 {
		return 0, false
	}
	return x.at(x.n - 1), true
}

func (x *posIndex) add(v int64) {
	k := len(x.chunks)
	if k == 0 || len(x.chunks[k-1]) == idxChunk {
		c := idxChunk
		if k == 0 {
			c = 8 // most streams are small: the first chunk grows by append
		}
		x.chunks = append(x.chunks, make([]int64, 0, c))
		k++
	}
	x.chunks[k-1] = append(x.chunks[k-1], v)
	x.n++
}

// search returns the smallest index whose position is > pos (x.len() if
// none).
func (x *posIndex) after(pos int64) int {
	return sort.Search(x.n, func(i int) bool { return x.at(i) > pos })
}

// has reports whether pos is in the index.
func (x *posIndex) has(pos int64) bool {
	i := sort.Search(x.n, func(i int) bool { return x.at(i) >= pos })
	return i < x.n && x.at(i) == pos
}

// prefix returns a copy holding the positions <= pos.
func (x *posIndex) prefix(pos int64) posIndex {
	var out posIndex
	for i, n := 0, x.after(pos); i < n; i++ {
		out.add(x.at(i))
	}
	return out
}

// all returns the positions as one slice (for persistence records).
func (x *posIndex) all() []int64 {
	out := make([]int64, 0, x.n)
	for _, c := range x.chunks {
		out = append(out, c...)
	}
	return out
}
