package cli

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// With GOGC=100 the runtime collects each time the heap doubles its live
// part. A serving edge or relay at a high request rate keeps only a few MB
// live (the lab's loopback maximum: requests come and go), so it collected
// several times a second per process and spent about 10 % of its CPU in
// the collector and its allocation assists (profiles of 2026-12-07). Under
// thousands of open streams the live heap is tens of MB and doubling is
// the right rule. HeapHeadroom keeps both: after each collection it sets
// the GC percentage so the next one comes after max(live, Headroom) more
// bytes, that is GOGC=100 above Headroom of live heap and more below it.
// The cost is at most Headroom of extra heap while little is live.
//
// Two rules of the runtime's pacer shape the percentage (mgcpacer.go): the
// growth it allows is GOGC % of the live heap plus the scanned stacks and
// globals, not of the heap alone; and the heap goal never falls below a
// minimum of 4 MiB × GOGC/100. The second is why the percentage is capped:
// with a few hundred KiB live, the 10 000 % that the heap alone would ask
// for made that minimum 400 MiB, and an idle edge could grow to it before
// collecting (found in review; TestHeapHeadroomGoal).

// Headroom is the least the heap may grow between two collections.
const Headroom = 32 << 20

// HeapHeadroom tunes the GC percentage after every collection, as above,
// until the returned stop is called, which restores GOGC=100. It does
// nothing (and stop nothing) when the GOGC environment variable is set:
// the operator chose. The tuning runs as a cleanup on the runtime's own
// goroutine, armed again at each collection; it starts no goroutine.
func HeapHeadroom(headroom uint64) (stop func(), tuned bool) {
	if os.Getenv("GOGC") != "" {
		return func() {}, false
	}
	t := &heapTuner{headroom: headroom, percent: 100, sample: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	t.arm()
	return t.stop, true
}

type heapTuner struct {
	headroom uint64
	mu       sync.Mutex
	stopped  bool
	sample   []metrics.Sample
	percent  int // what SetGCPercent last set
}

// arm runs tune after the next collection: an unreachable object's cleanup
// runs once a collection has found it unreachable.
func (t *heapTuner) arm() {
	runtime.AddCleanup(new(sentinel), func(t *heapTuner) { t.tune() }, t)
}

// sentinel is a heap object of its own (not one of the tiny allocator's
// combined blocks, whose cleanups wait for their neighbours).
type sentinel struct{ _ [16]byte }

func (t *heapTuner) tune() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	metrics.Read(t.sample)
	live := t.sample[0].Value.Uint64()
	scanned := live + t.sample[1].Value.Uint64() + t.sample[2].Value.Uint64()
	if p := percentFor(live, scanned, t.headroom); p != t.percent {
		t.percent = p
		debug.SetGCPercent(p)
	}
	t.arm()
}

func (t *heapTuner) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	debug.SetGCPercent(100)
}

// heapMinimum is the runtime's least heap goal at GOGC=100; GOGC scales it.
const heapMinimum = 4 << 20

// percentFor is the GC percentage that lets a heap with live bytes live
// grow by max(scanned, headroom) before the next collection, where scanned
// is what the pacer multiplies by the percentage (live heap, stacks and
// globals), in steps of 25 so that a live heap that wobbles does not reset
// it at every collection. It is capped so that the pacer's minimum goal
// stays within live+headroom, and at 10 000.
func percentFor(live, scanned, headroom uint64) int {
	scanned = max(scanned, live)
	if live == 0 || scanned >= headroom {
		return 100
	}
	p := int(headroom * 100 / scanned)
	p = (p + 24) / 25 * 25
	limit := int((live+headroom)*100/heapMinimum) / 25 * 25
	return max(100, min(p, limit, 10000))
}
