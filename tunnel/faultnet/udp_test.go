package faultnet_test

import (
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strait/strait/tunnel/faultnet"
)

// udpServer answers each datagram with itself when echo is set, and counts
// what it receives either way.
type udpServer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	n    int64            // datagrams received
	seen map[uint32]int64 // datagrams received per leading sequence number
}

func newUDPServer(t *testing.T, echo bool) *udpServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadBuffer(4 << 20)
	s := &udpServer{conn: conn, seen: map[uint32]int64{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.n++
			if n >= 4 {
				s.seen[binary.BigEndian.Uint32(buf)]++
			}
			s.mu.Unlock()
			if echo {
				conn.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	})
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	return s
}

// count returns how many datagrams arrived, and how many of them carried seq.
func (s *udpServer) count(seq uint32) (all, withSeq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n, s.seen[seq]
}

// waitFor polls until a datagram carrying seq arrived, resending it with
// send every 50 ms (it may be lost); it fails the test after 10 s.
func (s *udpServer) waitFor(t *testing.T, seq uint32, send func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for resend := time.Now(); ; time.Sleep(time.Millisecond) {
		if _, n := s.count(seq); n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("datagram %#x never arrived", seq)
		}
		if time.Now().After(resend) {
			send()
			resend = time.Now().Add(50 * time.Millisecond)
		}
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

// TestUDPDelay: a one-way delay d on each direction makes every round trip
// take at least 2d, and the fastest of several at most 2d plus slack (see
// TestTCPDelay for why the upper bound is judged on the minimum).
func TestUDPDelay(t *testing.T) {
	const d, slack = 50 * time.Millisecond, 50 * time.Millisecond
	p := udpProxy(t, newUDPServer(t, true).conn.LocalAddr())
	c := dialUDP(t, p.Addr())
	if _, ok := udpRoundTrip(t, c, 1, 5*time.Second); !ok {
		t.Fatal("no echo through the proxy")
	}
	p.SetDelay(d)
	seq := uint32(10)
	rtt := fastest(t, func() time.Duration {
		seq++
		rtt, ok := udpRoundTrip(t, c, seq, 5*time.Second)
		if !ok {
			t.Fatalf("no echo of %d with %v each way", seq, d)
		}
		return rtt
	}, 2*d)
	if rtt > 2*d+slack {
		t.Errorf("fastest round trip %v with %v each way; want at most %v", rtt, d, 2*d+slack)
	}
}

// TestUDPLoss: over 10 000 datagrams a loss of 10% drops between 8% and
// 12% (the standard deviation is 0.3%). A lossless run of 1 000 first shows
// that neither the kernel nor the proxy drops any. Datagrams go in batches
// of 500, each followed by a numbered marker that is resent until it
// arrives: the flow is forwarded in order, so the marker's arrival means
// every datagram before it was delivered or dropped, and no batch can
// overflow a socket buffer however slowly a loaded machine drains it.
func TestUDPLoss(t *testing.T) {
	sink := newUDPServer(t, false)
	p := udpProxy(t, sink.conn.LocalAddr())
	c := dialUDP(t, p.Addr())
	marker := uint32(1 << 31)
	send := func(n int) int64 {
		b := make([]byte, 100) // sequence number 0
		for i := range n {
			c.Write(b)
			if i%500 == 499 || i == n-1 {
				marker++
				var m [4]byte
				binary.BigEndian.PutUint32(m[:], marker)
				sink.waitFor(t, marker, func() { c.Write(m[:]) })
			}
		}
		_, got := sink.count(0)
		return got
	}
	if got := send(1000); got != 1000 {
		t.Fatalf("lossless: %d of 1000 datagrams arrived", got)
	}
	p.SetLoss(0.1)
	got := send(10_000) - 1000
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
	if _, ok := udpRoundTrip(t, c, 1, 5*time.Second); !ok {
		t.Fatal("no echo through the proxy")
	}
	p.SetBlackhole(true)
	if _, ok := udpRoundTrip(t, c, 2, 300*time.Millisecond); ok {
		t.Fatal("echo through a black hole")
	}
	p.SetBlackhole(false)
	if _, ok := udpRoundTrip(t, c, 3, 5*time.Second); !ok {
		t.Fatal("no echo after lifting the black hole")
	}
	if _, n := srv.count(2); n > 0 {
		t.Error("the datagram sent into the black hole arrived")
	}
}

// TestUDPQueueDropsOldest: a burst of 50 datagrams meets a queue of ten
// whose head is held by a one-second delay (the rate then drains it slowly),
// so the queue overflows and must keep the newest ones. Exactly the ten
// newest arrive, plus at most one older datagram: the one the pipe had
// already taken off the queue when the burst filled it. The last one is
// the end of the flow (it arrives last, in order), so waiting for it is
// waiting for everything.
func TestUDPQueueDropsOldest(t *testing.T) {
	sink := newUDPServer(t, false)
	p := udpProxy(t, sink.conn.LocalAddr())
	p.SetDelay(time.Second) // far longer than the burst takes on any machine
	p.SetRate(10_000)       // 100-byte datagrams: one per 10 ms
	p.SetQueueLimit(1000)
	c := dialUDP(t, p.Addr())
	b := make([]byte, 100)
	for i := range uint32(50) {
		binary.BigEndian.PutUint32(b, i)
		c.Write(b)
	}
	sink.waitFor(t, 49, func() {}) // the newest cannot have been dropped
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var older []uint32
	for seq := range uint32(50) {
		switch n := sink.seen[seq]; {
		case seq >= 40 && n != 1:
			t.Errorf("datagram %d (one of the newest ten) arrived %d times; want once", seq, n)
		case seq < 40 && n > 0:
			older = append(older, seq)
		}
	}
	if len(older) > 1 || sink.n != int64(10+len(older)) {
		t.Errorf("%d of 50 arrived, older than the newest ten: %v; want at most one", sink.n, older)
	}
}
