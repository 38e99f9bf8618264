package pool

import (
	"context"
	"slices"
	"time"

	"github.com/strait/strait/tunnel"
	"go.uber.org/zap"
)

func scaleDefaults(s ScaleConfig, probeInterval time.Duration, maxSessions int) ScaleConfig {
	if s.TargetStreams <= 0 {
		// 8, not 16: in the lab (150 ms, 3 % loss, 256 streams) a fresh
		// burst placed on fewer sessions left QUIC's keep-alive TTFT p50 at
		// 414 ms against 220 ms with 8, and streams never move once placed.
		s.TargetStreams = 8
	}
	if s.MaxStreams <= 0 {
		s.MaxStreams = 4096
	}
	if s.MaxDials <= 0 {
		// All the sessions a burst asks for, in one wave: a second wave
		// starts only when the first is up, three round trips later over
		// TCP, and the streams waiting for it have by then given up and
		// piled onto the sessions already up.
		s.MaxDials = maxSessions
	}
	if s.ShrinkAfter <= 0 {
		s.ShrinkAfter = 30 * time.Second
	}
	if s.CongestionCooldown <= 0 {
		s.CongestionCooldown = 2 * probeInterval
	}
	return s
}

// autoscale owns one relay's extra slots: every ProbeInterval, and right
// after a stream was opened, it asks the relay's scaler what to do and
// starts or retires extra slots. The slots' own supervisors dial and drain.
func (p *Pool) autoscale(ctx context.Context, r *relay) {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.ProbeInterval)
	defer t.Stop()
	log := p.log.With(zap.String("relay", r.dialer.Addr()))
	for {
		select {
		case <-t.C:
		case <-r.kick:
		case <-ctx.Done():
			return
		}
		p.scaleStep(ctx, r, time.Now(), log)
	}
}

// scaleStep takes one scaling decision for r and carries it out.
func (p *Pool) scaleStep(ctx context.Context, r *relay, now time.Time, log *zap.Logger) {
	links := p.relayLinks(r)
	in := scaleInput{sessions: make([]sessionLoad, 0, len(links))}
	for _, l := range links {
		in.sessions = append(in.sessions, l.load(now))
	}
	in.slots = r.numSlots(p.cfg.SessionsPerRelay)
	in.dialing = r.numDialing()
	in.waiting = int(r.waiting.Load()) + p.expectedShare()
	in.floor = p.floor(links)
	d := r.scaler.decide(now, in)
	switch d.action {
	case grow:
		if why := r.growBlocked(now); why != "" {
			log.Debug("tunnel sessions not grown", zap.String("reason", d.reason), zap.String("because", why))
			return
		}
		for range d.n {
			p.addExtra(ctx, r)
		}
	case shrink:
		if !p.retireOne(r, links) {
			return
		}
	default:
		return
	}
	r.countEvent(d)
	log.Info("tunnel sessions "+d.action.String(), zap.String("reason", d.reason), zap.Int("sessions", len(in.sessions)),
		zap.Int("slots", in.slots), zap.Int("change", d.n), zap.Int("streams", totalStreams(in.sessions)))
}

// floor is ScaleConfig.MinWebSocket when one of a relay's live links runs
// over WebSocket, else 0.
func (p *Pool) floor(links []*link) int {
	for _, l := range links {
		if l.sess.Info().Transport == tunnel.TransportWS {
			return p.cfg.Scale.MinWebSocket
		}
	}
	return 0
}

func totalStreams(ls []sessionLoad) int {
	n := 0
	for _, l := range ls {
		n += l.streams
	}
	return n
}

// Expect announces n streams on their way (n < 0 withdraws them): a client
// has just connected, and its request will follow its TLS handshake, which
// takes a few hundred milliseconds when a burst of clients arrives at
// once. Autoscale counts announced streams as streams waiting for a
// session, so the sessions such a burst needs are dialed while its clients
// handshake instead of after their requests arrive: a session dial takes
// two or three round trips, which the burst's streams would otherwise wait
// for. The caller withdraws each stream once its request is read (it then
// opens a real stream) or its connection closes without one. Growth stays
// within MaxSessionsPerRelay, and extras retire after ShrinkAfter of low
// load as ever, so connections that never send a request cost at most
// that. Without autoscale Expect does nothing.
func (p *Pool) Expect(n int) {
	if p.expected.Add(int64(n)) <= 0 || n <= 0 {
		return
	}
	for _, r := range p.relays {
		r.kickScale()
	}
}

