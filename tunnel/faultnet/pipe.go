package faultnet

import (
	"sync"
	"time"
)

// segment is one unit travelling through a pipe: a TCP chunk or a datagram.
type segment struct {
	b   []byte
	due time.Time // arrival plus the delay in force at arrival
	eof bool      // TCP: the source half-closed after the data before this
}

// pipe is one direction of one TCP connection or UDP flow: a bounded FIFO
// filled by a reader and drained by run, which releases each segment when it
// is due, at the configured rate, unless the black hole holds or drops it.
type pipe struct {
	imp  *impairments
	stop <-chan struct{} // closed when the connection, flow or proxy ends
	// lossy selects datagram behaviour: a full queue drops its oldest
	// segment and a black hole discards what it holds. Otherwise (TCP) a
	// full queue blocks push and a black hole holds segments until lifted.
	lossy bool
	// send delivers one segment; false ends the pipe.
	send func([]byte) bool
	// eof runs when an eof segment leaves (TCP half-close); the pipe ends.
	eof func()

	mu     sync.Mutex
	q      []segment
	queued int           // bytes in q
	wake   chan struct{} // cap 1: a segment was queued
	space  chan struct{} // cap 1: a segment left the queue
}

func newPipe(imp *impairments, stop <-chan struct{}, lossy bool, send func([]byte) bool, eof func()) *pipe {
	return &pipe{imp: imp, stop: stop, lossy: lossy, send: send, eof: eof,
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues s. A TCP pipe blocks while the queue is full; a lossy pipe
// drops its oldest segments instead. It reports false once the pipe stopped.
func (p *pipe) push(s segment) bool {
	for {
		_, _, _, limit := p.imp.get()
		p.mu.Lock()
		if p.lossy {
			for p.queued > 0 && p.queued+len(s.b) > limit {
				p.queued -= len(p.q[0].b)
				p.q[0] = segment{}
				p.q = p.q[1:]
			}
		}
		// An empty queue takes any segment, so one larger than the limit
		// cannot wedge the pipe.
		if p.queued == 0 || p.queued+len(s.b) <= limit {
			p.q = append(p.q, s)
			p.queued += len(s.b)
			p.mu.Unlock()
			signal(p.wake)
			return true
		}
		p.mu.Unlock()
		select {
		case <-p.space:
		case <-p.stop:
			return false
		}
	}
}

// pop takes the oldest segment, waiting for one; false once stopped.
func (p *pipe) pop() (segment, bool) {
	for {
		p.mu.Lock()
		if len(p.q) > 0 {
			s := p.q[0]
			p.q[0] = segment{}
			p.q = p.q[1:]
			p.queued -= len(s.b)
			p.mu.Unlock()
			signal(p.space)
			return s, true
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-p.stop:
			return segment{}, false
		}
	}
}

// run releases segments until the pipe stops, an eof segment leaves or a
// send fails.
func (p *pipe) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	sleepUntil := func(t time.Time) bool {
		d := time.Until(t)
		if d <= 0 {
			return true
		}
		timer.Reset(d)
		select {
		case <-timer.C:
			return true
		case <-p.stop:
			return false
		}
	}
	var next time.Time // rate limiter: when the next segment may leave
	for {
		s, ok := p.pop()
		if !ok || !sleepUntil(s.due) {
			return
		}
		if hole := p.imp.holed(); hole != nil {
			if p.lossy {
				continue
			}
			select {
			case <-hole:
			case <-p.stop:
				return
			}
		}
		if s.eof {
			p.eof()
			return
		}
		if _, _, rate, _ := p.imp.get(); rate > 0 {
			if now := time.Now(); next.Before(now) {
				next = now // an idle link earns no burst credit
			}
			if !sleepUntil(next) {
				return
			}
			next = next.Add(time.Duration(int64(len(s.b)) * int64(time.Second) / rate))
		}
		if !p.send(s.b) {
			return
		}
	}
}
