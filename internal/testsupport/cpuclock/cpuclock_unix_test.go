//go:build unix

package cpuclock

import (
	"testing"
	"time"
)

// TestProcess: busy work shows as CPU time. The loop runs until the process
// clock has counted 10 ms of CPU, bounded by 10 s of wall time, so a loaded
// machine (which gives this goroutine a small share of a core) slows the
// test down instead of failing it; a clock that does not move fails.
func TestProcess(t *testing.T) {
	before := Process()
	x := 0
	for start := time.Now(); Process()-before < 10*time.Millisecond; x++ {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("10 s of busy work measured as %v of CPU (%d loops)", Process()-before, x)
		}
	}
}
