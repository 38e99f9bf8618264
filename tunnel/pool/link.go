package pool

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
)

// link is one session as the pool sees it: its load, its control stream
// and what the probes on it measured.
type link struct {
	p     *Pool
	relay *relay
	sess  tunnel.Session
	up    time.Time
	// overloadAt is how many streams the session carries before a new
	// stream would rather wait for a session being dialed (waitForDial).
	overloadAt int

	streams  atomic.Int64 // request streams open through the pool
	fails    atomic.Int64 // streams broken by the tunnel on this session
	lastData atomic.Int64 // Unix nanoseconds when a request stream last read data
	closing  atomic.Bool  // the pool is closing it: errors are not failures
	draining atomic.Bool  // GoAway received
	// renewal: the GoAway only asked for the session to be replaced
	// (proto.GoAway.Renewal), the relay is not going away.
	renewal atomic.Bool
	// accepting: the last GoAway said the relay still takes new streams.
	accepting atomic.Bool

	goAway  chan struct{} // closed on GoAway
	goOnce  sync.Once
	goMsg   atomic.Value // string
	ctl     tunnel.Stream
	ctlGone chan struct{} // closed when the control stream has ended
	ctlDone chan struct{} // closed when the control goroutines have ended

	mu     sync.Mutex
	srtt   time.Duration        // smoothed probe round trip; 0 before the first
	minRTT time.Duration        // lowest probe round trip; 0 before the first
	sent   map[uint64]time.Time // unanswered probes
	oldest time.Time            // send time of the oldest unanswered probe
	seq    uint64
	ctlw   *proto.Writer
}

// ctlOpenTimeout bounds opening the control stream; a session that cannot
// open one stream is not worth keeping.
const ctlOpenTimeout = 5 * time.Second

// newLink wraps a new session and starts probing it. A relay that does not
// speak the control protocol (it answers the first Ping with an error End)
// leaves the session without probes: liveness then rests on the
// transport's heartbeat alone, and so does its breaker (see probe).
func (p *Pool) newLink(ctx context.Context, r *relay, sess tunnel.Session) *link {
	l := &link{p: p, relay: r, sess: sess, up: time.Now(), goAway: make(chan struct{}),
		ctlGone: make(chan struct{}), ctlDone: make(chan struct{}), sent: map[uint64]time.Time{},
		overloadAt: overloadedStreams(sess.Info(), p.cfg.Scale.TargetStreams)}
	octx, cancel := context.WithTimeout(ctx, ctlOpenTimeout)
	st, err := sess.OpenStream(octx)
	cancel()
	if err != nil {
		close(l.ctlDone)
		return l
	}
	l.ctl, l.ctlw = st, proto.NewWriter(st)
	if err := l.ping(); err != nil {
		st.Close()
		close(l.ctlDone)
		return l
	}
	var wg sync.WaitGroup
	wg.Add(2)
	p.wg.Add(1)
	go func() { defer wg.Done(); l.readControl() }()
	go func() { defer wg.Done(); l.probe() }()
	go func() { defer p.wg.Done(); wg.Wait(); close(l.ctlDone) }()
	return l
}

// ping sends the next probe. Only one goroutine at a time calls it (newLink,
// then probe), and the write happens outside mu so that a stalled write
// never blocks cost.
func (l *link) ping() error {
	l.mu.Lock()
	now := time.Now()
	l.seq++
	seq := l.seq
	l.sent[seq] = now
	if l.oldest.IsZero() {
		l.oldest = now
	}
	l.mu.Unlock()
	return l.ctlw.WritePing(seq)
}

// readControl reads Pongs and GoAway until the control stream ends.
func (l *link) readControl() {
	r := proto.NewReader(l.ctl)
	defer r.Release()
	defer func() {
		// No more answers will come: forget the outstanding probes, so the
		// session is neither suspected nor closed for them, and stop probing.
		l.mu.Lock()
		clear(l.sent)
		l.oldest = time.Time{}
		l.mu.Unlock()
		close(l.ctlGone)
		l.ctl.Close()
	}()
	for {
		typ, p, err := r.Next()
		if err != nil {
			return
		}
		switch typ {
		case proto.FramePong:
			if seq, err := proto.ParseSeq(p); err == nil {
				l.pong(seq)
			}
		case proto.FrameGoAway:
			g, err := proto.ParseGoAway(p)
			msg := "relay going away"
			if err == nil && g.Message != "" {
				msg = g.Message
			}
			l.accepting.Store(err == nil && g.Accepting)
			l.renewal.Store(err == nil && g.Renewal)
			l.markGoAway(msg)
		default: // an older relay refusing the control stream: no probes
			return
		}
	}
}

