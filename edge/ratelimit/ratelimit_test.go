package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

// clock is a manual clock: tests step it instead of sleeping.
type clock struct{ t time.Time }

func (c *clock) now() time.Time         { return c.t }
func (c *clock) step(d time.Duration)   { c.t = c.t.Add(d) }
func newClock() *clock                  { return &clock{t: time.Unix(1_700_000_000, 0)} }
func approx(a, b time.Duration) bool    { return a-b < 10*time.Millisecond && b-a < 10*time.Millisecond }
func take(l *Limiter, n int64) Decision { return l.Take("k", 60, 1000, n) }
func mustOK(t *testing.T, d Decision) {
	t.Helper()
	if !d.OK {
		t.Fatalf("refused: %+v", d)
	}
}
func mustRefuse(t *testing.T, d Decision) {
	t.Helper()
	if d.OK {
		t.Fatalf("allowed: %+v", d)
	}
}

func TestRequestsPerMinute(t *testing.T) {
	c := newClock()
	l := New(c.now)
	for range 60 {
		mustOK(t, take(l, 1))
	}
	d := take(l, 1)
	mustRefuse(t, d)
	if d.Limit != "requests" || !approx(d.RetryAfter, time.Second) || d.Requests.Remaining != 0 || d.Requests.Limit != 60 {
		t.Fatalf("decision %+v", d)
	}
	c.step(time.Second) // one request refills per second at 60/min
	mustOK(t, take(l, 1))
	mustRefuse(t, take(l, 1))
}

func TestTokensPerMinuteAndCorrection(t *testing.T) {
	c := newClock()
	l := New(c.now)
	mustOK(t, take(l, 900))
	d := take(l, 200)
	mustRefuse(t, d)
	if d.Limit != "tokens" || !approx(d.RetryAfter, 6*time.Second) { // 100 short at 1000/60 per second
		t.Fatalf("decision %+v", d)
	}
	l.Adjust("k", -500) // the response used 500 fewer than estimated
	mustOK(t, take(l, 200))
	l.Adjust("k", 2000) // far more than estimated: the client owes tokens
	d = take(l, 1)
	mustRefuse(t, d)
	if d.Tokens.Remaining != 0 || d.RetryAfter < time.Minute {
		t.Fatalf("debt not enforced: %+v", d)
	}
	c.step(2 * time.Minute)
	mustOK(t, take(l, 1))
}

func TestHugeRequestPassesWhenFull(t *testing.T) {
	l := New(newClock().now)
	mustOK(t, take(l, 5000)) // larger than the bucket: allowed once full
	mustRefuse(t, take(l, 1))
}

func TestUnlimitedAndSeparateClients(t *testing.T) {
	l := New(newClock().now)
	for range 1000 {
		mustOK(t, l.Take("free", 0, 0, 1e6))
	}
	for range 2 {
		mustOK(t, l.Take("a", 2, 0, 0))
	}
	mustRefuse(t, l.Take("a", 2, 0, 0))
	mustOK(t, l.Take("b", 2, 0, 0))
}

func TestLimitChangeKeepsUsage(t *testing.T) {
	l := New(newClock().now)
	for range 5 {
		mustOK(t, l.Take("a", 10, 0, 0))
	}
	for range 5 {
		mustOK(t, l.Take("a", 20, 0, 0)) // raised: 15 left, not 20
	}
	for range 10 {
		mustOK(t, l.Take("a", 20, 0, 0))
	}
	mustRefuse(t, l.Take("a", 20, 0, 0))
}

func TestForgetsIdleClients(t *testing.T) {
	c := newClock()
	l := New(c.now)
	l.maxClients = 2
	mustOK(t, l.Take("ip1", 1, 0, 0))
	mustOK(t, l.Take("ip2", 1, 0, 0))
	c.step(time.Minute)
	mustOK(t, l.Take("ip3", 1, 0, 0))
	if len(l.m) != 1 {
		t.Fatalf("%d clients kept, want only ip3", len(l.m))
	}
}

// TestClientsAreBounded: a client rotating its source address (IPv6 gives
// plenty) faster than buckets refill used to grow the per-IP limiter
// without bound. Past maxClients the client seen the longest ago goes,
// while the ones seen lately keep their limits.
func TestClientsAreBounded(t *testing.T) {
	l := New(newClock().now) // time stands still: no bucket refills
	l.maxClients = 100
	mustOK(t, l.Take("old", 1, 0, 0))
	for i := range 3 * l.maxClients {
		mustOK(t, l.Take(fmt.Sprint("rotating-", i), 1, 0, 0)) // new clients are never refused
		if i == 2*l.maxClients {
			mustOK(t, l.Take("recent", 1, 0, 0))
		}
	}
	if len(l.m) > l.maxClients || l.lru.Len() != len(l.m) {
		t.Fatalf("%d clients held (%d in the recency list), want at most %d", len(l.m), l.lru.Len(), l.maxClients)
	}
	mustRefuse(t, l.Take("recent", 1, 0, 0)) // still limited
	mustOK(t, l.Take("old", 1, 0, 0))        // forgotten: a full bucket again
}

func TestLimitAddedLater(t *testing.T) {
	l := New(newClock().now)
	for range 100 {
		mustOK(t, l.Take("a", 1000, 0, 5000)) // no token limit yet
	}
	mustOK(t, l.Take("a", 1000, 1000, 10)) // a TPM limit appears: no debt from before
}
