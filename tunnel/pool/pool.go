// Package pool keeps tunnel sessions to a set of relays up and hands out
// streams on the healthiest, least-loaded session.
//
// One supervisor goroutine per session slot owns that slot's dial, hold
// and redial cycle. Each relay has SessionsPerRelay base slots, kept up for
// good, and, while the load asks for them, extra slots up to
// MaxSessionsPerRelay (see scale.go and autoscale.go). A base slot's cycle
// is a few fast retries, then full-jitter exponential backoff up to MaxBackoff, reset only after a
// session has stayed up for HealthyAfter. Each session carries a control
// stream (proto Ping/Pong/GoAway): probes measure its round trip through
// the relay, find a dead relay within ProbeTimeout, and make a relay
// restarted after a crash answer (a QUIC stateless reset) within one probe
// interval. A session that has answered no probe and carried no data for
// a while gets new streams only when no session proves alive within a few
// probe intervals (see link.silent). GoAway moves new streams away at once
// while a replacement session is dialed (make before break) and the old
// one drains. A circuit
// breaker per relay takes a failing relay out and puts it back by itself.
// Close stops every goroutine and waits for them.
package pool

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/tunnel"
)

// Config configures a Pool. Zero values mean the documented defaults.
type Config struct {
	// Dialers reach the relays, one Dialer per relay. Required.
	Dialers []tunnel.Dialer
	// SessionsPerRelay is how many sessions to keep to each relay at all
	// times, so that one connection's loss never stalls every request.
	// Zero means 2.
	SessionsPerRelay int
	// MaxSessionsPerRelay bounds the sessions to each relay while the load
	// asks for more (Scale says when); extra sessions are dialed ahead of
	// need and retired, after their streams have finished, once the load
	// has stayed low. Zero means 16, or SessionsPerRelay if that is more;
	// set it to SessionsPerRelay for a fixed number of sessions.
	MaxSessionsPerRelay int
	// Scale tunes when sessions are added and retired.
	Scale ScaleConfig
	// MinBackoff is the delay of the fast retries and the base of the
	// exponential backoff; MaxBackoff caps it. Zero means 100ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// FastRetries is how many attempts after a loss wait only MinBackoff
	// before backoff grows. Zero means 3.
	FastRetries int
	// HealthyAfter is how long a session must stay up before the backoff
	// resets, so a relay that accepts and then drops sessions does not get
	// redialed in a tight loop. Zero means 10s.
	HealthyAfter time.Duration
	// DialTimeout bounds one connection attempt; zero means 10s.
	// FastDialTimeout bounds the fast retries instead (zero means 1s): a
	// QUIC handshake sent to a relay that is down is retransmitted with a
	// growing delay, and a fresh attempt reaches a relay that has just come
	// back sooner.
	DialTimeout, FastDialTimeout time.Duration
	// ProbeInterval is how often each session is probed on its control
	// stream; zero means 500ms. ProbeTimeout is how long a probe may stay
	// unanswered before the session is declared dead and closed, provided
	// its streams received no data in that time either (then it is
	// congested, not dead); zero means 15s.
	ProbeInterval, ProbeTimeout time.Duration
	// BreakerThreshold consecutive failures of a relay's sessions or
	// streams open its circuit breaker (zero means 5); BreakerCooldown is
	// how long it stays open before a probe may close it (zero means 1s;
	// doubled, up to MaxBackoff, each time the probe fails).
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
}

// ErrClosed is returned by OpenStream after Close.
var ErrClosed = errors.New("pool: closed")

