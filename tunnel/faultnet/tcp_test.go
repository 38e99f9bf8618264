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

// TestTCPDelay: a one-way delay d on each direction makes every round trip
// take at least 2d, and the fastest of several at most 2d plus the fastest
// undelayed one plus slack. A loaded machine can only add time, so the lower
// bound holds for each sample while the upper one is judged on the minimum:
// a proxy that applied the delay twice (4d) still fails every sample.
func TestTCPDelay(t *testing.T) {
	const d, slack = 50 * time.Millisecond, 50 * time.Millisecond
	p := tcpProxy(t, tcpEcho(t).Addr().String())
	c := dialTCP(t, p.Addr())
	rt := func() time.Duration { return roundTrip(t, c) }
	base := fastest(t, rt, 0)
	p.SetDelay(d)
	if rtt := fastest(t, rt, 2*d); rtt > 2*d+base+slack {
		t.Errorf("fastest round trip %v with %v each way; want at most %v", rtt, d, 2*d+base+slack)
	}
	p.SetDelay(0)
	if rtt := fastest(t, rt, 0); rtt > d {
		t.Errorf("fastest round trip %v after removing the delay", rtt)
	}
}

// fastest takes 8 samples of rt, reports any below lo (a delay that was not
// applied), and returns the smallest.
func fastest(t *testing.T, rt func() time.Duration, lo time.Duration) time.Duration {
	t.Helper()
	best := time.Duration(1<<63 - 1)
	for range 8 {
		d := rt()
		if d < lo {
			t.Errorf("round trip %v; want at least %v", d, lo)
		}
		best = min(best, d)
	}
	return best
}

// TestTCPRate: 1 MiB at 2 MiB/s takes about half a second. Bounds: the
// first chunk leaves at once, so at least (1 MiB - 32 KiB)/rate on every
// attempt; at most twice the ideal. A starved machine can only slow a
// transfer down, so up to three attempts (fresh connections) may be made to
// meet the upper bound; a limiter running at half the rate misses it on all.
func TestTCPRate(t *testing.T) {
	const rate, size = 2 << 20, 1 << 20
	lo, hi := time.Duration(size-32<<10)*time.Second/rate, 2*time.Second*size/rate
	p := tcpProxy(t, tcpEcho(t).Addr().String())
	p.SetRate(rate)
	var took []time.Duration
	for range 3 {
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
		if elapsed < lo {
			t.Fatalf("1 MiB at 2 MiB/s took %v; want at least %v", elapsed, lo)
		}
		if elapsed <= hi {
			return
		}
		took = append(took, elapsed)
	}
	t.Errorf("1 MiB at 2 MiB/s took %v; want at most %v", took, hi)
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
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // only bounds a failure
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
	c.SetReadDeadline(time.Now().Add(10 * time.Second)) // only bounds a failure
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
