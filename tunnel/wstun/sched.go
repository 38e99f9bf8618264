package wstun

// The session's send scheduler: nothing urgent behind bulk.
//
// Upstream yamux sends every frame through one FIFO channel and one loop
// that writes each frame to the connection before taking the next. Under a
// slow link the loop blocks on the socket, and whatever yamux queues
// meanwhile (a window update that lets the peer send again, a new stream's
// SYN and request, a ping) waits behind every data frame queued before it
// and behind the kernel's send buffer.
//
// So the connection does not write when yamux hands it a frame
// (wsConn.WriteFrame, from each stream's own goroutine in the fork under
// internal/yamux): it queues the frame here and returns, and one writer
// goroutine (wsConn.writeLoop) takes frames in this order:
//
//  1. urgent: pings, go-aways, and window updates that neither end nor reset
//     a stream (SYN and ACK included: they must precede the stream's data,
//     which they do, being sent first and taken first);
//  2. fresh streams' frames: streams that have sent less than freshBytes, so
//     a new exchange's first bytes (request, response head, first event)
//     overtake older streams' bulk; fresh streams take turns, one frame each;
//  3. the other streams' frames, oldest stream first (lowest id: yamux
//     numbers streams in the order they open).
//
// Why oldest first and not turns for bulk: when the link carries less than
// the streams ask for (one loss-bound window under hundreds of SSE streams),
// equal shares make every exchange finish late, all of them past their
// clients' timeouts, while oldest first finishes as many as the link can
// carry and is no different when the link keeps up (the queue is empty).
// The fresh class keeps the time to first byte short for everyone.
//
// Each stream's frames (data, and the FIN or RST that ends it) keep their
// order. Bytes from other frames never split one: frames stay whole, and
// wsConn batches several into one WebSocket message.
//
// Memory: wsConn.WriteFrame never blocks, so the queue is bounded from above: the
// tunnel stream's Write (session.go) cuts data into writeChunk pieces and
// waits while its stream has streamQueueLimit bytes queued here. yamux's
// own frames are 12 bytes and few. TCP_NOTSENT_LOWAT (sockopt.go) keeps the
// kernel's share of the queue small, so the order chosen here is the order
// the bytes leave in.

import (
	"container/heap"
	"encoding/binary"
	"net"
	"sync"
	"time"
)

const (
	// freshBytes is how much a stream sends before it counts as bulk: a
	// response head and the first SSE events, what the client's time to
	// first token waits for. Small, because every fresh stream's share comes
	// before any bulk: 256 new streams × 2 KiB is 5 s at 100 KB/s.
	freshBytes = 2 << 10
	// writeChunk is the largest data frame a tunnel stream writes, so an
	// urgent frame waits behind at most one chunk already being written.
	writeChunk = 16 << 10
	// streamQueueLimit is how much one stream may have queued before its
	// writer waits: two chunks keep a lone stream's socket busy.
	streamQueueLimit = 2 * writeChunk
	// batchBytes is the most one WebSocket message carries when frames are
	// waiting: fewer WebSocket frames and TLS records per byte, never more
	// than one full TLS record's worth of delay for an urgent frame.
	batchBytes = 16 << 10
)

// yamux frame types and flags (internal/yamux/const.go).
const (
	yamuxTypeWindowUpdate = 1
	yamuxTypePing         = 2
	yamuxTypeGoAway       = 3
	yamuxFlagSYN          = 1
	yamuxFlagACK          = 2
	yamuxFlagFIN          = 4
	yamuxFlagRST          = 8
)

// sched is the send queue of one connection; safe for concurrent use.
type sched struct {
	mu      sync.Mutex
	urgent  [][]byte
	fresh   ring       // fresh streams with frames, in turn
	bulk    streamHeap // the other streams with frames, oldest first
	streams map[uint32]*streamQ
	wake    chan struct{} // one token: there is work, or the queue closed
	closed  bool          // no more frames accepted; the writer drains and stops
	err     error         // why pushes fail (set with closed)
}

// streamQ is one stream's frames, in order.
type streamQ struct {
	id     uint32
	frames [][]byte
	queued int           // data bytes in frames
	sent   int           // data bytes taken so far
	room   chan struct{} // closed once queued < streamQueueLimit; nil when nobody waits
	last   bool          // a FIN or RST is queued: forget the stream once it is taken
	ready  bool          // in fresh or bulk
}

func newSched() *sched {
	return &sched{streams: map[uint32]*streamQ{}, wake: make(chan struct{}, 1)}
}

