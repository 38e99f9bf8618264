// Package faultnet impairs loopback traffic in user space, for tests and for
// the border-emulation lab: this machine has no netem. A TCPProxy or UDPProxy
// sits between a client and a target and forwards bytes or datagrams,
// applying impairments that can be changed while traffic flows:
//
//   - SetBlackhole: stop forwarding in both directions without closing
//     anything, so each end sees a peer that went silent (no FIN, no RST).
//   - SetDelay: one-way latency added in each direction (the round trip
//     grows by twice the value).
//   - SetRate: a per-direction bandwidth cap.
//   - SetLoss (UDP only): drop each datagram with a probability. A TCP proxy
//     cannot lose bytes: the kernel has acknowledged them already, and
//     dropping some would corrupt the stream instead of emulating loss.
//
// Queues are bounded (SetQueueLimit). When one is full a TCP proxy stops
// reading, which pushes back on the sender through TCP flow control; a UDP
// proxy drops the oldest queued datagram, as a router's tail queue would.
//
// The package uses the standard library only.
package faultnet

import (
	"sync"
	"time"
)

// DefaultQueueLimit is the default bound on the bytes one direction of one
// connection or flow may hold in its queue.
const DefaultQueueLimit = 2 << 20

// impairments is the runtime-settable state shared by all connections or
// flows of one proxy. All methods are safe for concurrent use.
type impairments struct {
	mu     sync.Mutex
	resume chan struct{} // non-nil while black-holed; closed when lifted
	delay  time.Duration
	loss   float64
	rate   int64 // bytes per second per direction; 0 means unlimited
	limit  int   // queue bound in bytes per direction
}

func newImpairments() *impairments { return &impairments{limit: DefaultQueueLimit} }

func (m *impairments) setBlackhole(on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case on && m.resume == nil:
		m.resume = make(chan struct{})
	case !on && m.resume != nil:
		close(m.resume)
		m.resume = nil
	}
}

// holed returns nil while traffic flows, else a channel that is closed when
// the black hole is lifted.
func (m *impairments) holed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.resume == nil {
		return nil
	}
	return m.resume
}

func (m *impairments) setDelay(d time.Duration) {
	m.mu.Lock()
	m.delay = max(d, 0)
	m.mu.Unlock()
}

func (m *impairments) setLoss(p float64) {
	m.mu.Lock()
	m.loss = min(max(p, 0), 1)
	m.mu.Unlock()
}

func (m *impairments) setRate(bytesPerSec int64) {
	m.mu.Lock()
	m.rate = max(bytesPerSec, 0)
	m.mu.Unlock()
}

func (m *impairments) setLimit(n int) {
	m.mu.Lock()
	if n <= 0 {
		n = DefaultQueueLimit
	}
	m.limit = n
	m.mu.Unlock()
}

func (m *impairments) get() (delay time.Duration, loss float64, rate int64, limit int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.delay, m.loss, m.rate, m.limit
}
