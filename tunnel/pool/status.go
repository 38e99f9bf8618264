package pool

import "time"

// SessionInfo describes one live session, for metrics and health.
type SessionInfo struct {
	Relay     string
	Slot      int
	Transport string
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
	}
	return out
}
