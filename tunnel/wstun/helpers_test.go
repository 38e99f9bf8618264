package wstun_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// opTimeout bounds every single blocking step of a test, so a hang fails the
// test with a message instead of stalling until go test's global timeout.
const opTimeout = 10 * time.Second

// testConfig keeps the handshake bound short; heartbeats stay at their
// production defaults unless a test needs otherwise.
func testConfig() wstun.Config {
	return wstun.Config{HandshakeTimeout: 5 * time.Second}
}

// listen starts a relay-side Listener on a loopback port; it is closed when
// the test ends.
func listen(t *testing.T, pki *tunneltest.PKI, cfg wstun.Config) *wstun.Listener {
	t.Helper()
	ln, err := listenWith(t, pki.ServerConfig(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	return ln
}

// listenWith is listen with the caller's server TLS config.
func listenWith(t *testing.T, tc *tls.Config, cfg wstun.Config) (*wstun.Listener, error) {
	t.Helper()
	ln, err := wstun.Listen(tunneltest.Listen(t), tc, cfg)
	if err == nil {
		t.Cleanup(func() { ln.Close() })
	}
	return ln, err
}

// dial opens an edge-side session to addr; a successful session is closed
// when the test ends.
func dial(t *testing.T, addr string, tc *tls.Config, cfg wstun.Config) (tunnel.Session, error) {
	t.Helper()
	d, err := wstun.NewDialer(addr, tc, cfg)
	if err != nil {
		t.Fatalf("NewDialer: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	sess, err := d.Dial(ctx)
	if err == nil {
		t.Cleanup(func() { sess.Close() })
	}
	return sess, err
}

// accept waits for the next session on ln and closes it when the test ends.
func accept(t *testing.T, ln tunnel.Listener) tunnel.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	sess, err := ln.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// pair is one edge session and the relay session it landed on.
type pair struct {
	pki         *tunneltest.PKI
	ln          *wstun.Listener
	edge, relay tunnel.Session
}

// newPair connects an edge to a relay directly over loopback.
func newPair(t *testing.T, cfg wstun.Config) *pair {
	t.Helper()
	pki := tunneltest.NewPKI(t, "")
	ln := listen(t, pki, cfg)
	return connect(t, pki, ln, ln.Addr().String(), cfg)
}

// connect dials addr (the listener or a proxy in front of it) and accepts
// the resulting session on ln.
func connect(t *testing.T, pki *tunneltest.PKI, ln *wstun.Listener, addr string, cfg wstun.Config) *pair {
	t.Helper()
	edge, err := dial(t, addr, pki.ClientConfig(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return &pair{pki: pki, ln: ln, edge: edge, relay: accept(t, ln)}
}

// open opens a stream with a bounded context and a deadline on all I/O.
func open(t *testing.T, s tunnel.Session) tunnel.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	st, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	st.SetDeadline(time.Now().Add(opTimeout))
	t.Cleanup(func() { st.Close() })
	return st
}

// acceptStream is open's counterpart on the accepting side.
func acceptStream(t *testing.T, s tunnel.Session) tunnel.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	st, err := s.AcceptStream(ctx)
	if err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	st.SetDeadline(time.Now().Add(opTimeout))
	t.Cleanup(func() { st.Close() })
	return st
}

// result is the outcome of a call run in the background.
type result struct {
	n   int
	err error
}

// async runs fn in a goroutine and returns its result channel.
func async(fn func() (int, error)) <-chan result {
	ch := make(chan result, 1)
	go func() {
		n, err := fn()
		ch <- result{n, err}
	}()
	return ch
}

// await waits at most d for ch.
func await(t *testing.T, what string, ch <-chan result, d time.Duration) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("%s still blocked after %v", what, d)
		return result{}
	}
}

// waitClosed waits at most d for ch to close and returns how long it took.
func waitClosed(t *testing.T, what string, ch <-chan struct{}, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-ch:
		return time.Since(start)
	case <-time.After(d):
		t.Fatalf("%s not closed after %v", what, d)
		return 0
	}
}

// isTimeout reports whether err is a net.Error timeout (a deadline hit).
func isTimeout(err error) bool {
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// holeProxy is a user-space TCP proxy in front of a target. BlackHole makes
// it stop forwarding in both directions while keeping every connection open:
// to each end the other looks like a peer whose cable was cut (no FIN, no
// RST, no ACKed data). It stops reading too, so a sender's socket buffers
// fill up and its writes block, as they would on a real dead path.
type holeProxy struct {
	ln     net.Listener
	target string
	hole   chan struct{}
	done   chan struct{}
	once   sync.Once

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// newHoleProxy starts a proxy to target on loopback; it is closed when the
// test ends.
func newHoleProxy(t *testing.T, target string) *holeProxy {
	p := &holeProxy{ln: tunneltest.Listen(t), target: target,
		hole: make(chan struct{}), done: make(chan struct{})}
	p.wg.Go(p.acceptLoop)
	t.Cleanup(p.close)
	return p
}

func (p *holeProxy) Addr() string { return p.ln.Addr().String() }

// BlackHole stops all forwarding; it cannot be undone.
func (p *holeProxy) BlackHole() { close(p.hole) }

func (p *holeProxy) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		// A small, fixed receive buffer (no autotuning) so that a stalled
		// proxy backs the sender up after a few hundred KiB, not 32 MiB.
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		up.(*net.TCPConn).SetReadBuffer(64 << 10)
		p.mu.Lock()
		select {
		case <-p.done: // close already swept p.conns
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		default:
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c) })
		p.wg.Go(func() { p.pipe(c, up) })
	}
}

// pipe copies src to dst until either fails or the hole opens; after that it
// holds whatever it read and waits for close.
func (p *holeProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.hole:
			<-p.done
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				dst.(*net.TCPConn).CloseWrite()
			}
			return
		}
	}
}

func (p *holeProxy) close() {
	p.once.Do(func() {
		close(p.done)
		p.ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
}
