package faultnet

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"
)

// udpSocketBuffer is the socket buffer size the proxy asks for (the kernel
// may grant less), so that bursts are queued and impaired by the proxy
// rather than dropped by the kernel.
const udpSocketBuffer = 4 << 20

// UDPProxy forwards datagrams from a loopback socket to a target. Each
// client address gets its own upstream socket (a flow), so the target sees
// one peer per client, as behind a NAT. Flows last until Close.
//
// A black hole drops every datagram in both directions, queued ones
// included; SetLoss drops each one independently with a probability.
type UDPProxy struct {
	imp    *impairments
	conn   *net.UDPConn
	target *net.UDPAddr
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	mu     sync.Mutex
	flows  map[netip.AddrPort]*udpFlow
	closed bool
}

// NewUDPProxy listens on an ephemeral UDP port of 127.0.0.1 and forwards
// to target (host:port). Close stops it.
func NewUDPProxy(target string) (*UDPProxy, error) {
	taddr, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	setUDPBuffers(conn)
	p := &UDPProxy{imp: newImpairments(), conn: conn, target: taddr,
		stop: make(chan struct{}), flows: map[netip.AddrPort]*udpFlow{}}
	p.wg.Go(p.readClients)
	return p, nil
}

func setUDPBuffers(c *net.UDPConn) {
	_ = c.SetReadBuffer(udpSocketBuffer)
	_ = c.SetWriteBuffer(udpSocketBuffer)
}

// Addr is the address clients send to.
func (p *UDPProxy) Addr() net.Addr { return p.conn.LocalAddr() }

// SetBlackhole drops (true) or forwards again (false) all datagrams.
func (p *UDPProxy) SetBlackhole(on bool) { p.imp.setBlackhole(on) }

// SetDelay adds d of one-way latency in each direction to datagrams
// arriving from now on.
func (p *UDPProxy) SetDelay(d time.Duration) { p.imp.setDelay(d) }

// SetLoss drops each datagram, in either direction, with probability prob
// (clamped to [0, 1]).
func (p *UDPProxy) SetLoss(prob float64) { p.imp.setLoss(prob) }

// SetRate caps each direction of each flow at bytesPerSec; zero removes
// the cap. Datagrams beyond the queue limit are dropped, oldest first.
func (p *UDPProxy) SetRate(bytesPerSec int64) { p.imp.setRate(bytesPerSec) }

// SetQueueLimit bounds the bytes queued per direction of a flow
// (DefaultQueueLimit when n <= 0).
func (p *UDPProxy) SetQueueLimit(n int) { p.imp.setLimit(n) }

// Close closes the socket and every flow and waits for all of the proxy's
// goroutines.
func (p *UDPProxy) Close() error {
	p.once.Do(func() {
		close(p.stop)
		p.conn.Close()
		p.mu.Lock()
		p.closed = true
		for _, f := range p.flows {
			f.up.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return nil
}

// admit decides whether a datagram arriving now is forwarded, and when.
func (p *UDPProxy) admit() (due time.Time, ok bool) {
	if p.imp.holed() != nil {
		return time.Time{}, false
	}
	delay, loss, _, _ := p.imp.get()
	if loss > 0 && rand.Float64() < loss {
		return time.Time{}, false
	}
	return time.Now().Add(delay), true
}

// readClients receives from clients and queues toward the target.
func (p *UDPProxy) readClients() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // a transient error; keep serving
		}
		due, ok := p.admit()
		if !ok {
			continue
		}
		if f := p.flow(from); f != nil {
			f.toTarget.push(segment{b: append([]byte(nil), buf[:n]...), due: due})
		}
	}
}

// udpFlow is one client's path: its own upstream socket and two pipes.
type udpFlow struct {
	up                 *net.UDPConn
	toTarget, toClient *pipe
}

// flow returns the flow of client, creating it on first use; nil once the
// proxy is closed or the upstream socket cannot be opened.
func (p *UDPProxy) flow(client netip.AddrPort) *udpFlow {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.flows[client]; ok || p.closed {
		return f
	}
	up, err := net.DialUDP("udp", nil, p.target)
	if err != nil {
		return nil
	}
	setUDPBuffers(up)
	f := &udpFlow{up: up}
	// Send errors (the target is not listening, buffers full) lose the
	// datagram, as the network would; the flow goes on.
	f.toTarget = newPipe(p.imp, p.stop, true, func(b []byte) bool { _, _ = up.Write(b); return true }, nil)
	f.toClient = newPipe(p.imp, p.stop, true, func(b []byte) bool {
		_, _ = p.conn.WriteToUDPAddrPort(b, client)
		return true
	}, nil)
	p.flows[client] = f
	p.wg.Go(f.toTarget.run)
	p.wg.Go(f.toClient.run)
	p.wg.Go(func() { p.readUpstream(f) })
	return f
}

// readUpstream receives the target's replies for one flow.
func (p *UDPProxy) readUpstream(f *udpFlow) {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.up.Read(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // ECONNREFUSED while the target is down
		}
		if due, ok := p.admit(); ok {
			f.toClient.push(segment{b: append([]byte(nil), buf[:n]...), due: due})
		}
	}
}
