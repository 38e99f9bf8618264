//go:build race

package guard

// raceEnabled: under the race detector sync.Pool drops a quarter of what
// is put back, so allocation counts are not exact.
const raceEnabled = true
