package relay

import (
	"bufio"
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/relay/dispatch"
	"github.com/strait/strait/tunnel"
)

// link is the relay's state of one session: its control stream, once the
// edge has opened it, so that shutdown can send GoAway on it, and its use,
// for renewal (renew.go).
type link struct {
	sess tunnel.Session
	up   time.Time
	// initialWindow is the sender's congestion window when the session
	// came up; 0 where the transport exposes none.
	initialWindow uint64

	streams atomic.Int64 // request streams being served
	lastEnd atomic.Int64 // Unix nanoseconds when one last ended; 0 before

	mu       sync.Mutex
	ctl      *proto.Writer // nil until the edge opens its control stream
	gone     *proto.GoAway // set once GoAway is due; sent as soon as ctl exists
	renewing bool          // claimed for renewal; its GoAway follows
}

// goingAway reports whether the edge has been or is about to be told to
// leave the session.
func (l *link) goingAway() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gone != nil || l.renewing
}

// streamStarted and streamEnded count the request streams l serves;
// streamEnded returns how many are left.
func (l *link) streamStarted() { l.streams.Add(1) }

func (l *link) streamEnded() int64 {
	l.lastEnd.Store(time.Now().UnixNano())
	return l.streams.Add(-1)
}

// use reports l's activity for the renewal policy.
func (l *link) use() sessionUse {
	u := sessionUse{up: l.up, streams: l.streams.Load(), initialWindow: l.initialWindow, transport: l.sess.Info().Transport}
	if n := l.lastEnd.Load(); n != 0 {
		u.lastEnd = time.Unix(0, n)
	}
	return u
}

// sendGoAway sends g on the control stream now, or as soon as the edge opens
// one.
func (l *link) sendGoAway(g proto.GoAway) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gone = &g
	if l.ctl != nil {
		_ = l.ctl.WriteGoAway(g)
	}
}

// serveControl answers the edge's probes on st until the stream or session
// ends, and calls answered after each answer.
func (l *link) serveControl(st tunnel.Stream, r *proto.Reader, answered func()) {
	l.mu.Lock()
	l.ctl = proto.NewWriter(st)
	if l.gone != nil {
		_ = l.ctl.WriteGoAway(*l.gone)
	}
	l.mu.Unlock()
	for {
		typ, p, err := r.Next()
		if err != nil || typ != proto.FramePing {
			return
		}
		seq, err := proto.ParseSeq(p)
		if err != nil {
			return
		}
		l.mu.Lock()
		err = l.ctl.WritePong(seq)
		l.mu.Unlock()
		if err != nil {
			return
		}
		answered()
	}
}

// peekedStream is a stream whose first bytes were read to tell a control
// stream from a request stream; reads start with them.
type peekedStream struct {
	tunnel.Stream
	rest []byte // read ahead, not yet consumed
}

// newPeekedStream takes what br read ahead of st and returns br to its
// pool: the peek buffer is needed only for the first frame, and keeping it
// for the life of every stream was a quarter of the relay's heap.
func newPeekedStream(st tunnel.Stream, br *bufio.Reader) *peekedStream {
	ps := &peekedStream{Stream: st}
	if n := br.Buffered(); n > 0 {
		b, _ := br.Peek(n)
		ps.rest = append([]byte(nil), b...)
	}
	br.Reset(nil)
	peekPool.Put(br)
	return ps
}

func (p *peekedStream) Read(b []byte) (int, error) {
	if len(p.rest) == 0 {
		return p.Stream.Read(b)
	}
	n := copy(b, p.rest)
	if p.rest = p.rest[n:]; len(p.rest) == 0 {
		p.rest = nil
	}
	return n, nil
}

// Shrink passes tunnel.Shrink on to the stream underneath.
func (p *peekedStream) Shrink() { tunnel.Shrink(p.Stream) }

// WriteLazy passes a lazy write (proto.LazyWriter) on to the stream
// underneath, or writes b at once where it has none.
func (p *peekedStream) WriteLazy(b []byte) (int, error) {
	if lw, ok := p.Stream.(proto.LazyWriter); ok {
		return lw.WriteLazy(b)
	}
	return p.Stream.Write(b)
}

// peekPool recycles the read-ahead buffers of new streams.
var peekPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, peekSize) }}

// firstFrameTimeout bounds the wait for a new stream's first frame.
const firstFrameTimeout = 30 * time.Second

// peekSize is the read buffer in front of a new stream: request headers up
// to this size are read ahead for their ID (larger ones are rare and go
// without the duplicate check).
const peekSize = 16 << 10

// peekRequestID reads the ID of the request header at the front of br
// without consuming it.
func peekRequestID(br *bufio.Reader) (id string, hedged, ok bool) {
	head, _ := br.Peek(1 + binary.MaxVarintLen64)
	if len(head) < 2 || proto.FrameType(head[0]) != proto.FrameRequest {
		return "", false, false
	}
	n, k := binary.Uvarint(head[1:])
	if k <= 0 || n > uint64(peekSize-1-k) {
		return "", false, false
	}
	frame, err := br.Peek(1 + k + int(n))
	if err != nil {
		return "", false, false
	}
	h, err := proto.ParseRequestHeader(frame[1+k:])
	if err != nil || h.ID == "" {
		return "", false, false
	}
	return h.ID, h.Header.Get(proto.HedgeHeader) == "1", true
}

