package pool

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/tunnel"
)

// openStreams opens n streams through the pool and returns them.
func openStreams(t *testing.T, p *Pool, n int) []tunnel.Stream {
	t.Helper()
	out := make([]tunnel.Stream, 0, n)
	for range n {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		st, err := p.OpenStream(ctx)
		cancel()
		if err != nil {
			t.Fatalf("OpenStream: %v", err)
		}
		out = append(out, st)
	}
	return out
}

// TestAutoscaleGrowsAndShrinks: many streams make the pool dial extra
// sessions up to MaxSessionsPerRelay, new streams go to the new sessions,
// and once the streams are gone the extras are retired one per
// ShrinkAfter, back to SessionsPerRelay and never below. Each step is
// logged and counted by reason. (Virtual time: the sleeps advance the
// bubble's clock, they do not wait for goroutines; synctest.Wait does.)
func TestAutoscaleGrowsAndShrinks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shrinkAfter = 10 * time.Second
		core, logs := observer.New(zapcore.InfoLevel)
		d := newFakeDialer("relay:443", 0)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 2, MaxSessionsPerRelay: 6,
			Scale: ScaleConfig{TargetStreams: 4, ShrinkAfter: shrinkAfter}, Logger: zap.New(core)})
		waitLive(t, p, 2)

		streams := openStreams(t, p, 12) // ⌈12/3⌉ = 4 sessions wanted
		synctest.Wait()
		if got := p.Live(); got != 4 {
			t.Fatalf("Live = %d after 12 streams with a target of 4 per session; want 4", got)
		}
		streams = append(streams, openStreams(t, p, 12)...) // 24 streams: 8 wanted, 6 at most
		synctest.Wait()
		if got := p.Live(); got != 6 {
			t.Fatalf("Live = %d after 24 streams; want the maximum, 6", got)
		}
		time.Sleep(time.Minute) // no more growth past the maximum, however long the load lasts
		if n := len(d.Attempts()); n != 6 {
			t.Errorf("%d dials under sustained load; want 6", n)
		}
		// New streams go to the least loaded sessions, the new ones first.
		for range 4 {
			least := d.Sessions()[0].NumStreams()
			for _, fs := range d.Sessions() {
				least = min(least, fs.NumStreams())
			}
			st := openStreams(t, p, 1)[0]
			streams = append(streams, st)
			if got := st.(*stream).Stream.(*fakeStream).sess.NumStreams() - 1; got != least {
				t.Errorf("new stream on a session that had %d streams; the least loaded had %d", got, least)
			}
		}
		st := p.Relays()[0]
		if st.ScaleUps[reasonStreams] != 4 {
			t.Errorf("ScaleUps = %v; want 4 for %q", st.ScaleUps, reasonStreams)
		}

		for _, s := range streams {
			s.Close()
		}
		idle := time.Now()
		time.Sleep(time.Second) // the first step that sees the load gone starts the clock
		for want := 5; want >= 2; want-- {
			time.Sleep(shrinkAfter)
			synctest.Wait()
			if got := p.Live(); got != want {
				t.Fatalf("Live = %d after %v idle; want %d (one retired per ShrinkAfter)", got, time.Since(idle), want)
			}
		}
		time.Sleep(10 * shrinkAfter)
		if got := p.Live(); got != 2 {
			t.Errorf("Live = %d long after the load ended; want SessionsPerRelay, 2", got)
		}
		closed := 0
		for i, fs := range d.Sessions() {
			switch by := fs.ClosedBy(); {
			case i < 2 && by != "":
				t.Errorf("base session %d closed by %q", fs.id, by)
			case by == "pool":
				closed++
			}
		}
		if closed != 4 {
			t.Errorf("%d extra sessions closed by the pool; want 4", closed)
		}
		if st := p.Relays()[0]; st.ScaleDowns[reasonIdle] != 4 || st.SessionsLost != 0 {
			t.Errorf("ScaleDowns = %v, lost %d; want 4 for %q and none lost", st.ScaleDowns, st.SessionsLost, reasonIdle)
		}
		// How the four are split into decisions depends on when autoscale
		// runs between the opens; each decision is logged once.
		if n := logs.FilterMessage("tunnel sessions grow").Len(); n < 2 || n > 4 {
			t.Errorf("%d grow decisions logged; want 2 to 4", n)
		}
		if n := logs.FilterMessage("tunnel sessions shrink").Len(); n != 4 {
			t.Errorf("%d shrink decisions logged; want 4", n)
		}
	})
}