// Pool maintains the sessions. Create it with New; it is safe for concurrent
// use.
type Pool struct {
	cfg    Config
	log    *zap.Logger
	relays []*relay
	// expected counts streams announced by Expect and not yet withdrawn.
	expected atomic.Int64

	pickMu   sync.Mutex // serialises pick's choose-and-reserve
	mu       sync.Mutex
	live     map[*slot]*link
	draining map[*link]bool // sessions after GoAway, until closed
	changed  chan struct{}  // closed and replaced whenever live may have changed
	closedCh chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// relay is one relay's shared state: its breaker and counters.
type relay struct {
	dialer  tunnel.Dialer
	br      *breaker
	stats   relayCounters
	minRTT  atomic.Int64 // lowest probe round trip through this relay, ns; 0 before the first
	waiting atomic.Int64 // new streams waiting for a session being dialed

	// Scaling; scaler and kick are nil when the number of sessions is fixed.
	scaler *scaler       // used by the relay's autoscale goroutine only
	kick   chan struct{} // wakes autoscale after a stream was opened
	mu     sync.Mutex    // guards the fields below
	extras []*slot       // extra slots not yet retired, dialing or up
	// extraFails counts consecutive failed extra dials; no extra session
	// is dialed before growAfter, so a relay that refuses more sessions is
	// not asked again on every stream.
	extraFails int
	growAfter  time.Time
	events     map[string]int64 // scale events by "up:reason" or "down:reason"
}

type relayCounters struct {
	dials, dialFailures, lost, goAways, probeTimeouts, streamFailures atomic.Int64
}

type slot struct {
	relay *relay
	index int
	// Extra slots only: retire is closed when autoscale retires the slot;
	// up is guarded by relay.mu and tells a dialing slot from one that
	// holds a session.
	extra  bool
	retire chan struct{}
	up     bool
}

// New starts the supervisors and returns at once; sessions come up in the
// background.
func New(cfg Config) (*Pool, error) {
	if len(cfg.Dialers) == 0 {
		return nil, errors.New("pool: no relays configured")
	}
	cfg = withDefaults(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg: cfg, log: cfg.Logger.Named("pool"),
		live: map[*slot]*link{}, draining: map[*link]bool{}, changed: make(chan struct{}),
		closedCh: make(chan struct{}), cancel: cancel,
	}
	for _, d := range cfg.Dialers {
		r := &relay{dialer: d}
		log := p.log.With(zap.String("relay", d.Addr()))
		r.br = newBreaker(cfg.BreakerThreshold, cfg.BreakerCooldown, cfg.MaxBackoff, func(from, to breakerState) {
			log.Warn("relay circuit breaker "+to.String(), zap.Stringer("from", from))
			p.signal()
		})
		p.relays = append(p.relays, r)
		for i := range cfg.SessionsPerRelay {
			p.wg.Add(1)
			go p.supervise(ctx, &slot{relay: r, index: i})
		}
		if cfg.MaxSessionsPerRelay > cfg.SessionsPerRelay {
			r.scaler, r.kick, r.events = newScaler(cfg), make(chan struct{}, 1), map[string]int64{}
			p.wg.Add(1)
			go p.autoscale(ctx, r)
		}
	}
	return p, nil
}

func withDefaults(cfg Config) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.SessionsPerRelay <= 0 {
		cfg.SessionsPerRelay = 2
	}
	if cfg.MaxSessionsPerRelay <= 0 {
		cfg.MaxSessionsPerRelay = max(16, cfg.SessionsPerRelay)
	}
	cfg.MaxSessionsPerRelay = max(cfg.MaxSessionsPerRelay, cfg.SessionsPerRelay)
	if cfg.FastRetries <= 0 {
		cfg.FastRetries = 3
	}
	if cfg.BreakerThreshold <= 0 {
		cfg.BreakerThreshold = 5
	}
	def(&cfg.MinBackoff, 100*time.Millisecond)
	def(&cfg.MaxBackoff, 30*time.Second)
	def(&cfg.HealthyAfter, 10*time.Second)
	def(&cfg.DialTimeout, 10*time.Second)
	def(&cfg.FastDialTimeout, time.Second)
	def(&cfg.ProbeInterval, 500*time.Millisecond)
	def(&cfg.ProbeTimeout, 15*time.Second)
	def(&cfg.BreakerCooldown, time.Second)
	cfg.Scale = scaleDefaults(cfg.Scale, cfg.ProbeInterval, cfg.MaxSessionsPerRelay)
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg
}

// endReason is why hold gave a session up.
type endReason int

const (
	endLost     endReason = iota // the session died
	endGoAway                    // the relay is draining it
	endShutdown                  // the pool is closing
	endRetired                   // autoscale retired the slot
)

