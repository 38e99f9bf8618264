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
// session window), so clientBudget bounds how many responses may be blocked
// at once: past the cap, the one blocked the longest is cut. It is a client
// that reads nothing, so no client that reads loses its response.
type clientBudget struct {
	max    int           // responses that may be blocked at once; 0: no cap
	window int64         // bytes one blocked response may hold (its stream window)
	grace  time.Duration // a write counts as blocked once it has lasted this long

	mu      sync.Mutex
	writes  list.List // of *clientWrite, oldest first
	timer   *time.Timer
	armed   bool
	evicted int64 // responses cut to keep within the budget
}

// clientWrite is one write to a client in progress.
type clientWrite struct {
	since time.Time
	rc    *http.ResponseController
	cut   bool // cut by the budget: its write deadline is now
}

// defaultBlockedAfter is how long a write must last to count as blocked: a
// client that reads, even slowly, takes each piece well within it.
const defaultBlockedAfter = time.Second

// SetClientBufferBudget bounds the memory responses blocked on their
// clients may hold at the edge to budget bytes, window being the tunnel's
// stream window. A blocked response is charged twice its window: yamux
// keeps a stream's unread data in a bytes.Buffer, whose growth by doubling
// can reach about twice the window (QUIC holds at most the window). budget
// <= 0 or window <= 0 leaves it unbounded. Call it before the first Forward.
func (f *Forwarder) SetClientBufferBudget(budget, window int64) {
	if budget <= 0 || window <= 0 {
		f.budget = clientBudget{}
		return
	}
	held := 2 * window
	f.budget = clientBudget{max: max(1, int(budget/held)), window: held, grace: defaultBlockedAfter}
}

// ClientBuffer reports the budget in bytes (0: none) and an estimate of
// what responses blocked on their clients hold now (blocked × window).
func (f *Forwarder) ClientBuffer() (held, budget int64) {
	b := &f.budget
	return f.blocked.Load() * b.window, int64(b.max) * b.window
}

// enter records a write to a client that starts now; the returned write
// must be passed to leave when it ends.
func (b *clientBudget) enter(rc *http.ResponseController) (*list.Element, *clientWrite) {
	if b.max == 0 {
		return nil, nil
	}
	w := &clientWrite{since: time.Now(), rc: rc}
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

// enforce cuts the longest-blocked writes while more than max have lasted
// grace, then schedules itself for the next write that will reach grace.
// One timer serves every write: no per-write timer on the data path.
func (b *clientBudget) enforce() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	now := time.Now()
	blocked := 0
	var next *clientWrite // the oldest write not yet blocked
	for el := b.writes.Front(); el != nil; el = el.Next() {
		w := el.Value.(*clientWrite)
		if w.cut {
			continue
		}
		if now.Sub(w.since) < b.grace {
			next = w
			break
		}
		blocked++
	}
	for el := b.writes.Front(); el != nil && blocked > b.max; el = el.Next() {
		w := el.Value.(*clientWrite)
		if w.cut {
			continue
		}
		// The handler's goroutine is inside its write (leave has not run:
		// we hold mu), so the response writer is still live. The write
		// fails at once and toClient ends the response.
		w.cut = true
		_ = w.rc.SetWriteDeadline(now)
		b.evicted++
		blocked--
	}
	if next != nil {
		b.arm(b.grace - now.Sub(next.since))
	}
}

// cutByBudget reports how many responses the budget has cut.
func (b *clientBudget) cutByBudget() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.evicted
}