func (l *link) pong(seq uint64) {
	l.mu.Lock()
	sentAt, ok := l.sent[seq]
	// An answer to an overdue probe may end a silence that new streams
	// wait out (see silent): wake them.
	wasOverdue := ok && time.Since(l.oldest) > l.overdueAfter(l.srtt)
	if ok {
		sample := time.Since(sentAt)
		if l.srtt == 0 {
			l.srtt = sample
		} else {
			l.srtt = (7*l.srtt + sample) / 8
		}
		if l.minRTT == 0 || sample < l.minRTT {
			l.minRTT = sample
		}
		l.relay.noteRTT(sample)
		for s := range l.sent {
			if s <= seq {
				delete(l.sent, s)
			}
		}
		l.oldest = time.Time{}
		for _, t := range l.sent {
			if l.oldest.IsZero() || t.Before(l.oldest) {
				l.oldest = t
			}
		}
	}
	l.mu.Unlock()
	if ok {
		l.relay.br.success(true)
	}
	if wasOverdue {
		l.p.signal()
	}
}

// probe pings every ProbeInterval and closes the session when a probe has
// gone unanswered for ProbeTimeout. Besides measuring, the probes keep
// packets flowing: a relay restarted after a crash answers them with a
// QUIC stateless reset, so the session ends within one interval of the
// relay being back instead of at the idle timeout.
//
// Once the control stream has ended (a relay that predates it refuses it)
// no probe is answered any more, and only an answered probe closes a
// half-open breaker: a relay without probes would stay out for good once
// its breaker opened. For such a session the transport's own heartbeat is
// the probe: while it is up, it closes a half-open breaker.
func (l *link) probe() {
	t := time.NewTicker(l.p.cfg.ProbeInterval)
	defer t.Stop()
	ctlGone, pinging := l.ctlGone, true
	for {
		select {
		case <-t.C:
		case <-l.sess.Done():
			return
		case <-ctlGone:
			ctlGone, pinging = nil, false
			continue
		}
		if !pinging {
			if ctlGone == nil && l.relay.br.current(time.Now()) == breakerHalfOpen {
				l.relay.br.success(true)
			}
			continue
		}
		l.mu.Lock()
		oldest := l.oldest
		l.mu.Unlock()
		if !oldest.IsZero() && time.Since(oldest) >= l.p.cfg.ProbeTimeout {
			if l.congested() {
				continue // no new probe either: the overdue one will be answered in turn
			}
			l.relay.stats.probeTimeouts.Add(1)
			l.relay.br.failure(true)
			l.p.log.Warn("tunnel session unresponsive; closing it", zap.String("relay", l.relay.dialer.Addr()),
				zap.Duration("unanswered_for", time.Since(oldest)))
			l.sess.Close()
			return
		}
		if l.ping() != nil {
			pinging = false // the control stream broke: readControl ends with it
		}
	}
}

// congested reports whether request streams on the session have read data
// within the last ProbeTimeout. A probe then waits behind that data (over
// TCP, behind every byte queued before it: the lab saw this under a
// loss-based congestion control) and the session is slow, not dead. Closing
// it would break every stream it carries; cost already keeps new streams
// away from it while the probe is overdue.
func (l *link) congested() bool {
	last := l.lastData.Load()
	return last != 0 && time.Since(time.Unix(0, last)) < l.p.cfg.ProbeTimeout
}

func (l *link) markGoAway(msg string) {
	l.goOnce.Do(func() {
		l.goMsg.Store(msg)
		l.draining.Store(true)
		close(l.goAway)
		l.p.signal()
	})
}

func (l *link) goAwayMsg() string {
	s, _ := l.goMsg.Load().(string)
	return s
}

// close closes the session on the pool's behalf and waits for the control
// goroutines.
func (l *link) close() {
	l.closing.Store(true)
	l.sess.Close()
	<-l.ctlDone
}

func (l *link) numStreams() int { return int(l.streams.Load()) }

// usable reports whether new streams may go to this session.
func (l *link) usable() bool {
	return !l.draining.Load() && l.alive()
}

func (l *link) alive() bool {
	select {
	case <-l.sess.Done():
		return false
	default:
		return true
	}
}

// suspectFactor multiplies the cost of a session whose probe is overdue:
// it may be dead (a relay killed without a word), so it gets new streams
// only when nothing better is up.
const suspectFactor = 1000

// cost ranks sessions for new streams by when a new stream would deliver,
// lowest first: open streams times round trip, raised by recent tunnel
// failures, and by a large factor while a probe is overdue (congested or
// dead) or the session is at its stream limit. A congested session's probes
// wait behind its data, so its inflated round trip keeps streams away from
// it too. A session not measured yet is taken to have the relay's lowest
// round trip, so a fresh session is not flooded for being unmeasured. The
// constant 5ms keeps loopback-scale round trips from dominating the load.
// ld is the session's load now.
func (l *link) cost(ld sessionLoad) float64 {
	rtt := ld.srtt
	if rtt == 0 {
		rtt = time.Duration(l.relay.minRTT.Load())
	}
	c := float64(1+ld.streams) * (float64(rtt)/float64(time.Millisecond) + 5) * float64(1+l.fails.Load())
	if ld.overdue || ld.streams >= l.p.cfg.Scale.MaxStreams {
		c *= suspectFactor
	}
	return c
}

