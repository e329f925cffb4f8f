package testserver

import (
	"reflect"
	"testing"
)

func TestPosIndex(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 9, idxChunk, idxChunk + 1, 3*idxChunk + 7} {
		var x posIndex
		want := make([]int64, 0, n)
		for i := 0; i < n; i++ {
			v := int64(i*3 + 2) // 2, 5, 8, ...
			x.add(v)
			want = append(want, v)
		}
		if x.len() != n || !reflect.DeepEqual(x.all(), want) {
			t.Fatalf("n=%d: len %d", n, x.len())
		}
		for _, tc := range []struct {
			pos   int64
			after int
			has   bool
		}{
			{0, 0, false}, {2, 1, n > 0}, {3, 1, false}, {int64(3*n - 1), n, n > 0}, {int64(3 * n), n, false},
		} {
			if tc.pos == 3 && n == 0 || tc.pos == 2 && n == 0 {
				tc.after = 0
			}
			if got := x.after(tc.pos); got != tc.after {
				t.Fatalf("n=%d after(%d) = %d, want %d", n, tc.pos, got, tc.after)
			}
			if got := x.has(tc.pos); got != tc.has {
				t.Fatalf("n=%d has(%d) = %v", n, tc.pos, got)
			}
		}
		p := x.prefix(int64(3*(n/2) + 2))
		if n > 0 && (p.len() != n/2+1 || !reflect.DeepEqual(p.all(), want[:n/2+1])) {
			t.Fatalf("n=%d prefix: %d entries", n, p.len())
		}
		if last, ok := x.last(); ok != (n > 0) || (ok && last != want[n-1]) {
			t.Fatalf("n=%d last %d %v", n, last, ok)
		}
	}
}