// supervise owns one slot: dial, hold until the session ends, back off,
// dial again, until ctx ends.
func (p *Pool) supervise(ctx context.Context, s *slot) {
	defer p.wg.Done()
	r := s.relay
	log := p.log.With(zap.String("relay", r.dialer.Addr()), zap.Int("slot", s.index))
	var failures int         // consecutive failed attempts and short-lived sessions
	var restarting time.Time // when the relay last drained a session (GoAway)
	delay := time.Duration(0)
	if s.extra {
		defer r.removeExtra(s)
	}
	for ctx.Err() == nil {
		sleep(ctx, delay)
		if ctx.Err() != nil || s.retired() {
			return
		}
		timeout := p.cfg.DialTimeout
		// An extra session is dialed once, while another session carries
		// the load: it gets the full timeout (a lost SYN across a lossy
		// border alone costs a second).
		if failures < p.cfg.FastRetries && !s.extra {
			timeout = min(timeout, p.cfg.FastDialTimeout)
		}
		r.stats.dials.Add(1)
		sess, err := p.dial(ctx, r.dialer, timeout)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.stats.dialFailures.Add(1)
			failures++
			delay = backoff(p.cfg.MinBackoff, p.cfg.MaxBackoff, p.cfg.FastRetries, failures)
			if s.extra { // autoscale decides again, after a backoff, whether it is still wanted
				r.extraDialed(false, p.cfg.MinBackoff, p.cfg.MaxBackoff)
				log.Warn("extra tunnel session dial failed", zap.String("reason", certs.DescribeVerifyError(err)))
				return
			}
			level := zap.WarnLevel
			if time.Since(restarting) < restartRedial {
				// The relay said it is restarting: it will be back after its
				// drain, which can take a while, and requests wait for it.
				delay, level = min(delay, p.cfg.MinBackoff), zap.DebugLevel
			}
			log.Log(level, "tunnel dial failed", zap.String("reason", certs.DescribeVerifyError(err)),
				zap.Int("attempt", failures), zap.Duration("retry_in", delay))
			continue
		}
		l := p.newLink(ctx, r, sess)
		logUp(log, "tunnel session up", sess, zap.Int("attempt", failures+1))
		if s.extra {
			r.extraDialed(true, p.cfg.MinBackoff, p.cfg.MaxBackoff)
		}
		why, l, lostErr := p.hold(ctx, s, l, log)
		r.setUp(s, false)
		// A session that stayed up resets the backoff; so does one the relay
		// drained on purpose after a while (a restart, not a flapping relay).
		if up := time.Since(l.up); up >= p.cfg.HealthyAfter || why == endGoAway && up >= goAwayHealthy {
			failures = 0
		}
		switch why {
		case endShutdown, endRetired:
			return
		case endGoAway:
			r.stats.goAways.Add(1)
			if s.extra && l.renewal.Load() {
				// The relay only renews its sessions (once idle, so often
				// many at once, at the end of a burst): an extra session's
				// replacement is autoscale's to decide, from the load, not
				// a dial wave's.
				r.countEvent(decision{action: shrink, n: 1, reason: reasonRenewed})
				log.Info("the renewed session was an extra one: autoscale decides whether to dial another")
				return
			}
			// Make before break: the old session keeps its streams while the
			// replacement is dialed at once.
			delay, restarting = 0, time.Now()
		case endLost:
			r.stats.lost.Add(1)
			r.br.failure(false)
			failures++
			delay = backoff(p.cfg.MinBackoff, p.cfg.MaxBackoff, p.cfg.FastRetries, failures)
			if s.extra {
				log.Warn("extra tunnel session lost", zap.Error(lostErr), zap.Duration("up_for", time.Since(l.up)))
				return
			}
			log.Warn("tunnel session lost", zap.Error(lostErr), zap.Duration("up_for", time.Since(l.up)),
				zap.Duration("retry_in", delay))
		}
	}
}