// idSet remembers the request IDs this relay took upstream for a while, so
// that an edge's resend of one whose Dispatched frame was lost is refused
// instead of reaching the provider twice.
type idSet struct {
	mu    sync.Mutex
	seen  map[string]time.Time
	order []idPlace               // insertion order, for expiry
	live  map[string]liveExchange // exchanges taken and not over yet, by ID
}

// liveExchange is an exchange taken under an ID and not over yet. A value
// in the map, and over made only for a takeOver that waits: nothing is
// allocated per request for the rare resend.
type liveExchange struct {
	st   tunnel.Stream // its stream: a reset cuts it (see takeOver)
	over chan struct{} // nil, or closed once it is over
}

// takeOverWait bounds how long a resend waits for the earlier copy it cut
// to be over: a cut exchange ends at its next read or write.
const takeOverWait = 5 * time.Second

// idPlace is one add of an ID, in order: an ID forgotten and taken again
// has two, and only the one whose time is the ID's own may expire it.
type idPlace struct {
	id string
	at time.Time
}

// idTTL is how long an ID is remembered: far longer than any resend.
const idTTL = 10 * time.Minute

// begin registers st as the live exchange that took id.
func (s *idSet) begin(id string, st tunnel.Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == nil {
		s.live = map[string]liveExchange{}
	}
	s.live[id] = liveExchange{st: st}
}

// end records that the exchange on st, which took id, is over. One that
// never told the edge Dispatched never called the provider (its body broke
// off with its session, say): its ID is forgotten, so that the edge's
// resend is taken then (its place in order goes with its TTL, as any
// other's).
func (s *idSet) end(id string, st tunnel.Stream, dispatched bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !dispatched {
		delete(s.seen, id)
	}
	if x := s.live[id]; x.st == st {
		delete(s.live, id)
		if x.over != nil {
			close(x.over)
		}
	}
}

// takeOver is for a request that comes again under an ID already taken,
// without the hedge's mark: the edge resends only a request whose stream it
// gave up on before it read Dispatched. If the exchange that took the ID is
// still live here, its session died on the edge's side without this relay
// noticing yet, and no one will read its answer: it is cut, and once it is
// over the ID is taken again if it never reached the provider. Reports
// whether this copy took the ID.
func (s *idSet) takeOver(ctx context.Context, id string) bool {
	s.mu.Lock()
	x, ok := s.live[id]
	if ok && x.over == nil {
		x.over = make(chan struct{})
		s.live[id] = x
	}
	s.mu.Unlock()
	if !ok {
		return false
	}
	_ = x.st.Reset()
	t := time.NewTimer(takeOverWait)
	defer t.Stop()
	select {
	case <-x.over:
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
	return s.add(id, time.Now())
}

// add records id and reports whether it was new.
func (s *idSet) add(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]time.Time{}
	}
	for len(s.order) > 0 && now.Sub(s.order[0].at) > idTTL {
		if p := s.order[0]; s.seen[p.id].Equal(p.at) {
			delete(s.seen, p.id)
		}
		s.order[0] = idPlace{}
		s.order = s.order[1:]
	}
	if _, dup := s.seen[id]; dup {
		return false
	}
	s.seen[id] = now
	s.order = append(s.order, idPlace{id, now})
	return true
}

