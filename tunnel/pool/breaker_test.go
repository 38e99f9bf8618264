package pool

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/strait/strait/tunnel"
)

// TestBreaker walks the breaker through its states: closed until threshold
// consecutive failures, open for the cooldown, half-open until a probe
// decides, back to closed on an answer, reopened with a doubled cooldown
// on a timeout. A success resets the count while closed.
func TestBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var seen []breakerState
		b := newBreaker(3, time.Second, 4*time.Second, func(_, to breakerState) {
			mu.Lock()
			seen = append(seen, to)
			mu.Unlock()
		})
		state := func() breakerState { return b.current(time.Now()) }

		b.failure(false)
		b.failure(false)
		b.success(false) // a stream that worked: the count starts over
		b.failure(false)
		b.failure(false)
		if s := state(); s != breakerClosed {
			t.Fatalf("after 2 consecutive failures: %v", s)
		}
		b.failure(false)
		if s := state(); s != breakerOpen {
			t.Fatalf("after 3 consecutive failures: %v", s)
		}
		b.success(true) // an answer during the cooldown does not close it
		time.Sleep(999 * time.Millisecond)
		if s := state(); s != breakerOpen {
			t.Fatalf("before the cooldown ended: %v", s)
		}
		time.Sleep(time.Millisecond)
		if s := state(); s != breakerHalfOpen {
			t.Fatalf("after the cooldown: %v", s)
		}
		b.success(false) // a stream is not the probe
		if s := state(); s != breakerHalfOpen {
			t.Fatalf("after a stream success while half-open: %v", s)
		}
		b.failure(true) // the probe timed out: open again, for 2s
		time.Sleep(1999 * time.Millisecond)
		if s := state(); s != breakerOpen {
			t.Fatalf("before the doubled cooldown ended: %v", s)
		}
		time.Sleep(time.Millisecond)
		b.success(true)
		if s := state(); s != breakerClosed {
			t.Fatalf("after an answered probe: %v", s)
		}
		if n := b.openCount(); n != 2 {
			t.Errorf("opened %d times; want 2", n)
		}
		want := []breakerState{breakerOpen, breakerHalfOpen, breakerOpen, breakerHalfOpen, breakerClosed}
		mu.Lock()
		defer mu.Unlock()
		if !slices.Equal(seen, want) {
			t.Errorf("transitions %v; want %v", seen, want)
		}
	})
}

// TestPickByHealth: among live sessions the pool prefers, at equal load, the
// one with the shorter round trip, avoids one whose tunnel failed streams
// and one whose probe is overdue, and skips a relay whose breaker is open.
func TestPickByHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newFakeDialer("relay-a:443", 0), newFakeDialer("relay-b:443", 0)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{a, b}, SessionsPerRelay: 2})
		waitLive(t, p, 4)
		synctest.Wait()
		sa, sb := a.Sessions(), b.Sessions()
		set := func(fs *fakeSession, rtt time.Duration, fails int64, overdue bool) {
			l := linkOf(t, p, fs)
			l.mu.Lock()
			l.srtt = rtt
			l.oldest = time.Time{}
			if overdue {
				l.oldest = time.Now().Add(-time.Minute)
			}
			l.mu.Unlock()
			l.fails.Store(fails)
		}
		set(sa[0], 50*time.Millisecond, 0, false)
		set(sa[1], 200*time.Millisecond, 0, false)
		set(sb[0], 10*time.Millisecond, 0, true) // fastest, but its probe is overdue
		set(sb[1], 10*time.Millisecond, 3, false)
		if got := openOn(t, p); got != sa[0] {
			t.Fatalf("stream on session %d; want %d (shortest healthy round trip)", got.id, sa[0].id)
		}
		set(sb[1], 10*time.Millisecond, 0, false)
		if got := openOn(t, p); got != sb[1] {
			t.Fatalf("stream on session %d; want %d once its failures are gone", got.id, sb[1].id)
		}
		p.relays[1].br.failure(false)
		for range 4 {
			p.relays[1].br.failure(false)
		}
		for range 3 {
			if got := openOn(t, p); got != sa[0] && got != sa[1] {
				t.Fatalf("stream on relay b's session %d while its breaker is open", got.id)
			}
		}
	})
}

// TestBreakerClosesWithoutProbes: a relay that refuses the control stream
// (one that predates it; the fake sessions do the same) is never probed,
// and only an answered probe closes a half-open breaker. Once a restart of
// such a relay opened its breaker (its sessions lost one after another),
// the relay stayed out for good: the replacement session was up, but no
// stream was ever placed on it again.
func TestBreakerClosesWithoutProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay-a:443", 0)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, MaxSessionsPerRelay: 1,
			BreakerThreshold: 3, BreakerCooldown: time.Second})
		for i := range 3 { // the relay restarts: each new session is lost at once
			d.waitSessions(t, i+1)[i].Kill()
		}
		d.waitSessions(t, 4)
		waitLive(t, p, 1)
		synctest.Wait()
		if n := p.relays[0].br.openCount(); n != 1 {
			t.Fatalf("breaker opened %d times after 3 lost sessions; want 1", n)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		st, err := p.OpenStream(ctx)
		if err != nil {
			t.Fatalf("OpenStream with the relay's session up again: %v", err)
		}
		st.Close()
	})
}
