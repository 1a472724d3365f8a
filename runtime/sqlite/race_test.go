//go:build race

package sqlite

// raceEnabled reports whether the race detector is on: it makes SQLite (Go
// code under modernc) many times slower and inflates memory.
const raceEnabled = true