// serveStream serves one stream: the control stream (it starts with a
// Ping), or a request, which is dispatched unless the relay is draining.
//
// A dispatched stream's answer is pumped through handoff, on a goroutine of
// its own (see dispatch.Handoff): what ends the stream is registered with
// handoff, not deferred.
func (r *Relay) serveStream(ctx context.Context, l *link, st tunnel.Stream, gate *inflight, log *zap.Logger, handoff *dispatch.Handoff) {
	br := peekPool.Get().(*bufio.Reader)
	br.Reset(st)
	_ = st.SetReadDeadline(time.Now().Add(firstFrameTimeout))
	first, err := br.Peek(1)
	_ = st.SetReadDeadline(time.Time{})
	if err != nil {
		newPeekedStream(st, br) // returns br to the pool
		st.Close()
		return
	}
	if proto.FrameType(first[0]) == proto.FramePing {
		ps := newPeekedStream(st, br)
		pr := proto.NewReader(ps)
		defer pr.Release()
		defer st.Close()
		l.serveControl(ps, pr, func() { r.maybeRenew(l) })
		return
	}
	phase, ok := gate.enter()
	if !ok {
		// Never dispatched: the edge may send it again elsewhere.
		newPeekedStream(st, br)
		log.Debug("stream refused while draining", zap.Uint64("stream", st.ID()))
		_ = proto.NewWriter(st).WriteEnd(proto.End{Code: proto.CodeGoingAway, Message: "relay is shutting down; request not sent upstream"})
		st.Close()
		return
	}
	handoff.Defer(func() { gate.leave(phase) })
	_ = st.SetReadDeadline(time.Now().Add(firstFrameTimeout))
	id, hedged, ok := peekRequestID(br)
	_ = st.SetReadDeadline(time.Time{})
	ps := newPeekedStream(st, br)
	var tee, mirrorOf *answerTee // a hedged request's answer; what its second copy follows
	taken := ok && r.seen.add(id, time.Now())
	if ok && !taken && !hedged {
		taken = r.seen.takeOver(ctx, id)
	}
	if taken {
		r.seen.begin(id, st)
		handoff.Defer(func() { r.seen.end(id, st, handoff.Dispatched()) })
		if hedged {
			info := l.sess.Info()
			tee = r.mirrors.open(id, info.PeerName, ps, mirrorLimit(info)) // before a second copy can look for it
			handoff.Defer(func() { r.mirrors.close(id, tee) })
		}
	} else if ok {
		if hedged {
			mirrorOf = r.mirrors.join(id, l.sess.Info().PeerName, st)
		}
		if mirrorOf == nil {
			// The edge resends only requests it believes never reached the
			// provider, but it cannot know about a Dispatched frame lost
			// with a dying session. This relay does: it took this ID
			// before. Or, routinely, a hedge's second copy came after the
			// answer was over.
			if hedged {
				log.Debug("second copy of a hedged request came after its answer; refused", zap.String("request_id", id))
			} else {
				log.Warn("request resent by the edge was already taken upstream here; not sending it again", zap.String("request_id", id))
			}
			_ = proto.NewWriter(st).WriteEnd(proto.End{Code: proto.CodeDuplicate,
				Message: "the request already reached this relay once; not retried, since the provider may have processed it"})
			st.Close()
			return
		}
	}
	if r.metrics != nil {
		r.metrics.streams.Inc()
		handoff.Defer(r.metrics.streams.Dec)
	}
	l.streamStarted()
	handoff.Defer(func() {
		if l.streamEnded() == 0 {
			r.maybeRenew(l)
		}
	})
	switch {
	case mirrorOf != nil:
		// Its request is the first copy's, already upstream: this stream
		// gets that answer, byte for byte.
		log.Debug("second copy of a hedged request follows the first one's answer", zap.String("request_id", id))
		mirrorOf.follow(ctx)
	case tee != nil:
		r.disp.Start(ctx, tee, handoff)
	default:
		r.disp.Start(ctx, ps, handoff)
	}
}

// inflight counts dispatched streams, by drain phase: phaseServing before
// the drain, phaseHandOver during its hand-over, when the relay still
// takes new streams on its sessions. close shuts the door on new ones;
// enter and close are ordered by one lock, so the drain never misses a
// stream that got in.
type inflight struct {
	mu      sync.Mutex
	n       [2]int // streams in flight, by the phase they entered in
	phase   int
	closed  bool
	changed chan struct{} // closed and replaced whenever a stream leaves
}

const (
	phaseServing = iota
	phaseHandOver
)

// enter admits a stream and returns its phase, or false once closed.
func (g *inflight) enter() (int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, false
	}
	g.n[g.phase]++
	return g.phase, true
}

func (g *inflight) leave(phase int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n[phase]--
	if g.changed != nil {
		close(g.changed)
		g.changed = nil
	}
}

func (g *inflight) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n[phaseServing] + g.n[phaseHandOver]
}

// handOver starts the hand-over phase: streams that enter from now on are
// told apart from those already in flight.
func (g *inflight) handOver() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.phase = phaseHandOver
}

// close refuses new streams from now on.
func (g *inflight) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
}

// waitUntil waits until done reports true (checked under the lock after
// every leave) or deadline passes, and reports whether done came true.
func (g *inflight) waitUntil(done func(n [2]int) bool, deadline time.Time) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		g.mu.Lock()
		if done(g.n) {
			g.mu.Unlock()
			return true
		}
		if g.changed == nil {
			g.changed = make(chan struct{})
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return false
		}
	}
}

// sessionSet tracks live sessions so shutdown can send GoAway and close them.
type sessionSet struct {
	mu sync.Mutex
	m  map[tunnel.Session]*link
}

func newSessionSet() *sessionSet { return &sessionSet{m: map[tunnel.Session]*link{}} }

func (s *sessionSet) add(sess tunnel.Session, initialWindow uint64) *link {
	l := &link{sess: sess, up: time.Now(), initialWindow: initialWindow}
	s.mu.Lock()
	s.m[sess] = l
	s.mu.Unlock()
	return l
}

func (s *sessionSet) remove(sess tunnel.Session) {
	s.mu.Lock()
	delete(s.m, sess)
	s.mu.Unlock()
}

// waitEmpty waits until every session has ended, or for at most d.
func (s *sessionSet) waitEmpty(d time.Duration) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	s.mu.Lock()
	sessions := make([]tunnel.Session, 0, len(s.m))
	for sess := range s.m {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		select {
		case <-sess.Done():
		case <-deadline.C:
			return
		}
	}
}

func (s *sessionSet) goAway(g proto.GoAway) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.m {
		l.sendGoAway(g)
	}
}

func (s *sessionSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.m {
		sess.Close()
	}
}
