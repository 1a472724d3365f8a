//go:build race

package remote_test

// raceEnabled: the conformance suite through JSON takes minutes under the
// race detector on a loaded machine; TestConcurrentCalls covers the client's
// locking there, and CI runs the suite without the race detector.
const raceEnabled = true
