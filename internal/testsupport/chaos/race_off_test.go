//go:build chaos && !race

package chaos

// raceEnabled reports whether the supervisor runs under -race; the server
// and worker binaries are then built with -race too.
const raceEnabled = false
