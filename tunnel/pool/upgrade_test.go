package pool

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/tunnel"
)

// upgradingDialer hands out sessions on a fallback transport (Dial) and on
// the preferred one (DialPreferred), like autodial's QUIC-then-WebSocket.
type upgradingDialer struct {
	*fakeDialer               // the fallback
	preferred   *fakeDialer   // sessions it counts as preferred
	interval    time.Duration // RetryInterval
}

func (d *upgradingDialer) IsPreferred(s tunnel.Session) bool {
	for _, p := range d.preferred.Sessions() {
		if tunnel.Session(p) == s {
			return true
		}
	}
	return false
}

func (d *upgradingDialer) DialPreferred(ctx context.Context) (tunnel.Session, error) {
	return d.preferred.Dial(ctx)
}

func (d *upgradingDialer) RetryInterval() time.Duration { return d.interval }

// TestUpgradedSessionEndsAsItself: once a slot's fallback session was
// upgraded, what the slot does when the session ends is about the upgraded
// session: its own time up, not the fallback's.
func TestUpgradedSessionEndsAsItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		core, logs := observer.New(zapcore.WarnLevel)
		d := &upgradingDialer{fakeDialer: newFakeDialer("relay:443", 0),
			preferred: newFakeDialer("relay:443", 0), interval: 3 * time.Second}
		newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, MaxSessionsPerRelay: 1,
			Logger: zap.New(core)})
		d.waitSessions(t, 1)
		upgraded := d.preferred.waitSessions(t, 1)[0] // after the interval
		time.Sleep(10 * time.Second)
		upgraded.Kill()
		synctest.Wait()
		lost := logs.FilterMessage("tunnel session lost").All()
		if len(lost) != 1 {
			t.Fatalf("%d \"tunnel session lost\" entries; want 1", len(lost))
		}
		if up := lost[0].ContextMap()["up_for"]; up != 10*time.Second {
			t.Errorf("the upgraded session was lost after %v up; want 10s (3s more is the fallback's)", up)
		}
	})
}
