package relay

import (
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
)

// Renewing idle sessions whose congestion window has moved.
//
// quic-go's congestion control is NewReno, and it keeps what a session
// learnt for the session's life: once a loss ends slow start (one that
// FEC could not rebuild, or, far more often, one it rebuilt a little too
// late for quic-go, whose cut quic-go undoes only while no later cut came
// in between), or a rise in round trip does, the window grows by one
// packet per round trip, however long the session idles in between. The
// lab caught a 10 MB answer crossing 150 ms at 0.68 MB/s on a session that
// had carried the 256-client cells, against 5 MB/s on a session still in
// slow start: its per-MiB marks showed the window climbing from about 55
// packets by one per round trip (scripts/lab/results/2026-12-06-evening,
// matrix4-bulk-trace.jsonl). quic-go exposes neither the threshold nor the
// phase (a qlog tracer could follow the phase, at the price of an event
// built for every packet), and nothing resets them; a new session starts
// in slow start again. So the relay, which sends the answers and sees its
// own window, asks the edge to replace a session once it is idle and its
// window is no longer the one it started with: it has filled its window at
// least once, and may have left slow start since. The edge dials the
// replacement at once and closes the old session (GoAway, as in a drain).
// The relay checks when a session's last stream ends, since a large
// answer may follow within milliseconds (the lab's bulk request does),
// and after each probe answer, for a session that became idle before it
// was old enough.
//
// Sessions that only ever carried streams of events never fill their
// first window (the lab's SSE sessions all ended at it), so they are never
// renewed; a session whose window grew large in slow start carries a bulk
// answer at full speed already and is kept.
//
// WebSocket sessions run over TCP, whose window the kernel keeps, and
// there the rule is narrower: a session is renewed only when a loss cut
// its slow-start threshold below the window it started with. Under a
// loss-based congestion control (reno, cubic) a session that carries
// nothing but probes loses one now and then at a few percent of loss, and
// each loss halves its window; since probes never fill it, it never grows
// back. The lab found the relay's ends of idle sessions at 2 to 5 segments
// after a minute at 3 % (reno, 150 ms), and a burst of new streams waited a
// round trip more on them for every few segments of answers
// (scripts/lab/README.md, "2026-12-06, last"). A session
// whose window grew is kept (a window the kernel measured is worth keeping
// over TCP, where it is not loss-limited under BBR), and BBR sets no
// threshold at all.
//
// What the window cannot show: a session whose hybrid slow start ended slow
// start on a rising round trip, at its first window. A relay-side qlog of
// one 256-client cell found 10 of 32 sessions so, beside 2 with cut windows
// (scripts/lab/README.md, "2026-12-06, night"). So where quictun follows
// the phase (sessions from edges on a long path, which send FEC:
// tunnel.SenderState.PhaseKnown), the rule reads it instead of the window:
// a session is renewed once its slow start has ended, whether a loss or a
// rising round trip ended it, and kept while it is still in slow start,
// whatever its window.
type renewPolicy struct {
	// minAge keeps a session at least this long: it bounds the churn to
	// one handshake per session per minAge.
	minAge time.Duration
	// idle is how long the session must have carried no request stream
	// (none by default: the check runs as the last one ends).
	idle time.Duration
	// maxWindow is the window from which a session is kept whatever its
	// phase: 1 MiB carries about 7 MB/s at 150 ms.
	maxWindow uint64
	// off disables renewal.
	off bool
}

var defaultRenewal = renewPolicy{minAge: 10 * time.Second, maxWindow: 1 << 20}

// renewalAfter is the policy of Config.RenewAfter.
func renewalAfter(minAge *time.Duration) renewPolicy {
	p := defaultRenewal
	switch {
	case minAge == nil:
	case *minAge <= 0:
		p.off = true
	default:
		p.minAge = *minAge
	}
	return p
}

// renewMessage is the GoAway text of a renewal: the edge logs it.
const renewMessage = "renewing the session: its congestion window moved or its slow start ended, and a new one starts in slow start"

