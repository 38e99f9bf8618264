package pool

import (
	"time"
)

// ScaleConfig tunes how the number of sessions to each relay follows the
// load, between Config.SessionsPerRelay and Config.MaxSessionsPerRelay.
// Zero values mean the documented defaults.
//
// Why scale at all: every session is one congestion window. On a lossy
// border a loss-based window carries about 120 KB/s at 1 % loss and 150 ms,
// so a few sessions cannot carry hundreds of SSE streams that nginx spreads
// over as many TCP connections; and a QUIC session takes only so many
// streams (its peer's MaxStreams).
type ScaleConfig struct {
	// TargetStreams is how many open streams one session should carry. The
	// pool dials another session when the open streams reach three
	// quarters of TargetStreams per session (ahead of need), and retires
	// one when the rest would carry the load at half the target. Zero
	// means 8.
	TargetStreams int
	// MaxStreams is the most streams a session may carry (the relay's
	// QUIC MaxStreams); a session nearing it asks for another session and
	// gets new streams only when every other session is full too. Zero
	// means 4096, quictun's default.
	MaxStreams int
	// MaxDials bounds how many extra sessions per relay are dialed at
	// once. Zero means MaxSessionsPerRelay: across a 150 ms border a dial
	// takes several round trips, and a burst of streams should not wait
	// for more than one round of them.
	MaxDials int
	// ShrinkAfter is how long the load must stay low before one extra
	// session is retired; another may follow after the same time again.
	// Zero means 30s.
	ShrinkAfter time.Duration
	// MinWebSocket is the fewest sessions to a relay while its sessions run
	// over WebSocket, as an auto dialer's do on its fallback (a relay set
	// to WebSocket gets its minimum from SessionsPerRelay instead). Over
	// TCP one lost segment holds up every stream behind it on its session
	// for a retransmission, and a burst of new streams lands on the
	// sessions already up: the more of them, the fewer streams one loss
	// holds (see the lab report, "2026-12-06, last"). Zero: no such floor.
	MinWebSocket int
	// CongestionCooldown spaces the sessions added because sessions are
	// congested (probe round trips inflated or overdue while streams
	// run), so that the pool sees what one more session did before adding
	// the next. Zero means twice Config.ProbeInterval.
	CongestionCooldown time.Duration
}

// Scale reasons, in logs and metrics.
const (
	reasonStreams    = "streams"       // open streams above the target
	reasonStreamCap  = "stream_cap"    // a session near its stream limit
	reasonRTT        = "rtt_inflation" // probe round trips well above the session's minimum
	reasonOverdue    = "probe_overdue" // a probe waits while streams run
	reasonIdle       = "low_load"      // the load fits in fewer sessions
	reasonRenewed    = "renewed"       // the relay renewed an extra session; the load decides whether to dial another
	reasonWebSocket  = "websocket_min" // the relay's sessions run over WebSocket: ScaleConfig.MinWebSocket
	growAt, shrinkAt = 0.75, 0.5       // fractions of TargetStreams per session
	capAt            = 0.9             // fraction of MaxStreams that asks for growth
	// inflationFloor keeps loopback-scale round trips, where a millisecond
	// doubles the minimum, from counting as congestion.
	inflationFloor = 25 * time.Millisecond
)

// scaleAction is what a scaler decided.
type scaleAction int

const (
	hold scaleAction = iota
	grow
	shrink
)

func (a scaleAction) String() string {
	return [...]string{"hold", "grow", "shrink"}[a]
}

// decision is one scaling step: add n sessions, retire one, or do nothing.
type decision struct {
	action scaleAction
	n      int
	reason string
}

// sessionLoad is what the pool measured on one session that takes new
// streams.
type sessionLoad struct {
	streams int
	srtt    time.Duration // smoothed probe round trip; 0 before the first
	minRTT  time.Duration // lowest probe round trip seen; 0 before the first
	overdue bool          // a probe is unanswered for longer than expected
}

// congestion says why a loaded session counts as congested, or "". A probe
// that waits behind the session's own data means its window is the
// bottleneck; another session (another window) relieves it.
func (l sessionLoad) congestion() string {
	switch {
	case l.streams == 0:
		return ""
	case l.overdue:
		return reasonOverdue
	case l.minRTT > 0 && l.srtt > l.minRTT+max(l.minRTT, inflationFloor):
		return reasonRTT
	}
	return ""
}