// TestExpectedStreamsGrowSessions: streams announced with Expect (clients
// that have connected and are still handshaking) make autoscale dial the
// sessions they will need before any of them opens, within the maximum and
// split between the relays; withdrawn, they let the extras retire after
// ShrinkAfter. Without autoscale, announcing dials nothing.
func TestExpectedStreamsGrowSessions(t *testing.T) {
	for _, tc := range []struct {
		name      string
		relays    int
		max       int
		expect    int
		wantLive  int // live sessions, all relays, once the dials are done
		scalingOn bool
	}{
		{name: "one relay", relays: 1, max: 6, expect: 12, wantLive: 4, scalingOn: true}, // ⌈12/3⌉
		{name: "up to the maximum", relays: 1, max: 6, expect: 100, wantLive: 6, scalingOn: true},
		{name: "split between relays", relays: 2, max: 6, expect: 12, wantLive: 4, scalingOn: true}, // 6 each: 2 per relay
		{name: "few", relays: 1, max: 6, expect: 3, wantLive: 2, scalingOn: true},
		{name: "scaling off", relays: 1, max: 2, expect: 100, wantLive: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const shrinkAfter = 10 * time.Second
				var dialers []tunnel.Dialer
				for i := range tc.relays {
					dialers = append(dialers, newFakeDialer(fmt.Sprintf("relay%d:443", i), 0))
				}
				perRelay := 2 / tc.relays
				p := newPool(t, Config{Dialers: dialers, SessionsPerRelay: perRelay, MaxSessionsPerRelay: tc.max,
					Scale: ScaleConfig{TargetStreams: 4, ShrinkAfter: shrinkAfter}})
				waitLive(t, p, 2)
				p.Expect(tc.expect)
				synctest.Wait()
				if got := p.Live(); got != tc.wantLive {
					t.Fatalf("Live = %d with %d streams announced and none open; want %d", got, tc.expect, tc.wantLive)
				}
				p.Expect(-tc.expect)
				time.Sleep(time.Duration(tc.wantLive) * (shrinkAfter + time.Second))
				synctest.Wait()
				if got := p.Live(); got != 2 {
					t.Errorf("Live = %d once the announced streams were withdrawn; want the base, 2", got)
				}
			})
		})
	}
}

// poolWithExtra starts a pool over d with one base session and at most one
// extra, retired after shrinkAfter of low load, and opens streams enough
// for the extra one; it returns them once the extra session is up.
func poolWithExtra(t *testing.T, d tunnel.Dialer, shrinkAfter time.Duration) (*Pool, []tunnel.Stream) {
	t.Helper()
	p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, MaxSessionsPerRelay: 2,
		Scale: ScaleConfig{TargetStreams: 4, ShrinkAfter: shrinkAfter}})
	waitLive(t, p, 1)
	streams := openStreams(t, p, 4) // > 3: a second session
	synctest.Wait()
	waitLive(t, p, 2)
	return p, streams
}

// TestAutoscaleRetiredSessionKeepsStreams: a retired session takes no new
// streams, but the stream it carries keeps working, and the session is
// closed only after that stream ends.
func TestAutoscaleRetiredSessionKeepsStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shrinkAfter = 10 * time.Second
		d := newFakeDialer("relay:443", 0)
		p, streams := poolWithExtra(t, d, shrinkAfter)
		held := openStreams(t, p, 1)[0] // the least loaded: the new session
		extra := d.Sessions()[1]
		if got := held.(*stream).Stream.(*fakeStream).sess; got != extra {
			t.Fatalf("stream on session %d; want the new session %d", got.id, extra.id)
		}
		for _, s := range streams {
			s.Close()
		}
		time.Sleep(2 * shrinkAfter)
		synctest.Wait()
		if got := p.Live(); got != 1 {
			t.Fatalf("Live = %d; want the extra session retired", got)
		}
		if by := extra.ClosedBy(); by != "" {
			t.Fatalf("retired session closed (by %q) while it still carried a stream", by)
		}
		for range 3 {
			if got := openOn(t, p); got == extra {
				t.Fatal("new stream on the retired session")
			}
		}
		if _, err := held.Write([]byte("still here")); err != nil {
			t.Fatalf("the stream on the retired session broke: %v", err)
		}
		held.Close()
		time.Sleep(time.Second) // the drain checks every 50ms
		if by := extra.ClosedBy(); by != "pool" {
			t.Errorf("retired session closed by %q after its last stream; want pool", by)
		}
	})
}

