package tunneltest

import (
	"sync/atomic"
	"testing"
	"time"
)

// Clock is a clock that moves only when told (Advance), safe for
// concurrent use: pass its Now where a listener takes a clock. The zero
// Clock stands at a fixed instant.
type Clock struct{ offset atomic.Int64 }

// Now is the fixed instant plus every Advance so far.
func (c *Clock) Now() time.Time {
	return time.Unix(1_700_000_000, 0).Add(time.Duration(c.offset.Load()))
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// AwaitCount waits until count reports want and fails if it does not in
// time or goes past it: a listener counts an event from a goroutine of its
// own, possibly after the client has seen its end.
func AwaitCount(tb testing.TB, what string, count func() uint64, want uint64) {
	tb.Helper()
	deadline := time.Now().Add(opTimeout)
	for count() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := count(); n != want {
		tb.Fatalf("%s = %d, want %d", what, n, want)
	}
}
