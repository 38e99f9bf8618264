package fec

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Mode says to which peers a Conn speaks FEC.
type Mode int

const (
	// Always sends FEC frames to every peer: the edge, when configured.
	Always Mode = iota
	// Answer sends FEC frames only to a peer that has sent one, in that
	// peer's shape, once QUIC has validated its address (Trust), and plain
	// datagrams to the rest: the relay, which serves edges of both kinds
	// on one socket.
	Answer
)

// Conn wraps a net.PacketConn with FEC (see the package doc). Datagrams
// that are not FEC frames pass through unchanged both ways, so a Conn
// serves plain QUIC peers too. It is safe for concurrent use.
type Conn struct {
	pc    net.PacketConn
	mode  Mode
	shape Shape // what Always sends
	// flushDelay is FlushDelay; tests that need full groups only make it
	// long.
	flushDelay time.Duration

	mu        sync.RWMutex
	peers     map[netip.AddrPort]*peer
	closed    bool
	lastSweep time.Time // read path only

	// rmu serialises readers: the receive state of every peer, the read
	// buffer and the recovered datagrams waiting to be read.
	rmu     sync.Mutex
	rbuf    []byte
	pending []recovered

	buffered atomic.Int64 // bytes of shards kept for reconstruction
	// untrusted and hosts are the part of buffered kept for untrusted
	// peers, in all and by source host; under rmu.
	untrusted int64
	hosts     map[netip.Addr]int
	stats     counters
	// plain: SendPlain was called; every datagram goes out as it is.
	plain atomic.Bool
}

type recovered struct {
	data []byte
	addr net.Addr
}

// counters are the Conn's statistics.
type counters struct {
	dataSent, paritySent, recovered, unrecovered, dropped atomic.Uint64
}

// Stats is what a Conn has done so far.
type Stats struct {
	DataSent   uint64 // datagrams sent in FEC frames
	ParitySent uint64 // parity frames sent
	Recovered  uint64 // lost datagrams rebuilt and passed up
	// Unrecovered counts lost datagrams of groups that lost more frames
	// than their parity rebuilds, when the group leaves the window: each
	// is a loss QUIC sees and answers with a window cut.
	Unrecovered uint64
	Dropped     uint64 // FEC frames dropped as malformed, duplicate, too old or inconsistent
}

// Stats returns the counters.
func (c *Conn) Stats() Stats {
	return Stats{DataSent: c.stats.dataSent.Load(), ParitySent: c.stats.paritySent.Load(),
		Recovered: c.stats.recovered.Load(), Unrecovered: c.stats.unrecovered.Load(), Dropped: c.stats.dropped.Load()}
}

// NewConn wraps pc. With mode Always, shape must be enabled and valid;
// with Answer it is ignored (each peer's own shape is mirrored). The Conn
// owns pc: closing the Conn closes it.
func NewConn(pc net.PacketConn, mode Mode, shape Shape) (*Conn, error) {
	if mode == Always {
		if err := shape.Validate(); err != nil {
			return nil, err
		}
		if !shape.Enabled() {
			return nil, errors.New("fec: Always needs a shape")
		}
	}
	return &Conn{pc: pc, mode: mode, shape: shape, peers: make(map[netip.AddrPort]*peer), hosts: make(map[netip.Addr]int),
		rbuf: make([]byte, 2048), lastSweep: time.Now(), flushDelay: FlushDelay}, nil
}

// peer is what a Conn knows of one remote address.
type peer struct {
	addr  net.Addr
	last  atomic.Int64  // unix nanoseconds of the last datagram either way
	fec   atomic.Bool   // the peer has sent an FEC frame
	shape atomic.Uint32 // the peer's shape, Data<<8 | Parity, 0 until seen
	// trust counts the QUIC connections that validated this address
	// (Conn.Trust); ours: an Always Conn has sent to it. Either makes the
	// peer trusted.
	trust atomic.Int32
	ours  atomic.Bool

	rx *receiver // under Conn.rmu; nil until the first FEC frame

	smu sync.Mutex
	tx  *sender // nil until the first FEC write
}

func (p *peer) touch(now time.Time) { p.last.Store(now.UnixNano()) }

func (p *peer) trusted() bool { return p.ours.Load() || p.trust.Load() > 0 }

func keyOf(addr net.Addr) (netip.AddrPort, bool) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}