// expectedShare is one relay's part of the announced streams: the pool
// does not know where they will go, and picks the cheapest session among
// all relays, so each relay prepares for its even share.
func (p *Pool) expectedShare() int {
	n := p.expected.Load()
	if n <= 0 {
		return 0
	}
	return int((n + int64(len(p.relays)) - 1) / int64(len(p.relays)))
}

// relayLinks returns r's live links that take new streams; a retired
// slot's session is not one of them, though its supervisor may not have
// taken it out of live yet.
func (p *Pool) relayLinks(r *relay) []*link {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*link
	for s, l := range p.live {
		if s.relay == r && !s.retired() && l.usable() {
			out = append(out, l)
		}
	}
	return out
}

// addExtra starts a supervisor for a new extra slot with the lowest free
// index, so slot labels in metrics stay within [0, MaxSessionsPerRelay).
func (p *Pool) addExtra(ctx context.Context, r *relay) {
	r.mu.Lock()
	idx := p.cfg.SessionsPerRelay
	for slices.ContainsFunc(r.extras, func(s *slot) bool { return s.index == idx }) {
		idx++
	}
	s := &slot{relay: r, index: idx, extra: true, retire: make(chan struct{})}
	r.extras = append(r.extras, s)
	r.mu.Unlock()
	p.wg.Add(1)
	go p.supervise(ctx, s)
}

// retireOne retires the extra slot whose session carries the fewest
// streams: it gets no new streams from now on and closes once they are
// done. It reports false when it retired none: no extra slot not retired
// yet holds a usable session. A retired slot stays in live until its
// supervisor sees the retirement, which takes a while when it is busy (an
// upgrade dial): it must not be retired, and counted, again.
func (p *Pool) retireOne(r *relay, links []*link) bool {
	var best *slot
	bestStreams := 0
	p.mu.Lock()
	for s, l := range p.live {
		if !s.extra || s.relay != r || s.retired() || !slices.Contains(links, l) {
			continue
		}
		if n := l.numStreams(); best == nil || n < bestStreams {
			best, bestStreams = s, n
		}
	}
	p.mu.Unlock()
	if best == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.Index(r.extras, best)
	if i < 0 { // its supervisor ended meanwhile (the session was lost)
		return false
	}
	r.extras = slices.Delete(r.extras, i, i+1)
	close(best.retire)
	return true
}

// removeExtra forgets an extra slot whose supervisor has ended.
func (r *relay) removeExtra(s *slot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := slices.Index(r.extras, s); i >= 0 {
		r.extras = slices.Delete(r.extras, i, i+1)
	}
}

func (r *relay) setUp(s *slot, up bool) {
	if !s.extra {
		return
	}
	r.mu.Lock()
	s.up = up
	r.mu.Unlock()
}

// retired reports whether autoscale has retired the slot.
func (s *slot) retired() bool {
	select {
	case <-s.retire: // nil for base slots: never ready
		return true
	default:
		return false
	}
}

func (r *relay) countEvent(d decision) {
	dir := "up"
	if d.action == shrink {
		dir = "down"
	}
	r.mu.Lock()
	r.events[dir+":"+d.reason] += int64(d.n)
	r.mu.Unlock()
}

// kickScale wakes the relay's autoscale without blocking: a burst of new
// streams is answered with new sessions before the next tick.
func (r *relay) kickScale() {
	select {
	case r.kick <- struct{}{}:
	default: // already woken, or scaling is off (nil channel)
	}
}

// noteRTT keeps the lowest round trip seen through the relay: the estimate
// for a session that has not been measured yet.
func (r *relay) noteRTT(sample time.Duration) {
	for {
		cur := r.minRTT.Load()
		if cur != 0 && cur <= int64(sample) || r.minRTT.CompareAndSwap(cur, int64(sample)) {
			return
		}
	}
}