// hold serves l in slot s until its session dies, the relay sends GoAway,
// or ctx ends. When the slot's dialer is a tunnel.Upgrader and the session
// runs on its fallback transport, hold tries the preferred transport every
// RetryInterval; on success the new session takes the slot first (make
// before break) and the old one drains. It returns why the slot's session
// ended and the link it ended on (the upgraded one, after an upgrade), and
// for a lost session the session's error, read before the pool closes its
// side.
func (p *Pool) hold(ctx context.Context, s *slot, l *link, log *zap.Logger) (endReason, *link, error) {
	p.setLive(s, l)
	// Up only once live: a new stream that finds no session dialing
	// (waitForDial) must find this one among the live ones, or it settles
	// for a busier session while this one comes up empty.
	s.relay.setUp(s, true)
	up, _ := s.relay.dialer.(tunnel.Upgrader)
	for {
		var retry <-chan time.Time
		var t *time.Timer
		if up != nil && !up.IsPreferred(l.sess) {
			t = time.NewTimer(up.RetryInterval())
			retry = t.C
		}
		stop := func() {
			if t != nil {
				t.Stop()
			}
		}
		select {
		case <-l.sess.Done():
			stop()
			err := l.sess.Err()
			p.setLive(s, nil)
			l.close()
			return endLost, l, err
		case <-l.goAway:
			stop()
			p.setLive(s, nil)
			msg := "relay is going away; draining the session and dialing a replacement"
			if l.renewal.Load() {
				msg = "relay asked for the session to be renewed; draining it"
			}
			log.Info(msg, zap.String("reason", l.goAwayMsg()), zap.Int("streams", l.numStreams()))
			p.drainThenClose(ctx, l)
			return endGoAway, l, nil
		case <-ctx.Done():
			stop()
			p.setLive(s, nil)
			l.close()
			return endShutdown, l, nil
		case <-s.retire: // nil, never ready, for a base slot
			stop()
			p.setLive(s, nil)
			log.Debug("retired session draining", zap.Int("streams", l.numStreams()))
			p.drainThenClose(ctx, l)
			return endRetired, l, nil
		case <-retry:
			next, err := up.DialPreferred(ctx)
			if err != nil {
				log.Debug("preferred transport still unavailable", zap.Error(err))
				continue
			}
			logUp(log, "tunnel session upgraded", next, zap.String("from", string(l.sess.Info().Transport)))
			old := l
			l = p.newLink(ctx, s.relay, next)
			p.setLive(s, l)
			p.drainThenClose(ctx, old)
		}
	}
}

func logUp(log *zap.Logger, msg string, sess tunnel.Session, extra ...zap.Field) {
	info := sess.Info()
	log.Info(msg, append([]zap.Field{zap.String("transport", string(info.Transport)),
		zap.Stringer("local", info.LocalAddr), zap.String("peer", info.PeerName)}, extra...)...)
}

// drainThenClose closes a replaced session once its streams are done (or
// after drainLimit, or at pool shutdown). It gets new streams only while
// its relay still accepts them and no other session is up (see pick).
func (p *Pool) drainThenClose(ctx context.Context, l *link) {
	p.mu.Lock()
	p.draining[l] = true
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.draining, l)
			p.mu.Unlock()
			l.close()
		}()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		limit := time.NewTimer(drainLimit)
		defer limit.Stop()
		// A relay that still accepts new streams on the session (the only
		// relay restarting) keeps it until it says it no longer does.
		for l.numStreams() > 0 || l.accepting.Load() {
			select {
			case <-tick.C:
			case <-limit.C:
				return
			case <-l.sess.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	}()
}

// restartRedial is how long after a GoAway the relay is redialed every
// MinBackoff instead of with growing backoff: about the longest drain.
const restartRedial = time.Minute

// goAwayHealthy is how long a session must have been up for its GoAway to
// count as a deliberate drain that resets the backoff.
const goAwayHealthy = time.Second

// drainLimit bounds how long a replaced session may keep serving the
// streams it had; long enough for a reasoning model's answer.
const drainLimit = 15 * time.Minute

func (p *Pool) dial(ctx context.Context, d tunnel.Dialer, timeout time.Duration) (tunnel.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return d.Dial(ctx)
}

func (p *Pool) setLive(s *slot, l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l == nil {
		delete(p.live, s)
	} else {
		p.live[s] = l
	}
	p.signalLocked()
}

// signal wakes every OpenStream and WaitLive that waits for a change.
func (p *Pool) signal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signalLocked()
}