func (c *Conn) lookup(addr net.Addr) *peer {
	k, ok := keyOf(addr)
	if !ok {
		return nil
	}
	c.mu.RLock()
	p := c.peers[k]
	c.mu.RUnlock()
	return p
}

// peerFor returns the peer of addr, adding it if the table has room.
func (c *Conn) peerFor(addr net.Addr) *peer {
	if p := c.lookup(addr); p != nil {
		return p
	}
	k, ok := keyOf(addr)
	if !ok {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.peers[k]; p != nil || c.closed || len(c.peers) >= maxPeers {
		return p // nil when full: that peer gets no FEC until entries expire
	}
	p := &peer{addr: addr}
	p.touch(time.Now())
	c.peers[k] = p
	return p
}

// Trust marks addr as validated by QUIC (a handshake from it completed)
// until release is called: an answering Conn sends a peer FEC frames only
// while it is trusted, and keeps its shards against the whole budget.
// Before, anyone could have sent its frames from a spoofed address, and
// parity frames on the handshake's answers would have let them make the
// relay send that address up to twice QUIC's anti-amplification limit.
// A trusted peer stays in the table, whatever its size, and does not
// expire. Calls nest: the peer is trusted until each has been released.
func (c *Conn) Trust(addr net.Addr) (release func()) {
	k, ok := keyOf(addr)
	if !ok {
		return func() {}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return func() {}
	}
	p := c.peers[k]
	if p == nil { // past maxPeers too: trusted peers are bounded by live connections
		p = &peer{addr: addr}
		p.touch(time.Now())
		c.peers[k] = p
	}
	p.trust.Add(1)
	return sync.OnceFunc(func() { p.touch(time.Now()); p.trust.Add(-1) })
}

// SpeaksFEC reports whether the peer at addr has sent FEC frames (lately:
// peers expire after a minute of silence).
func (c *Conn) SpeaksFEC(addr net.Addr) bool {
	p := c.lookup(addr)
	return p != nil && p.fec.Load()
}

// SendPlain makes the Conn send every later datagram as it is, as if it
// had no shape: an edge's Conn whose path turned out too short for FEC to
// pay (see quictun.Config.FECMinRTT). Groups already open still get their
// parity when their flush timer fires. It still reads both kinds, and an
// answering peer, hearing plain datagrams, answers plainly too
// (heardPlain).
func (c *Conn) SendPlain() { c.plain.Store(true) }

// WriteTo sends b to addr: in an FEC frame when addr is a FEC peer (see
// Mode), else as it is.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if len(b) > MaxPayload || c.plain.Load() {
		return c.pc.WriteTo(b, addr)
	}
	var p *peer
	if c.mode == Always {
		if p = c.peerFor(addr); p != nil {
			p.ours.Store(true)
		}
	} else if p = c.lookup(addr); p != nil && (!p.fec.Load() || !p.trusted()) {
		p = nil // anti-amplification: nothing but what QUIC sends, until it validated addr
	}
	if p == nil {
		return c.pc.WriteTo(b, addr)
	}
	shape := c.shape
	if c.mode == Answer {
		v := p.shape.Load()
		shape = Shape{Data: int(v >> 8), Parity: int(v & 0xff)}
	}
	p.touch(time.Now())
	return c.send(p, shape, b, addr)
}

// ReadFrom returns the next datagram: a plain one as it came, the datagram
// inside a data frame, or one rebuilt from a group. Parity frames and
// malformed frames are consumed.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if len(c.pending) > 0 {
			r := c.pending[0]
			c.pending[0] = recovered{}
			c.pending = c.pending[1:]
			return copy(b, r.data), r.addr, nil
		}
		n, addr, err := c.pc.ReadFrom(c.rbuf)
		if err != nil {
			return 0, addr, err
		}
		f := c.rbuf[:n]
		if n == 0 || (f[0] != kindData && f[0] != kindParity) {
			c.heardPlain(addr)
			return copy(b, f), addr, nil
		}
		if data := c.receive(f, addr); data != nil {
			return copy(b, data), addr, nil
		}
	}
}

// heardPlain notes a plain datagram from addr: an answering Conn answers
// in the kind the peer spoke last. An FEC peer sends nothing plain (but
// datagrams longer than MaxPayload, which quic-go does not send) until it
// stops FEC on a short path (SendPlain): then the relay stops too. It also
// undoes an FEC frame forged with the address of a peer that predates FEC:
// the relay would answer it in frames it cannot read, and the forger would
// have to outpace the peer's own packets to keep it so.
func (c *Conn) heardPlain(addr net.Addr) {
	if c.mode != Answer {
		return
	}
	if p := c.lookup(addr); p != nil && p.fec.Load() {
		p.fec.Store(false)
	}
}

