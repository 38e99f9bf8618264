package e2e

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// udpGate forwards UDP datagrams to a target while open and silently drops
// them while closed: UDP blocked at the border, with no ICMP to say so.
type udpGate struct {
	conn   *net.UDPConn
	target *net.UDPAddr
	open   atomic.Bool

	mu       sync.Mutex
	upstream map[string]*net.UDPConn // one upstream socket per client address
	wg       sync.WaitGroup
}

func newUDPGate(t testing.TB, target string) *udpGate {
	t.Helper()
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	g := &udpGate{conn: conn, target: ta, upstream: map[string]*net.UDPConn{}}
	g.wg.Add(1)
	go g.serve()
	t.Cleanup(g.close)
	return g
}

func (g *udpGate) addr() string { return g.conn.LocalAddr().String() }

func (g *udpGate) serve() {
	defer g.wg.Done()
	buf := make([]byte, 64<<10)
	for {
		n, from, err := g.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if !g.open.Load() {
			continue
		}
		if up := g.upstreamFor(from); up != nil {
			_, _ = up.Write(buf[:n])
		}
	}
}

func (g *udpGate) upstreamFor(client *net.UDPAddr) *net.UDPConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	if up, ok := g.upstream[client.String()]; ok {
		return up
	}
	up, err := net.DialUDP("udp", nil, g.target)
	if err != nil {
		return nil
	}
	g.upstream[client.String()] = up
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := up.Read(buf)
			if err != nil {
				return
			}
			if g.open.Load() {
				_, _ = g.conn.WriteToUDP(buf[:n], client)
			}
		}
	}()
	return up
}

func (g *udpGate) close() {
	g.conn.Close()
	g.mu.Lock()
	for _, up := range g.upstream {
		up.Close()
	}
	g.mu.Unlock()
	g.wg.Wait()
}
