//go:build race

package durable

// raceEnabled: the race detector slows byte-at-a-time I/O about tenfold,
// so the largest hostile workloads are scaled down under it.
const raceEnabled = true