// dialWait is one OpenStream's wait for a session being dialed.
type dialWait struct {
	until time.Time
	r     *relay // set while the wait counts in r.waiting
}

func (w *dialWait) release() {
	if w.r != nil {
		w.r.waiting.Add(-1)
		w.r = nil
	}
}

// overloadedStreams is how many streams a session carries before a new
// stream would rather wait a moment for a session being dialed: twice
// TargetStreams where one loss-based window (reno, cubic, QUIC's NewReno,
// or an unknown one) is shared by all of the session's streams, which a
// lossy link holds small, and eight times where the congestion control is
// model-based (BBR) and the window is not loss-limited. There the wait
// would only cost the stream a dial (three round trips over TCP, TLS and
// the WebSocket upgrade) in time to first byte: in the lab (150 ms, 3 %
// loss, a burst of 256 fresh clients, bbr) the streams that waited for new
// sessions had their first byte after 620-1370 ms at the median of each
// session, those placed on the six sessions already up after 270-490 ms.
func overloadedStreams(info tunnel.Info, target int) int {
	if info.ModelBasedCongestion() {
		return 8 * target
	}
	return 2 * target
}

// waitForDial reports whether a new stream should wait (with retry armed)
// instead of going to l: l already carries overloadedStreams and the
// relay has a session on its way, so the stream will likely deliver sooner
// on that session than behind l's queue. A burst of streams arriving at
// once then spreads over the new sessions instead of piling onto the base
// ones for its whole life. The wait is bounded by a few round trips (about
// what a dial takes), after which the stream takes the best session live.
//
// changed is the channel pick returned with l: closed when the live
// sessions changed after pick looked at them.
func (p *Pool) waitForDial(l *link, w *dialWait, retry *time.Timer, changed <-chan struct{}) bool {
	r := l.relay
	// numStreams includes the place pick reserved for this stream.
	if r.scaler == nil || l.numStreams() <= l.overloadAt {
		return false
	}
	now := time.Now()
	// A session is on its way, or autoscale is about to dial one: it lags
	// a burst by a scheduling round, and the first streams of the burst
	// would otherwise all land on the sessions already up.
	if r.numDialing() == 0 && (r.numSlots(p.cfg.SessionsPerRelay) >= p.cfg.MaxSessionsPerRelay || r.growBlocked(now) != "") {
		// None is on its way now, but one may have come up since pick
		// looked (an extra counts as dialing until it is live): pick
		// again at once rather than settle on l, busier than the new one.
		select {
		case <-changed:
			return true
		default:
			return false
		}
	}
	if w.until.IsZero() {
		w.until = now.Add(min(max(4*time.Duration(r.minRTT.Load()), minDialWait), maxDialWait))
		w.r = r
		r.waiting.Add(1) // autoscale counts it as load
		r.kickScale()
	}
	if !now.Before(w.until) {
		w.release()
		return false
	}
	retry.Reset(w.until.Sub(now))
	return true
}

// Bounds of a new stream's wait for a session being dialed.
const (
	minDialWait = 100 * time.Millisecond
	maxDialWait = 2 * time.Second
)

// growBlocked says why no extra session may be dialed now, or "".
func (r *relay) growBlocked(now time.Time) string {
	if r.br.current(now) != breakerClosed {
		return "the relay's breaker is open" // dials would fail; the breaker's probe comes first
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Before(r.growAfter) {
		return "extra dials failed; backing off"
	}
	return ""
}

// extraDialed records the outcome of an extra session's dial: failures
// push the next extra dial back exponentially (full jitter, from lo up to
// hi), a success clears them.
func (r *relay) extraDialed(ok bool, lo, hi time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.extraFails, r.growAfter = 0, time.Time{}
		return
	}
	r.extraFails++
	r.growAfter = time.Now().Add(backoff(lo, hi, 1, r.extraFails))
}

// numSlots is how many sessions r keeps up or is dialing, base included.
func (r *relay) numSlots(base int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return base + len(r.extras)
}

func (r *relay) numDialing() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, s := range r.extras {
		if !s.up {
			n++
		}
	}
	return n
}