func (p *Pool) signalLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// OpenStream opens a stream on the healthiest, least-loaded live session.
// With no session usable it waits for one until ctx ends.
func (p *Pool) OpenStream(ctx context.Context) (tunnel.Stream, error) {
	var lastErr error
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	var dw dialWait
	defer dw.release()
	var silentSince time.Time // when only silent sessions were found first
	for {
		silentOK := !silentSince.IsZero() && time.Since(silentSince) >= p.silentWait()
		l, changed, silent, err := p.pick(silentOK)
		if err != nil {
			return nil, err
		}
		if silent {
			// Only silent sessions are up: wait for a replacement, or an
			// answer on one of them (pong signals), or data on one (seen
			// at the next look), for at most silentWait.
			if silentSince.IsZero() {
				silentSince = time.Now()
			}
			retry.Reset(min(p.cfg.ProbeInterval, time.Until(silentSince.Add(p.silentWait()))))
		}
		if l != nil && p.waitForDial(l, &dw, retry, changed) {
			l.streams.Add(-1) // give back the place pick reserved
			l = nil
		}
		if l != nil {
			st, err := p.openOn(ctx, l)
			if err == nil {
				l.relay.kickScale()
				return st, nil
			}
			if ctx.Err() == nil { // keep the session's reason, not our own deadline
				lastErr = err
			}
			// The session failed under us and its supervisor will notice; try
			// again shortly with whatever is live then.
			retry.Reset(20 * time.Millisecond)
		}
		select {
		case <-changed:
		case <-retry.C:
		case <-p.closedCh:
			return nil, ErrClosed
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("no tunnel session available: %w (last error: %v)", ctx.Err(), lastErr)
			}
			return nil, fmt.Errorf("no tunnel session available: %w", ctx.Err())
		}
	}
}

// openOn opens a stream on l. A session at its stream limit (every one is,
// or l would not have been picked) may make a QUIC open wait for a stream
// to end there; the attempt is cut short instead, so that OpenStream tries
// again with whatever is live then, a session autoscale has just added
// included.
func (p *Pool) openOn(ctx context.Context, l *link) (tunnel.Stream, error) {
	if l.numStreams() <= p.cfg.Scale.MaxStreams { // this stream's reserved place included
		return l.open(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, capRetry)
	defer cancel()
	return l.open(ctx)
}

// capRetry bounds an open on a session at its stream limit.
const capRetry = 50 * time.Millisecond

// pick returns the usable session with the lowest cost (see link.cost),
// with a place reserved for the new stream in its streams count, or nil
// and a channel that closes when the set of sessions changes. Sessions
// that are draining, dead, or on a relay whose breaker is not closed are
// not usable. When none is, a draining session whose relay still accepts
// streams (GoAway with Accepting) is: the only relay restarting keeps
// serving until its replacement is up. Draining sessions are not counted
// by Live, so a request waits on them rather than failing after
// SessionWait (see Draining).
// A silent session (see link.silent) comes last of all, and only when
// silentOK is set; silent reports that one was passed over for want of it,
// so that the caller waits, up to silentWait, for a session that proves
// alive.
// Choosing and reserving happen under pickMu: many OpenStreams woken at
// once (a session came up after none was) would otherwise all see the same
// empty session and all take it.
func (p *Pool) pick(silentOK bool) (l *link, changed <-chan struct{}, silent bool, err error) {
	return p.pickWhere(nil, true, silentOK)
}

// silentWait is how long a new stream waits for a session that proves
// alive before it settles for a silent one: a few probe rounds, time for
// a lost session's slot to redial or for a slow path to answer. A relay
// that answers no probe but serves streams is thus still used.
func (p *Pool) silentWait() time.Duration {
	return min(4*p.cfg.ProbeInterval, p.cfg.ProbeTimeout)
}

// pickWhere is pick among the live sessions ok accepts (all when ok is
// nil); the draining fallback is considered only when fallback is set, a
// silent session only when silentOK is.
func (p *Pool) pickWhere(ok func(*link) bool, fallback, silentOK bool) (*link, <-chan struct{}, bool, error) {
	p.mu.Lock()
	select {
	case <-p.closedCh:
		p.mu.Unlock()
		return nil, nil, false, ErrClosed
	default:
	}
	links := make([]*link, 0, len(p.live))
	for s, l := range p.live {
		if !s.retired() { // its supervisor is about to drain it
			links = append(links, l)
		}
	}
	var draining []*link
	if fallback {
		for l := range p.draining {
			draining = append(draining, l)
		}
	}
	changed := p.changed
	p.mu.Unlock()
	// Breakers are read outside mu: a transition calls back into signal.
	p.pickMu.Lock()
	defer p.pickMu.Unlock()
	now := time.Now()
	var best, bestSilent *link
	bestCost, silentCost := math.Inf(1), math.Inf(1)
	for _, l := range links {
		if !l.usable() || l.relay.br.current(now) != breakerClosed || (ok != nil && !ok(l)) {
			continue
		}
		ld := l.load(now)
		c := l.cost(ld)
		if l.silent(ld, now) {
			if c < silentCost {
				bestSilent, silentCost = l, c
			}
		} else if c < bestCost {
			best, bestCost = l, c
		}
	}
	for _, l := range draining {
		if best != nil {
			break
		}
		if l.accepting.Load() && l.alive() {
			best = l
		}
	}
	silent := false
	if best == nil && bestSilent != nil {
		if silentOK {
			best = bestSilent
		} else {
			silent = true
		}
	}
	if best != nil {
		best.streams.Add(1)
	}
	return best, changed, silent, nil
}

// OpenHedge opens a second stream for the request already on first (a
// stream this pool handed out): on another live session to the same relay,
// never on first's own session. The relay refuses the later of two copies
// of one request ID (proto.CodeDuplicate) only among its own sessions, so
// a copy sent to another relay could reach the provider twice. It does
// not wait: with no such session usable right now (or all of them at
// their stream limit) it fails with ErrNoHedge, and the request goes on
// its one stream.
func (p *Pool) OpenHedge(ctx context.Context, first tunnel.Stream) (tunnel.Stream, error) {
	fs, ok := first.(*stream)
	if !ok {
		return nil, ErrNoHedge
	}
	// A session at its stream limit is skipped rather than waited on (see
	// openOn): the hedge must not hold the request back.
	other := func(l *link) bool {
		return l != fs.l && l.relay == fs.l.relay && l.numStreams() < p.cfg.Scale.MaxStreams
	}
	l, _, _, err := p.pickWhere(other, false, false) // a hedge on a silent session would help nothing
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, ErrNoHedge
	}
	return p.openOn(ctx, l)
}

