package forward

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/strait/strait/proto"
)

// mergedAnswer reads a hedged request's two legs as one answer. A relay
// that mirrors (relay's answer mirrors) sends the second copy the first
// one's answer byte for byte, so the two legs carry one byte stream, each
// delayed by its own session's losses; mergedAnswer passes on every byte
// from whichever leg brings it first. A leg whose first frame is a
// refusal (a relay that predates mirrors refuses the second copy as a
// duplicate; a draining one refuses both) or that breaks before it is left
// out; so is one that breaks later, while the other goes on.
//
// It costs a goroutine and a copy of each byte per leg, for hedged
// requests only.
type mergedAnswer struct {
	legs [2]*mergeLeg
	wg   sync.WaitGroup

	mu      sync.Mutex
	changed sync.Cond
	// queue[read:] are the merged bytes not yet read, from offset
	// total-(len(queue)-read); the array is reused, as the events of a
	// stream come and go.
	queue  []byte
	read   int
	total  int64 // merged bytes so far
	closed bool
	// chosen is the leg the merged bytes came from first; sendErr is taken
	// from it.
	chosen *leg
}

// mergeLeg is one leg's reader state.
type mergeLeg struct {
	l       *leg
	off     int64  // bytes read from the leg
	head    []byte // bytes read before the leg was judged
	judged  bool   // its first frame was looked at
	first   *frame // its first frame, once judged: lost or not
	in      bool   // its bytes count
	done    bool   // it ended (err) or was left out
	err     error
	cleanAt int64 // off when it ended with io.EOF; -1 otherwise
}

// mergeQueueMax bounds the merged bytes read ahead of the client: the
// leading leg stops reading there, so the client's backpressure reaches
// the relay as with a single stream.
const mergeQueueMax = 64 << 10

// mergeReadSize is each leg's read buffer, held for the answer's life
// (its goroutine waits in Read with it): room for an SSE event or two.
// An open stream takes about 60 KiB over both tiers (scripts/lab,
// 2026-12-07), so two legs' buffers count; a bigger answer is read in
// more pieces, which the merge takes at any offset.
const mergeReadSize = 1 << 10

// newMergedAnswer starts reading a and b.
func newMergedAnswer(a, b *leg) *mergedAnswer {
	m := &mergedAnswer{}
	m.changed.L = &m.mu
	for i, l := range []*leg{a, b} {
		m.legs[i] = &mergeLeg{l: l, cleanAt: -1}
	}
	for _, g := range m.legs {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.pump(g)
		}()
	}
	return m
}

