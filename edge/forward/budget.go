package forward

import (
	"container/list"
	"net/http"
	"sync"
	"time"
)

// A response blocked on its client holds, at the edge, what its tunnel
// stream received and the client has not taken: up to the stream's window.
// The tunnel's flow control bounds each stream, not their sum (yamux has no
// session window), so clientBudget bounds the sum: past it, the response
// blocked the longest is cut, then the next, until the rest fit. Each is
// charged the piece it is writing and what its stream reports buffered
// behind it (tunnel.Stream.Buffered: counted on the WebSocket transport,
// the window on QUIC), so clients that are only
// slow, or starved of CPU for a while, with little queued behind them, are
// not charged a window they do not hold. A write counts once it has lasted
// grace: a client that reads takes each piece well within it.
type clientBudget struct {
	max   int64         // bytes blocked responses may hold together; 0: no cap
	grace time.Duration // a write counts as blocked once it has lasted this long

	mu      sync.Mutex
	writes  list.List // of *clientWrite, oldest first
	timer   *time.Timer
	armed   bool
	evicted int64 // responses cut to keep within the budget
	passes  int64 // enforce runs, for tests to wait on
}

// buffered is what a blocked response holds at the edge (its stream).
type buffered interface{ Buffered() int64 }

// clientWrite is one write to a client in progress.
type clientWrite struct {
	since   time.Time
	rc      *http.ResponseController
	held    buffered
	pending int64 // the bytes being written, read off the stream already
	cut     bool  // cut by the budget: its write deadline is now
}

// defaultBlockedAfter is how long a write must last to count as blocked.
const defaultBlockedAfter = time.Second

// SetClientBufferBudget bounds what responses blocked on their clients may
// hold at the edge together to budget bytes; budget <= 0 leaves it
// unbounded. Call it before the first Forward.
func (f *Forwarder) SetClientBufferBudget(budget int64) {
	if budget <= 0 {
		f.budget = clientBudget{}
		return
	}
	f.budget = clientBudget{max: budget, grace: defaultBlockedAfter}
}

// ClientBuffer reports the budget in bytes (0: none) and what responses
// blocked on their clients hold now, as the budget charges it.
func (f *Forwarder) ClientBuffer() (held, budget int64) {
	b := &f.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	held, _ = b.charge(time.Now())
	return held, b.max
}

// enter records a write of pending bytes to a client that starts now, from
// a response whose stream is held; the returned write must be passed to
// leave when it ends.
func (b *clientBudget) enter(rc *http.ResponseController, held buffered, pending int) (*list.Element, *clientWrite) {
	if b.max == 0 {
		return nil, nil
	}
	w := &clientWrite{since: time.Now(), rc: rc, held: held, pending: int64(pending)}
	b.mu.Lock()
	defer b.mu.Unlock()
	el := b.writes.PushBack(w)
	if !b.armed {
		b.arm(b.grace)
	}
	return el, w
}

// leave forgets a write that ended and reports whether the budget cut it.
func (b *clientBudget) leave(el *list.Element, w *clientWrite) (cut bool) {
	if el == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes.Remove(el)
	return w.cut
}

// arm schedules enforce after d. Called with mu held.
func (b *clientBudget) arm(d time.Duration) {
	b.armed = true
	if b.timer == nil {
		b.timer = time.AfterFunc(d, b.enforce)
		return
	}
	b.timer.Reset(d)
}

// charge sums what the writes blocked at now hold, and returns the oldest
// write not yet blocked. Called with mu held.
func (b *clientBudget) charge(now time.Time) (held int64, next *clientWrite) {
	for el := b.writes.Front(); el != nil; el = el.Next() {
		w := el.Value.(*clientWrite)
		if w.cut {
			continue
		}
		if now.Sub(w.since) < b.grace {
			return held, w
		}
		held += w.held.Buffered() + w.pending
	}
	return held, nil
}

// enforce cuts the longest-blocked writes while what the blocked ones hold
// is over max, then schedules itself: in a grace while writes stay blocked
// (a stream that is not read fills up meanwhile), else for the next write
// that will reach grace. One timer serves every write: no per-write timer
// on the data path.
func (b *clientBudget) enforce() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	b.passes++
	now := time.Now()
	held, next := b.charge(now)
	blocked := false
	for el := b.writes.Front(); el != nil && el.Value.(*clientWrite) != next; el = el.Next() {
		w := el.Value.(*clientWrite)
		if w.cut {
			continue
		}
		queued := w.held.Buffered()
		if held <= b.max || queued == 0 { // nothing queued behind its write: its stream is not what fills the edge
			blocked = true
			continue
		}
		// The handler's goroutine is inside its write (leave has not run:
		// we hold mu), so the response writer is still live. The write
		// fails at once and toClient ends the response.
		w.cut = true
		_ = w.rc.SetWriteDeadline(now)
		b.evicted++
		held -= queued + w.pending
	}
	switch {
	case blocked:
		b.arm(b.grace)
	case next != nil:
		b.arm(b.grace - now.Sub(next.since))
	}
}

// cutByBudget reports how many responses the budget has cut.
func (b *clientBudget) cutByBudget() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.evicted
}
