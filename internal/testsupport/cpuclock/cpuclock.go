// Package cpuclock measures the CPU time of the process, for benchmarks
// that report CPU per message beside wall time (steadier on a machine
// other work shares).
package cpuclock