// receive handles one FEC frame and returns the datagram to pass up, if
// any; rebuilt datagrams are queued in c.pending.
func (c *Conn) receive(f []byte, addr net.Addr) []byte {
	now := time.Now()
	if now.Sub(c.lastSweep) >= peerIdle/2 {
		c.sweep(now)
	}
	h, ok := parseHeader(f)
	if !ok {
		c.stats.dropped.Add(1)
		return nil
	}
	p := c.peerFor(addr)
	if p == nil && now.Sub(c.lastSweep) >= sweepEvery {
		c.sweep(now)
		p = c.peerFor(addr)
	}
	if p == nil { // table full of live peers: pass data up without recovery
		if h.kind == kindData {
			return f[headerLen+lenLen:]
		}
		c.stats.dropped.Add(1)
		return nil
	}
	p.touch(now)
	if h.kind == kindData {
		// Only a data frame says the peer speaks FEC and in which shape (a
		// checked one: parseHeader bounds K and M); a parity frame alone,
		// lost data or forged, leaves the answers as they were.
		p.shape.Store(uint32(h.a)<<8 | uint32(h.b))
		p.fec.Store(true)
	}
	if p.rx == nil {
		k, _ := keyOf(addr)
		p.rx = &receiver{peer: p, host: k.Addr()}
	}
	data, rebuilt := p.rx.receive(c, h, f)
	for _, r := range rebuilt {
		c.pending = append(c.pending, recovered{data: r, addr: addr})
	}
	return data
}

// sweep forgets peers silent for peerIdle, with their buffers. Read path
// only (it touches receive state).
func (c *Conn) sweep(now time.Time) {
	c.lastSweep = now
	cut := now.Add(-peerIdle).UnixNano()
	c.mu.Lock()
	var gone []*peer
	for k, p := range c.peers {
		if p.last.Load() < cut && p.trust.Load() == 0 {
			delete(c.peers, k)
			gone = append(gone, p)
		}
	}
	c.mu.Unlock()
	for _, p := range gone {
		c.forget(p)
	}
}

// forget releases a peer removed from the table.
func (c *Conn) forget(p *peer) {
	if p.rx != nil {
		p.rx.release(c)
	}
	p.smu.Lock()
	if p.tx != nil {
		p.tx.stop()
	}
	p.smu.Unlock()
}

// Close stops every flush timer and closes the wrapped connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	peers := c.peers
	c.peers = map[netip.AddrPort]*peer{}
	c.mu.Unlock()
	for _, p := range peers {
		p.smu.Lock()
		if p.tx != nil {
			p.tx.stop()
		}
		p.smu.Unlock()
	}
	return c.pc.Close()
}

// LocalAddr is the wrapped connection's.
func (c *Conn) LocalAddr() net.Addr { return c.pc.LocalAddr() }

// SetDeadline and the two below pass to the wrapped connection.
func (c *Conn) SetDeadline(t time.Time) error { return c.pc.SetDeadline(t) }

// SetReadDeadline passes to the wrapped connection.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// SetWriteDeadline passes to the wrapped connection.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.pc.SetWriteDeadline(t) }

// SetReadBuffer, SetWriteBuffer and SyscallConn reach the UDP socket, so
// that quic-go still sizes and checks its buffers and sets Don't Fragment
// (path MTU discovery) through the wrapper. The wrapper does not offer
// ReadMsgUDP/WriteMsgUDP: quic-go then reads and writes one datagram per
// call, without GSO, batched reads or ECN.
func (c *Conn) SetReadBuffer(n int) error {
	if s, ok := c.pc.(interface{ SetReadBuffer(int) error }); ok {
		return s.SetReadBuffer(n)
	}
	return errors.ErrUnsupported
}

// SetWriteBuffer: see SetReadBuffer.
func (c *Conn) SetWriteBuffer(n int) error {
	if s, ok := c.pc.(interface{ SetWriteBuffer(int) error }); ok {
		return s.SetWriteBuffer(n)
	}
	return errors.ErrUnsupported
}

// SyscallConn: see SetReadBuffer.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if s, ok := c.pc.(syscall.Conn); ok {
		return s.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

var _ net.PacketConn = (*Conn)(nil)
