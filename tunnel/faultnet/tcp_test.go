package faultnet_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strait/strait/tunnel/faultnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tcpEcho serves connections that echo everything and half-close after the
// client's EOF. It is closed, and its goroutines waited for, at test end.
func tcpEcho(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln
}

func tcpProxy(t *testing.T, target string) *faultnet.TCPProxy {
	t.Helper()
	p, err := faultnet.NewTCPProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dialTCP(t *testing.T, addr net.Addr) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c.(*net.TCPConn)
}

// roundTrip writes one byte and times its echo.
func roundTrip(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte{7}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	return time.Since(start)
}

// TestTCPIntegrity: 4 MiB of random bytes go through a delayed proxy and
// come back identical, and the client's half-close reaches the server and
// the server's comes back after all the data.
func TestTCPIntegrity(t *testing.T) {
	p := tcpProxy(t, tcpEcho(t).Addr().String())
	p.SetDelay(2 * time.Millisecond)
	c := dialTCP(t, p.Addr())
	payload := make([]byte, 4<<20)
	rand.NewChaCha8([32]byte{3}).Read(payload)
	go func() {
		c.Write(payload)
		c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read after %d bytes: %v", len(got), err)
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("echo differs: %d bytes back, %d sent", len(got), len(payload))
	}
}

// TestTCPDelay: a one-way delay d on each direction makes a round trip take
// 2d, within 20 ms of scheduling slack plus a little for -race.
func TestTCPDelay(t *testing.T) {
	const d, slack = 40 * time.Millisecond, 30 * time.Millisecond
	p := tcpProxy(t, tcpEcho(t).Addr().String())
	c := dialTCP(t, p.Addr())
	base := roundTrip(t, c)
	p.SetDelay(d)
	for range 5 {
		rtt := roundTrip(t, c)
		if rtt < 2*d || rtt > 2*d+base+slack {
			t.Errorf("round trip %v with %v each way; want [%v, %v]", rtt, d, 2*d, 2*d+base+slack)
		}
	}
	p.SetDelay(0)
	if rtt := roundTrip(t, c); rtt > d {
		t.Errorf("round trip %v after removing the delay", rtt)
	}
}

// TestTCPRate: 1 MiB at 2 MiB/s takes about half a second. Bounds: the
// first chunk leaves at once, so at least (1 MiB - 32 KiB)/rate; at most
// twice the ideal.
func TestTCPRate(t *testing.T) {
	const rate, size = 2 << 20, 1 << 20
	p := tcpProxy(t, tcpEcho(t).Addr().String())
	p.SetRate(rate)
	c := dialTCP(t, p.Addr())
	start := time.Now()
	go func() {
		c.Write(make([]byte, size))
		c.CloseWrite()
	}()
	n, err := io.Copy(io.Discard, c)
	elapsed := time.Since(start)
	if err != nil || n != size {
		t.Fatalf("echoed %d bytes, %v", n, err)
	}
	lo := time.Duration(size-32<<10) * time.Second / rate
	if elapsed < lo || elapsed > 2*time.Second*size/rate {
		t.Errorf("1 MiB at 2 MiB/s took %v; want [%v, %v]", elapsed, lo, 2*time.Second*size/rate)
	}
}

// TestTCPBlackhole: a black hole stops an echo without closing anything,
// and lifting it delivers what was held, in order.
func TestTCPBlackhole(t *testing.T) {
	p := tcpProxy(t, tcpEcho(t).Addr().String())
	c := dialTCP(t, p.Addr())
	roundTrip(t, c)
	p.SetBlackhole(true)
	if _, err := c.Write([]byte("held")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := c.Read(make([]byte, 4)); !isTimeout(err) {
		t.Fatalf("read through a black hole = %d, %v; want a timeout", n, err)
	}
	p.SetBlackhole(false)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, []byte("held")) {
		t.Fatalf("after the black hole: %q, %v; want the held bytes", buf, err)
	}
	roundTrip(t, c)
}

// TestTCPCloseWaits: Close tears down live connections (the client sees
// them end) and returns only after its goroutines did (goleak checks the
// rest at exit).
func TestTCPCloseWaits(t *testing.T) {
	p := tcpProxy(t, tcpEcho(t).Addr().String())
	c := dialTCP(t, p.Addr())
	roundTrip(t, c)
	p.SetBlackhole(true) // goroutines parked on the hole must end too
	p.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read after proxy Close = %v; want the connection closed", err)
	}
	if _, err := net.Dial("tcp", p.Addr().String()); err == nil {
		t.Error("dial after Close succeeded")
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
