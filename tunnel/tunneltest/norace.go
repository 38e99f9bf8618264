//go:build !race

package tunneltest

// raceEnabled scales heavy cases down: the race detector slows data
// movement through TLS and the multiplexers about tenfold.
const raceEnabled = false
