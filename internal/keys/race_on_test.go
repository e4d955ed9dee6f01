//go:build race

package keys

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// code that pools its buffers allocates under it.
const raceEnabled = true
