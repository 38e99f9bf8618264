package faultnet_test

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait/strait/tunnel/faultnet"
)

// udpServer answers each datagram with itself when echo is set, and counts
// what it receives either way.
type udpServer struct {
	conn *net.UDPConn
	n    atomic.Int64
	mu   sync.Mutex
	seen map[uint32]bool // sequence numbers of numbered datagrams
}

func newUDPServer(t *testing.T, echo bool) *udpServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadBuffer(4 << 20)
	s := &udpServer{conn: conn, seen: map[uint32]bool{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.n.Add(1)
			if n >= 4 {
				s.mu.Lock()
				s.seen[binary.BigEndian.Uint32(buf)] = true
				s.mu.Unlock()
			}
			if echo {
				conn.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	})
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	return s
}

// settle waits until the count has not changed for 200 ms.
func (s *udpServer) settle() int64 {
	last := s.n.Load()
	for {
		time.Sleep(200 * time.Millisecond)
		n := s.n.Load()
		if n == last {
			return n
		}
		last = n
	}
}

func udpProxy(t *testing.T, target net.Addr) *faultnet.UDPProxy {
	t.Helper()
	p, err := faultnet.NewUDPProxy(target.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dialUDP(t *testing.T, addr net.Addr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, addr.(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(4 << 20)
	t.Cleanup(func() { c.Close() })
	return c
}

// udpRoundTrip sends seq and waits up to wait for its echo; ok is false on
// a timeout. Stale echoes of earlier datagrams are skipped.
func udpRoundTrip(t *testing.T, c *net.UDPConn, seq uint32, wait time.Duration) (time.Duration, bool) {
	t.Helper()
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], seq)
	start := time.Now()
	if _, err := c.Write(b[:]); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(start.Add(wait))
	buf := make([]byte, 64)
	for {
		n, err := c.Read(buf)
		if isTimeout(err) {
			return 0, false
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 4 && binary.BigEndian.Uint32(buf) == seq {
			return time.Since(start), true
		}
	}
}

// TestUDPDelay: a one-way delay d on each direction makes a round trip take
// 2d, within 30 ms of slack.
func TestUDPDelay(t *testing.T) {
	const d, slack = 40 * time.Millisecond, 30 * time.Millisecond
	p := udpProxy(t, newUDPServer(t, true).conn.LocalAddr())
	c := dialUDP(t, p.Addr())
	if _, ok := udpRoundTrip(t, c, 1, time.Second); !ok {
		t.Fatal("no echo through the proxy")
	}
	p.SetDelay(d)
	for i := range uint32(5) {
		rtt, ok := udpRoundTrip(t, c, 10+i, time.Second)
		if !ok || rtt < 2*d || rtt > 2*d+slack {
			t.Errorf("round trip %v (ok %v) with %v each way; want [%v, %v]", rtt, ok, d, 2*d, 2*d+slack)
		}
	}
}

// TestUDPLoss: over 10 000 datagrams a loss of 10% drops between 8% and
// 12% (the standard deviation is 0.3%). A lossless run of 1 000 first shows
// that neither the kernel nor the proxy drops any at this pace.
func TestUDPLoss(t *testing.T) {
	sink := newUDPServer(t, false)
	p := udpProxy(t, sink.conn.LocalAddr())
	c := dialUDP(t, p.Addr())
	send := func(n int) {
		b := make([]byte, 100)
		for i := range n {
			c.Write(b)
			if i%50 == 49 {
				time.Sleep(500 * time.Microsecond) // keep socket buffers from overflowing
			}
		}
	}
	send(1000)
	if got := sink.settle(); got != 1000 {
		t.Fatalf("lossless: %d of 1000 datagrams arrived", got)
	}
	p.SetLoss(0.1)
	send(10_000)
	got := sink.settle() - 1000
	if ratio := 1 - float64(got)/10_000; ratio < 0.08 || ratio > 0.12 {
		t.Errorf("loss 0.1: %d of 10000 arrived (%.3f lost); want [0.08, 0.12]", got, ratio)
	} else {
		t.Logf("loss 0.1: %.3f lost", ratio)
	}
}

// TestUDPBlackhole: a black hole drops datagrams (they never arrive, even
// after it is lifted) and lifting it restores the path.
func TestUDPBlackhole(t *testing.T) {
	srv := newUDPServer(t, true)
	p := udpProxy(t, srv.conn.LocalAddr())
	c := dialUDP(t, p.Addr())
	if _, ok := udpRoundTrip(t, c, 1, time.Second); !ok {
		t.Fatal("no echo through the proxy")
	}
	p.SetBlackhole(true)
	if _, ok := udpRoundTrip(t, c, 2, 300*time.Millisecond); ok {
		t.Fatal("echo through a black hole")
	}
	p.SetBlackhole(false)
	if _, ok := udpRoundTrip(t, c, 3, time.Second); !ok {
		t.Fatal("no echo after lifting the black hole")
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.seen[2] {
		t.Error("the datagram sent into the black hole arrived")
	}
}

// TestUDPQueueDropsOldest: with the rate far below the offered load, a
// queue of ten datagrams keeps the newest ones and drops the oldest.
func TestUDPQueueDropsOldest(t *testing.T) {
	sink := newUDPServer(t, false)
	p := udpProxy(t, sink.conn.LocalAddr())
	p.SetRate(10_000) // 100-byte datagrams: one per 10 ms
	p.SetQueueLimit(1000)
	c := dialUDP(t, p.Addr())
	b := make([]byte, 100)
	for i := range uint32(50) {
		binary.BigEndian.PutUint32(b, i)
		c.Write(b)
	}
	got := sink.settle()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if got > 13 || !sink.seen[49] || sink.seen[25] {
		t.Errorf("%d of 50 arrived (last: %v, middle: %v); want at most 13, the last, not the middle",
			got, sink.seen[49], sink.seen[25])
	}
}
