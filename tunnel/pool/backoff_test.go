package pool

import (
	"testing"
	"time"
)

// TestBackoff: the delay after the n-th failure is min·2^(n-1) capped at max,
// jittered into [0.5, 1.5)× of that, so never above 1.5×max; the jitter
// really spreads (edges cut off together must not retry in lockstep).
func TestBackoff(t *testing.T) {
	const lo, hi, samples = 10 * time.Millisecond, 80 * time.Millisecond, 2000
	for _, tc := range []struct {
		n    int
		base time.Duration
	}{
		{0, lo}, {1, lo}, {2, 2 * lo}, {3, 4 * lo}, {4, hi}, {5, hi}, {64, hi}, {1 << 20, hi},
	} {
		least, most := time.Duration(1<<62), time.Duration(0)
		for range samples {
			d := backoff(lo, hi, tc.n)
			least, most = min(least, d), max(most, d)
		}
		if least < tc.base/2 || most >= tc.base*3/2 {
			t.Errorf("backoff(n=%d) ranged over [%v, %v]; want within [%v, %v)", tc.n, least, most, tc.base/2, tc.base*3/2)
		}
		if most > hi*3/2 {
			t.Errorf("backoff(n=%d) = %v exceeds 1.5×max", tc.n, most)
		}
		// With 2000 uniform samples the extremes sit near the bounds.
		if least > tc.base*6/10 || most < tc.base*14/10 {
			t.Errorf("backoff(n=%d) jitter too narrow: [%v, %v] for base %v", tc.n, least, most, tc.base)
		}
	}

	// A MaxBackoff that is not a power-of-two multiple of MinBackoff is
	// still the cap.
	if d := backoff(time.Second, 1500*time.Millisecond, 10); d >= 2250*time.Millisecond || d < 750*time.Millisecond {
		t.Errorf("backoff(1s, 1.5s, 10) = %v; want within [750ms, 2.25s)", d)
	}
	// Huge max and n do not overflow into a negative delay.
	if d := backoff(time.Millisecond, time.Duration(1<<62), 200); d <= 0 {
		t.Errorf("backoff with a huge max = %v", d)
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := jitter(100 * time.Millisecond); d < 50*time.Millisecond || d >= 150*time.Millisecond {
			t.Fatalf("jitter(100ms) = %v; want within [50ms, 150ms)", d)
		}
	}
	if d := jitter(0); d != 0 {
		t.Errorf("jitter(0) = %v", d)
	}
}
