package pool

import (
	"math/rand/v2"
	"time"
)

// backoff is the delay before reconnect attempt n+1 after n consecutive
// failures. The first attempt after a loss goes out at once; the next
// fast-1 wait lo each, because most losses are short (a relay restart, a
// NAT rebinding) and an edge that waits seconds for a relay that is already
// back fails requests for nothing. Past those, the delay is "full jitter"
// exponential: uniform in [0, min(hi, lo·2^k)) for the k-th slow attempt, so
// that many edges cut off by the same event spread their reconnects instead
// of arriving in waves.
func backoff(lo, hi time.Duration, fast, n int) time.Duration {
	switch {
	case n <= 0:
		return 0
	case n <= fast:
		return lo
	}
	d := lo
	for i := fast; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return time.Duration(rand.Int64N(int64(d)) + 1)
}
