package pool

import (
	"testing"
	"time"
)

// TestBackoff: no delay before the first attempt, MinBackoff for the fast
// retries, then full jitter: uniform in (0, min·2^k] capped at max, really
// spread (edges cut off together must not retry in lockstep).
func TestBackoff(t *testing.T) {
	const lo, hi, fast, samples = 10 * time.Millisecond, 80 * time.Millisecond, 3, 2000
	for _, tc := range []struct {
		n      int
		ceil   time.Duration
		jitter bool
	}{
		{0, 0, false}, {1, lo, false}, {3, lo, false},
		{4, 2 * lo, true}, {5, 4 * lo, true}, {6, hi, true}, {64, hi, true}, {1 << 20, hi, true},
	} {
		least, most := time.Duration(1<<62), time.Duration(-1)
		for range samples {
			d := backoff(lo, hi, fast, tc.n)
			least, most = min(least, d), max(most, d)
		}
		if !tc.jitter {
			if least != tc.ceil || most != tc.ceil {
				t.Errorf("backoff(n=%d) ranged over [%v, %v]; want exactly %v", tc.n, least, most, tc.ceil)
			}
			continue
		}
		if least <= 0 || most > tc.ceil {
			t.Errorf("backoff(n=%d) ranged over [%v, %v]; want within (0, %v]", tc.n, least, most, tc.ceil)
		}
		if least > tc.ceil/10 || most < tc.ceil*9/10 {
			t.Errorf("backoff(n=%d) jitter too narrow: [%v, %v] for ceiling %v", tc.n, least, most, tc.ceil)
		}
	}
	// Huge max and n do not overflow into a negative delay.
	if d := backoff(time.Millisecond, time.Duration(1<<62), 3, 200); d <= 0 {
		t.Errorf("backoff with a huge max = %v", d)
	}
}