// pump reads g until it ends or is left out, or the answer is closed.
func (m *mergedAnswer) pump(g *mergeLeg) {
	buf := make([]byte, mergeReadSize)
	for {
		m.mu.Lock()
		// The leading leg waits while the client is behind; a lagging one
		// reads on, to catch up.
		for !m.closed && !g.done && g.in && g.off >= m.total && len(m.queue)-m.read >= mergeQueueMax {
			m.changed.Wait()
		}
		stop := m.closed || g.done
		m.mu.Unlock()
		if stop {
			return
		}
		n, err := g.l.st.Read(buf)
		m.mu.Lock()
		m.took(g, buf[:n], err)
		m.changed.Broadcast()
		m.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// took handles p read from g, and err if the read ended it.
func (m *mergedAnswer) took(g *mergeLeg, p []byte, err error) {
	if g.done {
		return
	}
	if g.in {
		m.admit(g, g.off, p)
	} else {
		g.head = append(g.head, p...) // a first frame, at most a refusal's End
	}
	g.off += int64(len(p))
	if !g.judged {
		if fr, ok := firstFrame(g.head, err); ok {
			g.judged, g.first = true, fr
			m.judge()
		}
	}
	if err != nil && !g.done {
		g.done, g.err = true, err
		if errors.Is(err, io.EOF) {
			g.cleanAt = g.off
		}
	}
}

// judge lets in the legs whose first frame is not a refusal; once both are
// judged lost, it lets in the one whose refusal tells the most: a
// duplicate refusal (the request reached the relay through the other leg,
// which broke: it must not be resent), else the second leg.
func (m *mergedAnswer) judge() {
	a, b := m.legs[0], m.legs[1]
	for _, g := range m.legs {
		if g.judged && !g.in && !g.done && !g.first.lost() {
			m.letIn(g)
		}
	}
	if !a.judged || !b.judged || a.in || b.in {
		for _, g := range m.legs {
			if g.judged && g.first.lost() && m.chosen != nil {
				g.done = true // left out: the other leg answers
			}
		}
		return
	}
	keep := b
	if a.first.duplicate() {
		keep = a
	}
	m.letIn(keep)
	other := a
	if keep == a {
		other = b
	}
	other.done = true
}

// letIn counts g's bytes from now on, those read while it was judged first.
func (m *mergedAnswer) letIn(g *mergeLeg) {
	g.in = true
	if m.chosen == nil {
		m.chosen = g.l
	}
	m.admit(g, 0, g.head)
	g.head = nil
}

// admit adds the part of p, read from g at offset off, that the merged
// answer does not have yet.
func (m *mergedAnswer) admit(g *mergeLeg, off int64, p []byte) {
	if end := off + int64(len(p)); end > m.total {
		p = p[m.total-off:]
		if m.read > 0 && len(m.queue)+len(p) > cap(m.queue) {
			m.queue = m.queue[:copy(m.queue, m.queue[m.read:])]
			m.read = 0
		}
		m.queue = append(m.queue, p...)
		m.total = end
	}
}

// firstFrame judges a leg by its first bytes: any frame but End is an
// answer; an End needs its payload to tell a refusal from one; a leg that
// ended before is lost. ok is false while more bytes are needed.
func firstFrame(head []byte, err error) (*frame, bool) {
	if len(head) > 0 && proto.FrameType(head[0]) != proto.FrameEnd {
		return &frame{typ: proto.FrameType(head[0])}, true
	}
	if len(head) > 1 {
		n, k := binary.Uvarint(head[1:])
		if k > 0 && uint64(len(head)-1-k) >= n {
			return &frame{typ: proto.FrameEnd, p: head[1+k : 1+k+int(n)]}, true
		}
		if k < 0 || n > 4<<10 {
			return &frame{err: proto.ErrMalformed}, true
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return &frame{err: err}, true
	}
	return nil, false
}

// Read returns merged bytes. It ends when no leg can bring more: with
// io.EOF when a leg that was let in ended cleanly there, else with the
// error of the last leg to end. (An answer's End frame comes before that:
// its reader stops there.)
func (m *mergedAnswer) Read(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.read == len(m.queue) {
		if err := m.endLocked(); err != nil {
			return 0, err
		}
		m.changed.Wait()
	}
	n := copy(p, m.queue[m.read:])
	m.read += n
	if m.read == len(m.queue) {
		m.read = 0
		m.queue = m.queue[:0]
		if cap(m.queue) > mergeReadSize {
			m.queue = nil // a burst's array goes; a stream's events reuse a small one
		}
	}
	m.changed.Broadcast()
	return n, nil
}

// endLocked returns the error that ends the merged answer, or nil while a
// leg may still bring bytes.
func (m *mergedAnswer) endLocked() error {
	if m.closed {
		return io.ErrClosedPipe
	}
	var last error
	whole := false
	for _, g := range m.legs {
		if !g.done {
			return nil // a leg that ended early, cleanly or not, may be a cut mirror
		}
		whole = whole || (g.in && g.cleanAt >= m.total)
		if g.err != nil {
			last = g.err
		}
	}
	if whole {
		return io.EOF
	}
	if last == nil || errors.Is(last, io.EOF) {
		last = io.ErrUnexpectedEOF // cut short
	}
	return last
}

// Buffered is what the answer holds at this edge: the merged bytes not yet
// read and what both legs' streams hold (the client buffer budget).
func (m *mergedAnswer) Buffered() int64 {
	m.mu.Lock()
	n := int64(len(m.queue) - m.read)
	m.mu.Unlock()
	for _, g := range m.legs {
		n += g.l.st.Buffered()
	}
	return n
}

// close stops both legs' readers and waits for them; the legs themselves
// are finished by the caller.
func (m *mergedAnswer) close() {
	m.mu.Lock()
	m.closed = true
	m.changed.Broadcast()
	m.mu.Unlock()
	for _, g := range m.legs {
		_ = g.l.st.SetReadDeadline(time.Now())
	}
	m.wg.Wait()
}

// sendLeg is the leg whose sender's result counts: the one let in first.
func (m *mergedAnswer) sendLeg() *leg {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.chosen != nil {
		return m.chosen
	}
	return m.legs[0].l
}