// renewShortMessage is the GoAway text of a renewal of a session whose
// phase was followed on a path since found short (quictun's phase.go).
const renewShortMessage = "renewing the session: the path is short, and a new session needs no following of its congestion state"

// sessionUse is what renewal needs to know of a session's life.
type sessionUse struct {
	up      time.Time
	streams int64     // request streams being served
	lastEnd time.Time // when the last one ended; zero if none has
	// initialWindow is the sender's window when the session came up.
	initialWindow uint64
	transport     tunnel.Transport
}

// eligible reports whether a session used as u may be renewed at now,
// whatever its sender's state: it is idle and old enough. It is checked
// first because reading the sender state costs a system call on TCP, and
// the relay asks as every stream ends.
func (p renewPolicy) eligible(now time.Time, u sessionUse) bool {
	return !p.off && u.streams == 0 && now.Sub(u.up) >= p.minAge && now.Sub(u.lastEnd) >= p.idle
}

// due reports whether a session used as u, whose sender is in state s,
// should be renewed at now.
func (p renewPolicy) due(now time.Time, u sessionUse, s tunnel.SenderState) bool {
	if !p.eligible(now, u) {
		return false
	}
	if u.transport == tunnel.TransportWS { // TCP: see the type's comment
		return s.SlowStartThreshold != 0 && s.SlowStartThreshold < u.initialWindow
	}
	if s.PhaseKnown {
		return s.LeftSlowStart && s.Window < p.maxWindow
	}
	return s.Window != u.initialWindow && s.Window < p.maxWindow
}

// maybeRenew asks the edge of l to replace it when the policy says so and
// the edge keeps another session to this relay meanwhile.
func (r *Relay) maybeRenew(l *link) {
	if !r.renewal.off && r.needlessWatch(l.sess) {
		// Busy or not: a renewal drains the session, and each packet on it
		// costs the relay an event until it is gone.
		if r.sessions.claimRenewal(l) {
			r.renew(l, renewShortMessage,
				"asking the edge to renew a tunnel session on a short path: its sender's phase is followed needlessly")
		}
		return
	}
	now, use := time.Now(), l.use()
	if !r.renewal.eligible(now, use) {
		return
	}
	s, ok := r.senderState(l.sess)
	if !ok || !r.renewal.due(now, use, s) || !r.sessions.claimRenewal(l) {
		return
	}
	r.renew(l, renewMessage, "asking the edge to renew an idle tunnel session", zap.Uint64("cwnd_bytes", s.Window),
		zap.Uint64("initial_cwnd_bytes", l.initialWindow), zap.Uint64("ssthresh_bytes", s.SlowStartThreshold),
		zap.Bool("left_slow_start", s.LeftSlowStart), zap.Duration("up_for", time.Since(l.up)))
}

// renew logs and counts the renewal of l, which claimRenewal granted, and
// sends the edge a GoAway with message.
func (r *Relay) renew(l *link, message, logMessage string, fields ...zap.Field) {
	r.log.Info(logMessage, append([]zap.Field{zap.String("edge", l.sess.Info().PeerName),
		zap.Stringer("remote", l.sess.Info().RemoteAddr)}, fields...)...)
	if r.metrics != nil {
		r.metrics.renewed.Inc()
	}
	l.sendGoAway(proto.GoAway{Message: message, Renewal: true})
}

// claimRenewal marks l as going away if its edge has another session here
// that is not: an edge is never left without one while it dials.
func (s *sessionSet) claimRenewal(l *link) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l.goingAway() {
		return false
	}
	for _, o := range s.m {
		if o != l && sameEdge(o.sess.Info(), l.sess.Info()) && !o.goingAway() {
			l.mu.Lock()
			l.renewing = true
			l.mu.Unlock()
			return true
		}
	}
	return false
}

// sameEdge reports whether two sessions come from one edge: the same
// certificate name from the same host.
func sameEdge(a, b tunnel.Info) bool {
	return a.PeerName == b.PeerName && hostOf(a.RemoteAddr) == hostOf(b.RemoteAddr)
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
