package dispatch

// A Handoff lets the goroutine that serves a stream pass the stream's long
// part, pumping the answer for as long as the model writes, to a fresh
// goroutine, and return.
//
// Why: setting a request up (reading and routing it, converting it, the
// upstream round trip) grows the serving goroutine's stack to 8 or 16 KiB,
// and a goroutine keeps its stack until the GC halves it, one halving per
// cycle and only while it uses under a quarter of it. Parked under the
// frames that set the request up, about 5 KiB deep, it never got below
// 8 KiB, and an answer that streams for minutes held it all along: with
// thousands of open streams, most of the relay's memory per stream was
// stacks (scripts/lab/README.md, "memory per open stream"). The goroutine
// Go starts holds only the pump's few frames.
//
// What the serving goroutine's layers would defer until the stream is over
// they register with Defer instead; Done runs it, last registered first, on
// whichever goroutine ends the stream. Go must be the serving goroutine's
// last use of the Handoff before Done.
//
// A Handoff made with Inline runs Go's function on the calling goroutine:
// Dispatcher.Serve and a fan-out's calls, which return only when the
// exchange is over.
type Handoff struct {
	deferred []func()
	buf      [8]func() // deferred's first array: a relay stream registers up to eight
	inline   bool
	moved    bool // Go started the goroutine that now owns deferred
	// dispatched: the exchange told the edge its request may reach the
	// provider (FrameDispatched); set on the serving goroutine before Go.
	dispatched bool
}

// Dispatched reports whether the exchange sent FrameDispatched: its request
// may have reached the provider. Call it from a deferred function.
func (h *Handoff) Dispatched() bool { return h.dispatched }

// NewHandoff returns a Handoff whose Go starts a goroutine.
func NewHandoff() *Handoff {
	h := &Handoff{}
	h.deferred = h.buf[:0]
	return h
}

// Inline returns a Handoff whose Go runs its function in place.
func Inline() *Handoff {
	h := NewHandoff()
	h.inline = true
	return h
}

// Defer registers f to run when the stream is over.
func (h *Handoff) Defer(f func()) { h.deferred = append(h.deferred, f) }

// Go runs f, the rest of the stream, on a new goroutine that then runs
// what was deferred; inline, it runs f here, and Done runs the rest.
func (h *Handoff) Go(f func()) {
	if h.inline {
		f()
		return
	}
	h.moved = true
	go func() {
		f()
		h.runDeferred()
	}()
}

// Done ends the serving goroutine's part: unless Go moved the stream to
// another goroutine, the stream is over and what was deferred runs now.
func (h *Handoff) Done() {
	if !h.moved {
		h.runDeferred()
	}
}

func (h *Handoff) runDeferred() {
	for i := len(h.deferred) - 1; i >= 0; i-- {
		h.deferred[i]()
		h.deferred[i] = nil
	}
	h.deferred = h.deferred[:0]
}
