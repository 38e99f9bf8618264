package relay

import (
	"context"
	"sync"
	"time"

	"github.com/strait/strait/tunnel"
)

// Answer mirrors: the other half of the edge's request hedge.
//
// A hedged request (proto.HedgeHeader) comes on two streams, on two
// sessions. The relay takes the first copy upstream, as before; the second
// used to be refused (proto.CodeDuplicate). Now, while the first copy's
// answer is under way, the second stream gets the same bytes: the answer
// from its first byte, then every byte the dispatcher writes, as it writes
// it. The edge reads both and passes on each byte from whichever stream
// brings it first (edge/forward's merged answer).
//
// Why: over a WebSocket tunnel one lost TCP segment holds every stream of
// its session until TCP repairs it, a round trip or more; the lab's packet
// captures show 18 streams held 420 ms by one lost 47-byte segment. The
// request hedge took that wait off the request's way only. A second
// session's losses are independent, so an answer held on one is usually
// not held on the other.
//
// The primary is never slowed by its mirror: the mirror has its own
// goroutine and a bounded log, and a mirror that falls behind by more than
// mirrorLogMax is cut, leaving the answer to the primary alone; so is one
// whose answer grows past its limit (mirrorLimit).

// mirrorLogMax bounds the bytes a hedged answer keeps for its mirror: from
// the first byte until the mirror attaches, then those it has not written.
// A chat answer's first events fit many times over.
const mirrorLogMax = 256 << 10

// mirrorAnswerMax is how much of an answer is mirrored at most on a
// session whose congestion control is model-based (BBR): a chat answer
// whole, many times over. A bulk answer's mirror is cut past it: the
// second copy's bytes and CPU buy little once the answer runs at the
// window's rate, and the lab's 10 MB answer ran slower mirrored.
const mirrorAnswerMax = 1 << 20

// mirrorFirstMax is how much of an answer is mirrored on a session whose
// congestion control is loss-based (reno, cubic, or unknown), where an
// edge hedges only when told to (tunnel.hedge: on): the response header
// and the first few events, which is what time to first token waits for.
// Every loss halves such a window, so a whole second copy of every answer
// crowds the windows that carry the first copies: in the lab (reno,
// 250 ms, 3 %, 256 keep-alive clients, a fresh stack each run) whole
// mirrors raised TTFT p99 in two of three pairs, while mirrors of the
// first 2 KiB lowered it in six of six, to 0.54-0.87× nginx's
// (scripts/lab/README.md, "2026-12-07, late morning").
const mirrorFirstMax = 2 << 10

// mirrorLimit is how much of an answer is mirrored, by the congestion
// control of the session the answer leaves on.
func mirrorLimit(info tunnel.Info) int64 {
	if info.ModelBasedCongestion() {
		return mirrorAnswerMax
	}
	return mirrorFirstMax
}

// mirrorKeepCap is the largest log array a mirror keeps reusing between
// events.
const mirrorKeepCap = 16 << 10

// mirrors holds the answers of hedged requests that a mirror may still
// join, by request ID.
type mirrors struct {
	mu   sync.Mutex
	byID map[string]*answerTee
}

