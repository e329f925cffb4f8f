//go:build !race

package durable

// raceEnabled: see reliability_race_test.go.
const raceEnabled = false
