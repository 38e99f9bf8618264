//go:build race

package llmapi

// raceEnabled: under the race detector sync.Pool drops items on purpose,
// so pooled memory (encoding/json's scanner in json.Valid) is allocated
// again.
const raceEnabled = true
