package pool

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/strait/strait/tunnel"
)

// TestSilentSessionGetsNoNewStream: a session that has given no sign of
// life (its probe overdue, no data) for longer than a probe round should
// take may be dead without the transport knowing yet. A new stream placed
// on it can reach a relay that is reachable again just as the edge's idle
// timer fires: the edge then takes the stream for one that broke before
// dispatch, resends it, and the relay refuses the copy of a request it
// already took upstream (the 502 TestRelayVanishesMidStream/quic saw). So
// the new stream waits for a session that proves alive: a replacement
// coming up, or an answer on the silent one; only after silentWait does it
// settle for the silent session.
func TestSilentSessionGetsNoNewStream(t *testing.T) {
	const probeInterval = 100 * time.Millisecond
	cases := []struct {
		name string
		// sessions is SessionsPerRelay (and the maximum: no autoscale).
		sessions int
		// then runs once the first session is silent; it returns the
		// session the new stream must land on and when, at the earliest
		// and the latest, after the OpenStream call.
		then func(t *testing.T, p *Pool, d *fakeDialer, silent *link) (want int, after, before time.Duration)
	}{
		{"replacement dialed while the other session is silent", 2,
			func(t *testing.T, p *Pool, d *fakeDialer, _ *link) (int, time.Duration, time.Duration) {
				d.Sessions()[1].Kill() // its slot redials after minBackoff
				synctest.Wait()
				return 3, minBackoff / 2, 2 * minBackoff
			}},
		{"an answered probe ends the silence", 1,
			func(t *testing.T, p *Pool, d *fakeDialer, silent *link) (int, time.Duration, time.Duration) {
				done := make(chan struct{})
				go func() {
					defer close(done)
					time.Sleep(30 * time.Millisecond)
					silent.pong(1)
				}()
				t.Cleanup(func() { <-done })
				return 1, 30 * time.Millisecond, 30 * time.Millisecond
			}},
		{"the only session stays silent: taken after silentWait", 1,
			func(t *testing.T, p *Pool, d *fakeDialer, _ *link) (int, time.Duration, time.Duration) {
				return 1, p.silentWait(), p.silentWait() + probeInterval
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := newFakeDialer("relay:443", 0)
				p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: tc.sessions,
					MaxSessionsPerRelay: tc.sessions, ProbeInterval: probeInterval})
				waitLive(t, p, tc.sessions)
				synctest.Wait()
				// Probe 1 went out 3 intervals ago and nothing came back since.
				l := linkOf(t, p, d.Sessions()[0])
				l.mu.Lock()
				l.sent[1] = time.Now().Add(-3 * probeInterval)
				l.oldest = l.sent[1]
				l.mu.Unlock()
				want, after, before := tc.then(t, p, d, l)
				start := time.Now()
				got := openOn(t, p)
				took := time.Since(start)
				if got.id != want {
					t.Fatalf("stream on session %d after %v; want session %d", got.id, took, want)
				}
				if took < after || took > before {
					t.Fatalf("stream placed after %v; want between %v and %v", took, after, before)
				}
			})
		})
	}
}
