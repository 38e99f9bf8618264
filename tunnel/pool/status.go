package pool

import (
	"strings"
	"time"

	"github.com/strait/strait/tunnel"
)

// SessionInfo describes one live session, for metrics and health.
type SessionInfo struct {
	Relay     string
	Slot      int
	Transport tunnel.Transport
	Streams   int
	// RTT is the smoothed probe round trip through the relay; zero before
	// the first answer or when the relay does not answer probes.
	RTT time.Duration
}

// Sessions lists the live sessions.
func (p *Pool) Sessions() []SessionInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]SessionInfo, 0, len(p.live))
	for s, l := range p.live {
		l.mu.Lock()
		rtt := l.srtt
		l.mu.Unlock()
		out = append(out, SessionInfo{Relay: s.relay.dialer.Addr(), Slot: s.index,
			Transport: l.sess.Info().Transport, Streams: l.numStreams(), RTT: rtt})
	}
	return out
}

// RelayStatus is one relay's breaker state and reconnect counters since
// the pool started.
type RelayStatus struct {
	Relay string
	// Breaker is "closed" (taking streams), "open" or "half-open".
	Breaker        string
	BreakerOpens   int64
	Dials          int64 // connection attempts
	DialFailures   int64
	SessionsLost   int64 // sessions that died (not drained)
	GoAways        int64 // sessions the relay drained with GoAway
	ProbeTimeouts  int64 // sessions closed for unanswered probes
	StreamFailures int64 // streams broken by the tunnel
	// ScaleUps and ScaleDowns count sessions added and retired by
	// autoscaling, by reason: streams, stream_cap, rtt_inflation,
	// probe_overdue (up) and low_load (down). Nil when scaling is off.
	ScaleUps, ScaleDowns map[string]int64
}

// Relays reports every relay's status.
func (p *Pool) Relays() []RelayStatus {
	now := time.Now()
	out := make([]RelayStatus, 0, len(p.relays))
	for _, r := range p.relays {
		c := &r.stats
		out = append(out, RelayStatus{Relay: r.dialer.Addr(), Breaker: r.br.current(now).String(),
			BreakerOpens: r.br.openCount(), Dials: c.dials.Load(), DialFailures: c.dialFailures.Load(),
			SessionsLost: c.lost.Load(), GoAways: c.goAways.Load(), ProbeTimeouts: c.probeTimeouts.Load(),
			StreamFailures: c.streamFailures.Load()})
		out[len(out)-1].ScaleUps, out[len(out)-1].ScaleDowns = r.scaleEvents()
	}
	return out
}

// scaleEvents splits the relay's scale counters by direction.
func (r *relay) scaleEvents() (ups, downs map[string]int64) {
	if r.scaler == nil {
		return nil, nil
	}
	ups, downs = map[string]int64{}, map[string]int64{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, n := range r.events {
		if reason, ok := strings.CutPrefix(k, "up:"); ok {
			ups[reason] = n
		} else {
			downs[strings.TrimPrefix(k, "down:")] = n
		}
	}
	return ups, downs
}