// scaleInput is one relay's state as the scaler sees it.
type scaleInput struct {
	sessions []sessionLoad // usable sessions (up, not draining)
	slots    int           // sessions kept up or being dialed, base and extra
	dialing  int           // extra sessions being dialed
	waiting  int           // new streams waiting for those sessions
	floor    int           // sessions to keep whatever the load (ScaleConfig.MinWebSocket), if above min
}

// scaler decides, for one relay, when to add and retire sessions. It is a
// pure function of its inputs and the time it is given, plus the little
// state hysteresis needs: when the load went low, when it last grew.
type scaler struct {
	min, max           int
	target, maxStreams int
	maxDials           int
	shrinkAfter        time.Duration
	cooldown           time.Duration

	lowSince time.Time // zero while the load is not low
	lastGrow time.Time
}

func newScaler(cfg Config) *scaler {
	s := cfg.Scale
	return &scaler{min: cfg.SessionsPerRelay, max: cfg.MaxSessionsPerRelay, target: s.TargetStreams,
		maxStreams: s.MaxStreams, maxDials: s.MaxDials, shrinkAfter: s.ShrinkAfter, cooldown: s.CongestionCooldown}
}

// decide returns the next step for the state in, observed at now.
func (s *scaler) decide(now time.Time, in scaleInput) decision {
	streams, congested, nearCap := in.waiting, "", false
	for _, l := range in.sessions {
		streams += l.streams
		if c := l.congestion(); c != "" && congested == "" {
			congested = c
		}
		if float64(l.streams) >= capAt*float64(s.maxStreams) {
			nearCap = true
		}
	}
	if d := s.growth(now, in, streams, congested, nearCap); d.action == grow {
		s.lowSince, s.lastGrow = time.Time{}, now
		return d
	}
	return s.shrinkage(now, in, streams, congested)
}

// growth decides whether to dial more sessions: enough for the open
// streams at three quarters of the target (one at a time for a stream cap
// or congestion), within the maximum and the dial concurrency.
func (s *scaler) growth(now time.Time, in scaleInput, streams int, congested string, nearCap bool) decision {
	room := min(s.max-in.slots, s.maxDials-in.dialing)
	if room <= 0 {
		return decision{}
	}
	if want := ceilDiv(streams, growAt*float64(s.target)); want > in.slots {
		return decision{action: grow, n: min(want-in.slots, room), reason: reasonStreams}
	}
	if in.floor > in.slots {
		return decision{action: grow, n: min(in.floor-in.slots, room), reason: reasonWebSocket}
	}
	if in.dialing > 0 {
		return decision{} // the sessions on their way may be enough
	}
	if nearCap {
		return decision{action: grow, n: 1, reason: reasonStreamCap}
	}
	if congested != "" && now.Sub(s.lastGrow) >= s.cooldown {
		return decision{action: grow, n: 1, reason: congested}
	}
	return decision{}
}

// shrinkage retires one extra session once the load has stayed low for
// shrinkAfter: the streams would fit in one session fewer at half the
// target, nothing is congested and nothing is being dialed. The gap
// between the grow threshold (¾ of the target on n sessions) and this one
// (½ on n−1) is the hysteresis that keeps the pool from flapping.
func (s *scaler) shrinkage(now time.Time, in scaleInput, streams int, congested string) decision {
	n := len(in.sessions)
	low := in.dialing == 0 && congested == "" && n > max(s.min, in.floor) &&
		float64(streams) <= shrinkAt*float64(s.target*(n-1))
	if !low {
		s.lowSince = time.Time{}
		return decision{}
	}
	if s.lowSince.IsZero() {
		s.lowSince = now
	}
	if now.Sub(s.lowSince) < s.shrinkAfter {
		return decision{}
	}
	s.lowSince = now // the next session waits another shrinkAfter
	return decision{action: shrink, n: 1, reason: reasonIdle}
}

// ceilDiv is ⌈a/b⌉ for a ≥ 0, b > 0.
func ceilDiv(a int, b float64) int {
	q := float64(a) / b
	n := int(q)
	if float64(n) < q {
		n++
	}
	return n
}