// push queues one whole frame (header and body). It fails once the queue
// is closed.
func (q *sched) push(frame []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return q.err
	}
	typ, flags := frame[1], binary.BigEndian.Uint16(frame[2:])
	ends := flags&(yamuxFlagFIN|yamuxFlagRST) != 0
	switch {
	case typ == yamuxTypePing, typ == yamuxTypeGoAway, typ == yamuxTypeWindowUpdate && !ends:
		q.urgent = append(q.urgent, frame)
	default:
		id := frameStream(frame)
		s := q.streams[id]
		if s == nil {
			s = &streamQ{id: id}
			q.streams[id] = s
		}
		s.frames = append(s.frames, frame)
		s.queued += len(frame) - yamuxHeaderLen
		s.last = s.last || ends
		q.schedule(s)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// schedule puts s with frames waiting at the end of its class.
func (q *sched) schedule(s *streamQ) {
	if s.ready || len(s.frames) == 0 {
		return
	}
	s.ready = true
	if s.sent < freshBytes {
		q.fresh.push(s)
	} else {
		heap.Push(&q.bulk, s)
	}
}

// take appends to batch the next frames in priority order, up to max bytes
// (at least one frame), and reports whether it found any.
func (q *sched) take(batch [][]byte, max int) ([][]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	size := 0
	for size < max {
		f := q.next()
		if f == nil {
			break
		}
		batch = append(batch, f)
		size += len(f)
	}
	return batch, size > 0
}

// next removes and returns the most urgent frame; nil when there is none.
func (q *sched) next() []byte {
	if len(q.urgent) > 0 {
		f := q.urgent[0]
		q.urgent[0] = nil
		q.urgent = q.urgent[1:]
		return f
	}
	s := q.fresh.pop()
	if s == nil {
		if q.bulk.Len() == 0 {
			return nil
		}
		s = heap.Pop(&q.bulk).(*streamQ)
	}
	f := s.frames[0]
	s.frames[0] = nil
	s.frames = s.frames[1:]
	n := len(f) - yamuxHeaderLen
	s.queued -= n
	s.sent += n
	s.ready = false
	if s.room != nil && s.queued < streamQueueLimit {
		close(s.room)
		s.room = nil
	}
	switch {
	case len(s.frames) > 0:
		q.schedule(s)
	case s.last:
		delete(q.streams, s.id)
	}
	return f
}

// forget drops stream id from the queue once the frames it has queued are
// taken. A stream leaves q.streams when its FIN or RST is taken, but yamux
// sends neither for a stream the peer reset (RST after its close timeout, or
// a refused open), so without this such a stream would stay for the
// session's life. Called when this side is done with the stream; a FIN
// pushed after it makes a new entry that its own take removes.
func (q *sched) forget(id uint32) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.streams[id]
	switch {
	case s == nil:
	case len(s.frames) == 0:
		if s.room != nil {
			close(s.room)
		}
		delete(q.streams, id)
	default:
		s.last = true
	}
}

// room returns a channel that is closed when stream id may queue more, or
// nil when it may now (or the queue is closed, so the write fails below).
func (q *sched) room(id uint32) <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.streams[id]
	if q.closed || s == nil || s.queued < streamQueueLimit {
		return nil
	}
	if s.room == nil {
		s.room = make(chan struct{})
	}
	return s.room
}

// close stops accepting frames (pushes fail with err, net.ErrClosed when
// nil) and releases every waiting stream; frames queued stay for the writer
// to drain.
func (q *sched) close(err error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	if q.err = err; err == nil {
		q.err = net.ErrClosed
	}
	for _, s := range q.streams {
		if s.room != nil {
			close(s.room)
			s.room = nil
		}
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// wait blocks until there may be frames to take; false once the queue is
// closed and empty.
func (q *sched) wait() bool {
	for {
		q.mu.Lock()
		empty := len(q.urgent) == 0 && q.fresh.len() == 0 && q.bulk.Len() == 0
		closed := q.closed
		q.mu.Unlock()
		switch {
		case !empty:
			return true
		case closed:
			return false
		}
		<-q.wake
	}
}

// gather appends to batch what is queued while t runs (the caller armed
// it), until done(batch), the queue closes, or t fires.
func (q *sched) gather(batch [][]byte, t *time.Timer, done func([][]byte) bool) [][]byte {
	for !done(batch) {
		select {
		case <-q.wake:
		case <-t.C:
			return batch
		}
		batch, _ = q.take(batch, batchBytes-batchSize(batch))
		q.mu.Lock()
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return batch
		}
	}
	return batch
}

// fillsSegment reports a batch of segmentFill bytes or more: on a paced
// path it need not wait for more.
func fillsSegment(batch [][]byte) bool { return batchSize(batch) >= segmentFill }

// notAllLazy reports a batch with a frame that is not lazy (lazy.go): the
// lazy ones it carries need not wait.
func notAllLazy(batch [][]byte) bool { return !allLazy(batch) }

// ring is a FIFO of streams.
type ring struct {
	items []*streamQ
	head  int
}

func (r *ring) push(s *streamQ) { r.items = append(r.items, s) }
func (r *ring) len() int        { return len(r.items) - r.head }

func (r *ring) pop() *streamQ {
	if r.len() == 0 {
		return nil
	}
	s := r.items[r.head]
	r.items[r.head] = nil
	r.head++
	if r.head == len(r.items) { // empty: reuse the storage from the start
		r.items, r.head = r.items[:0], 0
	} else if r.head > 64 && r.head*2 > len(r.items) { // mostly consumed: compact
		n := copy(r.items, r.items[r.head:])
		clear(r.items[n:])
		r.items, r.head = r.items[:n], 0
	}
	return s
}

// streamHeap orders streams by id, lowest (oldest) first; container/heap
// drives it.
type streamHeap []*streamQ

func (h streamHeap) Len() int           { return len(h) }
func (h streamHeap) Less(i, j int) bool { return h[i].id < h[j].id }
func (h streamHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *streamHeap) Push(x any)        { *h = append(*h, x.(*streamQ)) }

func (h *streamHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return s
}
