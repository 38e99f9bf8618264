package wstun_test

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

// heartbeatConfig declares a silent peer dead within about 0.7 s: a ping every
// 200 ms that must be answered within 500 ms.
func heartbeatConfig() wstun.Config {
	cfg := testConfig()
	cfg.Heartbeat = 200 * time.Millisecond
	cfg.HeartbeatTimeout = 500 * time.Millisecond
	return cfg
}

// proxiedPair connects an edge to a relay through a holeProxy.
func proxiedPair(t *testing.T, cfg wstun.Config) (*pair, *holeProxy) {
	pki := tunneltest.NewPKI(t, "")
	ln := listen(t, pki, cfg)
	proxy := newHoleProxy(t, ln.Addr().String())
	return connect(t, pki, ln, proxy.Addr(), cfg), proxy
}

// TestDeadPeerDetected black-holes an idle session (a Read blocked on the
// edge): the heartbeat must end it on both sides and fail the Read.
func TestDeadPeerDetected(t *testing.T) {
	p, proxy := proxiedPair(t, heartbeatConfig())
	st := open(t, p.edge)
	st.Write([]byte("x"))
	rst := acceptStream(t, p.relay)
	// A full round trip, so the relay's ACK of the stream has arrived: an
	// unacknowledged open would end the session after StreamOpenTimeout
	// (also 500ms) and hide whether the heartbeat works.
	if _, err := io.ReadFull(rst, make([]byte, 1)); err != nil {
		t.Fatalf("stream through the proxy: %v", err)
	}
	rst.Write([]byte("y"))
	if _, err := io.ReadFull(st, make([]byte, 1)); err != nil {
		t.Fatalf("stream through the proxy: %v", err)
	}
	st.SetReadDeadline(time.Time{}) // only the heartbeat may end this Read
	blocked := async(func() (int, error) { return st.Read(make([]byte, 1)) })

	proxy.BlackHole()
	edgeLatency := waitClosed(t, "edge Done", p.edge.Done(), 2*time.Second)
	t.Logf("edge declared the relay dead %v after the black hole (heartbeat 200ms, timeout 500ms): %v",
		edgeLatency, p.edge.Err())
	if err := p.edge.Err(); !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("edge Err = %v; want ErrSessionClosed", err)
	}
	r := await(t, "blocked Read", blocked, time.Second)
	if r.err == nil {
		t.Fatalf("blocked Read returned %d bytes and no error", r.n)
	}
	t.Logf("blocked Read returned %v", r.err)

	relayLatency := waitClosed(t, "relay Done", p.relay.Done(), 2*time.Second)
	t.Logf("relay side closed %v after the edge", relayLatency)
	if err := p.relay.Err(); !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("relay Err = %v; want ErrSessionClosed", err)
	}
}

// TestDeadPeerDuringUpload black-holes a session while eight streams upload
// at full speed, so the edge's socket buffers are full and its transport
// writer is stuck in a write when the heartbeat fires. The session must still
// end, and Close must return promptly instead of waiting for that write.
func TestDeadPeerDuringUpload(t *testing.T) {
	p, proxy := proxiedPair(t, heartbeatConfig())

	var received atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { // relay: accept and discard
		for {
			rst, err := p.relay.AcceptStream(t.Context())
			if err != nil {
				return
			}
			rst.SetDeadline(time.Now().Add(opTimeout))
			wg.Go(func() { io.Copy(counter{&received}, rst) })
		}
	})
	writers := make([]<-chan result, 8)
	for i := range writers {
		st := open(t, p.edge)
		writers[i] = async(func() (int, error) {
			chunk, total := make([]byte, 64<<10), 0
			for {
				n, err := st.Write(chunk)
				total += n
				if err != nil {
					return total, err
				}
			}
		})
	}
	deadline := time.Now().Add(opTimeout)
	for received.Load() < 4<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d bytes uploaded before the black hole", received.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}

	proxy.BlackHole()
	t.Logf("edge declared dead %v after the black hole",
		waitClosed(t, "edge Done", p.edge.Done(), 2*time.Second))
	for i, ch := range writers {
		r := await(t, "writer", ch, 2*time.Second)
		if !errors.Is(r.err, tunnel.ErrSessionClosed) {
			t.Errorf("writer %d: %v; want ErrSessionClosed", i, r.err)
		}
	}
	closed := async(func() (int, error) { return 0, p.edge.Close() })
	start := time.Now()
	await(t, "edge Close on a dead session with a stuck writer", closed, 2*time.Second)
	t.Logf("edge Close returned in %v", time.Since(start))
	waitClosed(t, "relay Done", p.relay.Done(), 2*time.Second)
}

// counter is an io.Writer that only counts.
type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}
