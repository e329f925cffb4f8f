//go:build unix

package cpuclock

import (
	"testing"
	"time"
)

// TestProcess: busy work shows as CPU time.
func TestProcess(t *testing.T) {
	before := Process()
	x := 0
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
		x++
	}
	if after := Process(); after-before < 10*time.Millisecond {
		t.Fatalf("50 ms of busy work measured as %v of CPU (%d loops)", after-before, x)
	}
}