// TestAutoscaleOff: with MaxSessionsPerRelay equal to SessionsPerRelay the
// number of sessions stays fixed under any load.
func TestAutoscaleOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay:443", 0)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 2, MaxSessionsPerRelay: 2,
			Scale: ScaleConfig{TargetStreams: 1}})
		waitLive(t, p, 2)
		openStreams(t, p, 50)
		time.Sleep(time.Minute)
		if n := len(d.Attempts()); n != 2 {
			t.Errorf("%d dials with scaling off; want 2", n)
		}
		if st := p.Relays()[0]; st.ScaleUps != nil {
			t.Errorf("ScaleUps = %v with scaling off; want nil", st.ScaleUps)
		}
	})
}

// TestAutoscaleExtraDialFails: an extra session that cannot be dialed is
// not retried in a loop by its slot; autoscale asks again on its next
// step, so dials stay bounded while the relay refuses.
func TestAutoscaleExtraDialFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay:443", 0)
		d.limit = 1
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, MaxSessionsPerRelay: 4,
			Scale: ScaleConfig{TargetStreams: 4, MaxDials: 2}, ProbeInterval: time.Second})
		waitLive(t, p, 1)
		openStreams(t, p, 40)
		time.Sleep(10 * time.Second)
		// One kick per stream and one step per second, at most MaxDials
		// attempts each, and never more than the breaker lets through.
		if n := len(d.Attempts()); n < 3 || n > 1+2*(40+10) {
			t.Errorf("%d dial attempts in 10s with extras refused; want a few, bounded", n)
		}
		if got := p.Live(); got != 1 {
			t.Errorf("Live = %d; want 1", got)
		}
	})
}

// TestBurstWaitsForDial: once a session whose window is loss-limited
// carries twice the target and a session is on its way, a new stream waits
// (a bounded time) for it rather than queueing behind the overloaded one. A
// session under BBR counts as overloaded only at eight times the target:
// below that a new stream goes on it at once, sparing itself the dial.
func TestBurstWaitsForDial(t *testing.T) {
	for _, tc := range []struct {
		congestion string
		open       int  // streams already on the only session
		wait       bool // whether the next stream waits for the dial
	}{
		{congestion: "", open: 4, wait: true}, // unknown counts as loss-based
		{congestion: "reno", open: 4, wait: true},
		{congestion: "cubic", open: 4, wait: true},
		{congestion: "reno", open: 3, wait: false},
		{congestion: "bbr", open: 4, wait: false},
		{congestion: "bbr", open: 15, wait: false},
		{congestion: "bbr", open: 16, wait: true},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.congestion, tc.open), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := newFakeDialer("relay:443", 0)
				d.congestion = tc.congestion
				p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, MaxSessionsPerRelay: 3,
					Scale: ScaleConfig{TargetStreams: 2, MaxDials: 1}})
				waitLive(t, p, 1)
				gate := make(chan struct{})
				d.gate = gate // extra dials wait for it; set before any stream asks for one
				openStreams(t, p, tc.open)
				synctest.Wait()

				got := make(chan *fakeSession, 1)
				go func() { got <- openOn(t, p) }()
				synctest.Wait()
				select {
				case fs := <-got:
					if tc.wait {
						t.Fatalf("stream went to session %d at once; want it to wait for the session being dialed", fs.id)
					}
					if fs != d.Sessions()[0] {
						t.Errorf("stream on session %d; want the one already up", fs.id)
					}
					close(gate)
					return
				default:
					if !tc.wait {
						t.Fatal("stream waits for a dial; want it on the session already up at once")
					}
				}
				close(gate)
				if fs := <-got; fs == d.Sessions()[0] {
					t.Errorf("stream on the overloaded session %d; want the new one", fs.id)
				}
			})
		})
	}
}

// TestBurstWaitIsBounded: with the dial stuck, a new stream waits
// minDialWait for it (no probe has measured a round trip) and then takes
// the overloaded session after all.
func TestBurstWaitIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay:443", 0)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, MaxSessionsPerRelay: 2,
			Scale: ScaleConfig{TargetStreams: 2}, DialTimeout: time.Hour})
		waitLive(t, p, 1)
		d.gate = make(chan struct{}) // never opens: the extra session never comes
		openStreams(t, p, 4)
		synctest.Wait()
		start := time.Now()
		if fs := openOn(t, p); fs != d.Sessions()[0] {
			t.Errorf("stream on session %d; want the only live one", fs.id)
		}
		if waited := time.Since(start); waited != minDialWait {
			t.Errorf("stream waited %v for a dial that did not finish; want %v", waited, minDialWait)
		}
	})
}