// load is what the scaler and cost read of the session.
func (l *link) load(now time.Time) sessionLoad {
	l.mu.Lock()
	srtt, minRTT, oldest := l.srtt, l.minRTT, l.oldest
	l.mu.Unlock()
	return sessionLoad{streams: l.numStreams(), srtt: srtt, minRTT: minRTT,
		overdue: !oldest.IsZero() && now.Sub(oldest) > l.overdueAfter(srtt)}
}

// overdueAfter is how long a probe may go unanswered, on a session whose
// smoothed round trip is srtt, before the session is suspect.
func (l *link) overdueAfter(srtt time.Duration) time.Duration {
	return max(2*l.p.cfg.ProbeInterval, 4*srtt)
}

// silent reports whether the session, whose load now is ld, has given no
// sign of life for longer than overdueAfter: a probe is overdue and no
// request stream has read data in that time either. It may be dead without its transport knowing
// yet: a QUIC session across a path that dropped everything for a while
// ends only at its idle timeout. A new stream placed on it in that window
// can reach a relay that has become reachable again, and be taken upstream
// there, just before the edge's idle timer ends the session; the edge then
// reads the stream as broken before dispatch and resends it, and the relay
// refuses the copy (proto.CodeDuplicate): a 502 for a request that was
// served. A session that answers a probe, or carries data, is alive and
// keeps its idle timer running, so a stream placed on it then is safe.
func (l *link) silent(ld sessionLoad, now time.Time) bool {
	if !ld.overdue {
		return false
	}
	last := l.lastData.Load()
	return last == 0 || now.Sub(time.Unix(0, last)) > l.overdueAfter(ld.srtt)
}

// open opens a request stream on the session, in the place pick reserved
// for it in streams; a failed open gives the place back.
func (l *link) open(ctx context.Context) (tunnel.Stream, error) {
	st, err := l.sess.OpenStream(ctx)
	if err != nil {
		l.streams.Add(-1)
		if ctx.Err() == nil && !errors.Is(err, tunnel.ErrPeerGoingAway) {
			l.failed()
		}
		return nil, err
	}
	return &stream{Stream: st, l: l}, nil
}

// failed records a tunnel failure on this session.
func (l *link) failed() {
	if l.closing.Load() {
		return
	}
	l.fails.Add(1)
	l.relay.stats.streamFailures.Add(1)
	l.relay.br.failure(false)
}

// stream is a request stream handed out by the pool: it keeps the
// session's load count and reports to the relay's breaker whether the
// tunnel carried it.
type stream struct {
	tunnel.Stream
	l        *link
	released sync.Once
	local    atomic.Bool // closed or reset by the caller
	seen     atomic.Bool // some data arrived
	reported atomic.Bool
}

func (s *stream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	if n > 0 {
		s.l.lastData.Store(time.Now().UnixNano())
		if s.seen.CompareAndSwap(false, true) {
			s.l.relay.br.success(false)
		}
	}
	if err != nil {
		s.check(err)
	}
	return n, err
}

func (s *stream) Write(b []byte) (int, error) {
	n, err := s.Stream.Write(b)
	if err != nil {
		s.check(err)
	}
	return n, err
}

// check counts err against the session when the tunnel, not the caller,
// broke the stream; at most once per stream.
func (s *stream) check(err error) {
	if s.local.Load() || errors.Is(err, os.ErrDeadlineExceeded) {
		return
	}
	if !errors.Is(err, tunnel.ErrSessionClosed) && !errors.Is(err, tunnel.ErrStreamReset) {
		return
	}
	if s.reported.CompareAndSwap(false, true) {
		s.l.failed()
	}
}

func (s *stream) Close() error {
	s.release()
	return s.Stream.Close()
}

func (s *stream) Reset() error {
	s.release()
	return s.Stream.Reset()
}

func (s *stream) release() {
	s.local.Store(true)
	s.released.Do(func() { s.l.streams.Add(-1) })
}

// Via names what carries the stream, for the edge's request log: the
// relay, the transport, and the session's local address (which tells the
// sessions to one relay apart).
func (s *stream) Via() (relay, session string) {
	info := s.l.sess.Info()
	session = string(info.Transport)
	if info.LocalAddr != nil {
		session += " " + info.LocalAddr.String()
	}
	return s.l.relay.dialer.Addr(), session
}
