//go:build race

package usage

// raceEnabled: under the race detector sync.Pool drops items on purpose,
// so pooled memory (encoding/json's scanners) is allocated again.
const raceEnabled = true
