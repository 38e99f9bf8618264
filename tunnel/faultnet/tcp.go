package faultnet

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// tcpChunk is the most one read takes from a socket.
const tcpChunk = 32 << 10

// tcpSocketBuffer is the fixed receive buffer of the proxy's sockets. A
// fixed size turns off kernel autotuning, so a held or rate-limited
// direction backs the sender up after about this much, not megabytes.
const tcpSocketBuffer = 64 << 10

// TCPProxy forwards TCP connections from a loopback listener to a target,
// one upstream connection per accepted one, with impairments.
//
// A black hole stops reading and writing in both directions but closes
// nothing: the bytes already read are held and delivered once it is lifted,
// as TCP retransmission would after a path outage. Connections arriving
// during a black hole are still accepted (the kernel completes the
// handshake) but carry nothing until it is lifted. Half-closes are forwarded
// after the data before them.
type TCPProxy struct {
	imp    *impairments
	ln     net.Listener
	target string
	ctx    context.Context // cancelled by Close; bounds upstream dials
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu     sync.Mutex
	links  map[*tcpLink]struct{}
	closed bool
}

// NewTCPProxy listens on an ephemeral port of 127.0.0.1 and forwards each
// connection to target (host:port). Close stops it.
func NewTCPProxy(target string) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &TCPProxy{imp: newImpairments(), ln: ln, target: target, links: map[*tcpLink]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// Addr is the address clients connect to.
func (p *TCPProxy) Addr() net.Addr { return p.ln.Addr() }

// SetBlackhole stops (true) or resumes (false) all forwarding.
func (p *TCPProxy) SetBlackhole(on bool) { p.imp.setBlackhole(on) }

// SetDelay adds d of one-way latency in each direction to data read from
// now on. Order is preserved.
func (p *TCPProxy) SetDelay(d time.Duration) { p.imp.setDelay(d) }

// SetRate caps each direction of each connection at bytesPerSec; zero
// removes the cap.
func (p *TCPProxy) SetRate(bytesPerSec int64) { p.imp.setRate(bytesPerSec) }

// SetQueueLimit bounds the bytes queued per direction of a connection
// (DefaultQueueLimit when n <= 0). Once it is reached the proxy stops
// reading from that side.
func (p *TCPProxy) SetQueueLimit(n int) { p.imp.setLimit(n) }

// Close stops accepting, closes every connection and waits for all of the
// proxy's goroutines.
func (p *TCPProxy) Close() error {
	p.once.Do(func() {
		p.cancel()
		p.ln.Close()
		p.mu.Lock()
		p.closed = true
		links := make([]*tcpLink, 0, len(p.links))
		for l := range p.links {
			links = append(links, l)
		}
		p.mu.Unlock()
		for _, l := range links {
			l.abort()
		}
		p.wg.Wait()
	})
	return nil
}

func (p *TCPProxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		p.wg.Go(func() { p.serve(c.(*net.TCPConn)) })
	}
}

// serve dials the target for one accepted connection and starts forwarding.
func (p *TCPProxy) serve(down *net.TCPConn) {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.target)
	if err != nil {
		down.Close()
		return
	}
	up := c.(*net.TCPConn)
	for _, c := range []*net.TCPConn{down, up} {
		_ = c.SetReadBuffer(tcpSocketBuffer)
	}
	l := &tcpLink{p: p, down: down, up: up, stop: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		down.Close()
		up.Close()
		return
	}
	p.links[l] = struct{}{}
	p.mu.Unlock()
	l.start(down, up)
	l.start(up, down)
}

// tcpLink is one proxied connection: the client side and the upstream side.
type tcpLink struct {
	p        *TCPProxy
	down, up *net.TCPConn
	stop     chan struct{}
	once     sync.Once
	eofMu    sync.Mutex
	eofs     int // directions that delivered their EOF
}

// start forwards src to dst: a reader fills a pipe, the pipe writes dst.
func (l *tcpLink) start(src, dst *net.TCPConn) {
	q := newPipe(l.p.imp, l.stop, false,
		func(b []byte) bool {
			if _, err := dst.Write(b); err != nil {
				l.abort()
				return false
			}
			return true
		},
		func() { _ = dst.CloseWrite(); l.halfClosed() })
	l.p.wg.Go(q.run)
	l.p.wg.Go(func() { l.read(src, q) })
}

// read moves data from src into q until EOF or an error.
func (l *tcpLink) read(src *net.TCPConn, q *pipe) {
	buf := make([]byte, tcpChunk)
	for {
		if hole := l.p.imp.holed(); hole != nil {
			select {
			case <-hole:
			case <-l.stop:
				return
			}
		}
		n, err := src.Read(buf)
		delay, _, _, _ := l.p.imp.get()
		due := time.Now().Add(delay)
		if n > 0 {
			var b []byte
			if n < len(buf)/2 { // copy small reads so the queue holds what it counts
				b = append([]byte(nil), buf[:n]...)
			} else {
				b, buf = buf[:n], make([]byte, tcpChunk)
			}
			if !q.push(segment{b: b, due: due}) {
				return
			}
		}
		if errors.Is(err, io.EOF) {
			q.push(segment{eof: true, due: due})
			return
		}
		if err != nil {
			l.abort()
			return
		}
	}
}

// halfClosed counts delivered EOFs; after both directions the link is done.
func (l *tcpLink) halfClosed() {
	l.eofMu.Lock()
	l.eofs++
	both := l.eofs == 2
	l.eofMu.Unlock()
	if both {
		l.abort()
	}
}

// abort closes both sides and stops the link's goroutines.
func (l *tcpLink) abort() {
	l.once.Do(func() {
		close(l.stop)
		l.down.Close()
		l.up.Close()
		l.p.mu.Lock()
		delete(l.p.links, l)
		l.p.mu.Unlock()
	})
}
