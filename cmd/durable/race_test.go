//go:build race

package main

// raceEnabled makes TestMain build the CLI binary with the race detector too,
// so the goroutines of the commands are checked in the end-to-end tests.
const raceEnabled = true