// HedgeUseful reports whether a hedge of the request on first pays: its
// session holds every stream behind one lost packet (tunnel.LossHoldsAll:
// WebSocket on a long path), and its congestion control is model-based,
// so the answer's second copy does not crowd a window that every loss
// halves. In the lab, hedging under reno raised keep-alive TTFT p99 at
// 250 ms, 3 % in two of three pairs; with the relay mirroring only an
// answer's first 2 KiB there it helped a keep-alive cell run alone, but
// across the reno matrix it cost fresh bursts their TTFT p50 (the
// requests' second copies queue behind the burst) and met fewer
// keep-alive links (scripts/lab/README.md, "2026-12-07, late morning").
func (p *Pool) HedgeUseful(first tunnel.Stream) bool {
	fs, ok := first.(*stream)
	if !ok {
		return false
	}
	return tunnel.LossHoldsAll(fs.l.sess) > 0 && fs.l.sess.Info().ModelBasedCongestion()
}

// ErrNoHedge is OpenHedge's answer when no other session to the first
// stream's relay is usable.
var ErrNoHedge = errors.New("no second tunnel session to the same relay for a hedge")

// Draining is the number of sessions whose relay announced a drain and
// that are not closed yet: a relay restarting, whose replacement session
// will come up when it is back.
func (p *Pool) Draining() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.draining)
}

// Live is the number of sessions currently up and taking streams.
func (p *Pool) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

// WaitLive blocks until at least n sessions are up or ctx ends.
func (p *Pool) WaitLive(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		got, changed := len(p.live), p.changed
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tunnel sessions up: %w", got, n, ctx.Err())
		}
	}
}

// Close stops every supervisor, closes all sessions and waits.
func (p *Pool) Close() error {
	p.mu.Lock()
	select {
	case <-p.closedCh:
		p.mu.Unlock()
		return nil
	default:
	}
	close(p.closedCh)
	p.mu.Unlock()
	p.cancel() // outside the lock: supervisors take it in setLive
	p.wg.Wait()
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