// TestWokenStreamsSpread: streams that waited with no session up all wake
// when the first one comes; pick reserves each stream's place as it
// chooses, so they neither pile onto that one session nor skip the burst
// wait, and end up spread over the sessions autoscale adds.
func TestWokenStreamsSpread(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay:443", 0)
		d.gate = make(chan struct{})
		d.openDelay = time.Millisecond // the woken opens overlap
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, MaxSessionsPerRelay: 4,
			Scale: ScaleConfig{TargetStreams: 2}, FastDialTimeout: time.Hour})
		const n = 20
		done := make(chan *fakeSession, n)
		for range n {
			go func() { done <- openOn(t, p) }()
		}
		synctest.Wait() // all waiting: no session is up
		close(d.gate)
		per := map[*fakeSession]int{}
		for range n {
			per[<-done]++
		}
		if len(per) != 4 {
			t.Fatalf("%d streams over %d sessions; want all 4", n, len(per))
		}
		for fs, k := range per { // which waiter takes which place varies by one
			if k < n/4-1 || k > n/4+1 {
				t.Errorf("session %d got %d streams; want %d±1 on each", fs.id, k, n/4)
			}
		}
	})
}

// TestBurstDialsInOneWave: by default a burst's extra sessions are all
// dialed at once, up to the maximum, not in waves that each cost a dial's
// round trips.
func TestBurstDialsInOneWave(t *testing.T) {
	for _, tc := range []struct {
		maxDials int // 0: the default
		want     int // extra dials in flight while none can finish
	}{
		{maxDials: 0, want: 11},
		{maxDials: 4, want: 4},
	} {
		t.Run(fmt.Sprintf("max_dials=%d", tc.maxDials), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := newFakeDialer("relay:443", 0)
				p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, MaxSessionsPerRelay: 12,
					Scale: ScaleConfig{TargetStreams: 2, MaxDials: tc.maxDials}, DialTimeout: time.Hour})
				waitLive(t, p, 1)
				gate := make(chan struct{})
				d.gate = gate         // extra dials wait for it
				openStreams(t, p, 40) // each waits a moment for the dials, then goes on the base session
				synctest.Wait()
				if got := p.relays[0].numDialing(); got != tc.want {
					t.Errorf("%d extra dials in flight for a burst of 40 streams; want %d", got, tc.want)
				}
				close(gate)
				d.waitSessions(t, 1+tc.want)
			})
		})
	}
}

// TestRetiredSlotCountsOnce: a retired slot's session leaves the pool's
// view at once, even while its supervisor is busy and has not closed it
// yet (here: upgrading to the preferred transport, a dial that hangs as
// QUIC's does where UDP is blocked). The scaler neither counts it as a
// session nor retires it again, each retirement is counted once, and no
// new stream goes to it.
func TestRetiredSlotCountsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const shrinkAfter = 10 * time.Second
		preferred := newFakeDialer("relay:443", 0)
		preferred.gate = make(chan struct{}) // every upgrade hangs until it opens
		d := &upgradingDialer{fakeDialer: newFakeDialer("relay:443", 0), preferred: preferred, interval: time.Second}
		p, streams := poolWithExtra(t, d, shrinkAfter)
		extra := d.Sessions()[1]
		for _, s := range streams {
			s.Close()
		}
		time.Sleep(4 * shrinkAfter) // both slots hang in their upgrade from the first second on
		synctest.Wait()
		if downs := p.Relays()[0].ScaleDowns[reasonIdle]; downs != 1 {
			t.Errorf("%d sessions counted retired with one extra session; want 1", downs)
		}
		for range 4 {
			st, err := p.OpenStream(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if st.(*stream).Stream.(*fakeStream).sess == extra {
				t.Fatal("new stream on the retired session")
			}
			st.Close()
		}

		close(preferred.gate)
		time.Sleep(time.Second) // the retired slot's drain checks every 50ms
		synctest.Wait()
		if by := extra.ClosedBy(); by != "pool" {
			t.Errorf("retired session closed by %q; want pool", by)
		}
		if got := p.Live(); got != 1 {
			t.Errorf("Live = %d once the upgrades went through; want the base session only", got)
		}
		if downs := p.Relays()[0].ScaleDowns[reasonIdle]; downs != 1 {
			t.Errorf("%d sessions counted retired in the end; want 1", downs)
		}
	})
}