// open registers the answer of the hedged request id, which came from the
// edge named peer, written through the returned stream, for its mirror to
// join; the mirror gets the answer's first limit bytes.
func (m *mirrors) open(id, peer string, st tunnel.Stream, limit int64) *answerTee {
	t := &answerTee{Stream: st, peer: peer, limit: limit, accepting: true, wake: make(chan struct{}, 1)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID == nil {
		m.byID = map[string]*answerTee{}
	}
	m.byID[id] = t
	return t
}

// close ends t's answer: its mirror, if any, writes the rest and ends too.
func (m *mirrors) close(id string, t *answerTee) {
	m.mu.Lock()
	if m.byID[id] == t {
		delete(m.byID, id)
	}
	m.mu.Unlock()
	t.finish()
}

// join returns the answer of id for a mirror on a session of the edge
// named peer to follow, or nil when there is none to follow: not hedged,
// over, already mirrored, too far along, or another edge's. (IDs are 96
// random bits, drawn by the edge; an answer still goes only to the edge
// that asked.)
func (m *mirrors) join(id, peer string, st tunnel.Stream) *answerTee {
	m.mu.Lock()
	t := m.byID[id]
	if t != nil && t.peer == peer {
		delete(m.byID, id) // one mirror per answer
	} else {
		t = nil
	}
	m.mu.Unlock()
	if t == nil || !t.attach(st) {
		return nil
	}
	return t
}

// answerTee is the stream a hedged request's answer is written to: every
// byte goes to the primary stream and into a log its mirror follows.
// Everything else (reads, deadlines, closing) is the primary's.
type answerTee struct {
	tunnel.Stream        // the primary
	peer          string // the edge that sent the request
	limit         int64  // the answer bytes mirrored at most

	mu        sync.Mutex
	log       []byte // answer bytes from offset base that the mirror still needs
	base      int64
	written   int64 // answer bytes so far
	accepting bool  // no mirror yet, and the log still holds the whole answer
	mirror    tunnel.Stream
	sent      int64 // bytes the mirror wrote
	cut       bool  // the mirror fell too far behind, or failed
	done      bool  // the answer is over
	wake      chan struct{}
}

// Write logs p for the mirror, then writes it to the primary. Logged
// first so that a primary stuck behind its session's backlog does not hold
// the mirror's copy too.
func (t *answerTee) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.written += int64(len(p))
	if t.accepting || (t.mirror != nil && !t.cut) {
		t.log = append(t.log, p...)
		if len(t.log) > mirrorLogMax || t.written > t.limit {
			t.cutLocked()
		}
	}
	t.mu.Unlock()
	t.signal()
	n, err := t.Stream.Write(p)
	return n, err
}

// Shrink passes tunnel.Shrink on to the primary.
func (t *answerTee) Shrink() { tunnel.Shrink(t.Stream) }

// cutLocked stops the log: no mirror may join any more, and one that has
// joined ends, since it can no longer get every byte.
func (t *answerTee) cutLocked() {
	t.accepting = false
	t.log, t.base = nil, t.written
	if t.mirror != nil && !t.cut {
		t.cut = true
		_ = t.mirror.SetWriteDeadline(time.Now()) // wake a write stuck on its session
	}
}

func (t *answerTee) attach(st tunnel.Stream) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.accepting {
		return false
	}
	t.accepting, t.mirror = false, st
	return true
}

func (t *answerTee) finish() {
	t.mu.Lock()
	t.done = true
	if t.mirror == nil {
		t.accepting, t.log = false, nil
	}
	t.mu.Unlock()
	t.signal()
}

func (t *answerTee) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// follow writes the answer to the mirror stream joined by join, from its
// first byte, until the answer is over (then the mirror is closed) or the
// mirror is cut or fails (then it is reset: the edge goes on with the
// primary). It returns when the mirror is done, or ctx ends.
func (t *answerTee) follow(ctx context.Context) {
	st := t.mirror
	for {
		t.mu.Lock()
		for !t.cut && t.sent == t.written && !t.done {
			t.mu.Unlock()
			select {
			case <-t.wake:
			case <-ctx.Done():
				_ = st.Reset()
				return
			}
			t.mu.Lock()
		}
		if t.cut {
			t.mu.Unlock()
			_ = st.Reset()
			return
		}
		pending := t.log[t.sent-t.base:] // Write appends past it; only this goroutine trims
		over := t.done && len(pending) == 0
		t.mu.Unlock()
		if over {
			_ = st.Close()
			return
		}
		n, err := st.Write(pending)
		t.mu.Lock()
		t.sent += int64(n)
		if err != nil {
			t.cutLocked()
		}
		if !t.cut {
			// Let go of what the mirror wrote. In place: pending is written
			// and Write appends only under the lock, so nothing reads the
			// array's front any more; a fresh slice per event was an
			// allocation per event. An array a burst grew goes.
			rest := t.log[t.sent-t.base:]
			if cap(t.log) > mirrorKeepCap {
				t.log = append([]byte(nil), rest...)
			} else {
				t.log = t.log[:copy(t.log, rest)]
			}
			t.base = t.sent
		}
		t.mu.Unlock()
	}
}
