package tunneltest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"

	"github.com/strait/strait/tunnel"
)

// Heartbeat settings of testHeartbeat. HeartbeatTimeout is below twice the
// interval, so that a transport probing once per interval (yamux: ping, then
// wait HeartbeatTimeout for the answer) or timing out after Heartbeat +
// HeartbeatTimeout of silence (QUIC's idle timeout) declares a silent peer
// dead within 3 intervals: at most 200 + 300 = 500 ms < 600 ms.
const (
	heartbeat        = 200 * time.Millisecond
	heartbeatTimeout = 300 * time.Millisecond
)

// detectSlack is scheduling slack on top of 3 intervals. Under -race on two
// cores, with other packages' tests running beside, timers and the
// transports' goroutines were seen to run 200 ms late, and 450 ms late at a
// load average of 15 (QUIC declared dead after 1.05 s). A transport without
// a working heartbeat is still far outside: yamux's safety valves take 30 s.
func detectSlack() time.Duration {
	if raceEnabled {
		return time.Second
	}
	return 150 * time.Millisecond
}

// testHeartbeat black-holes the path of a session (packets stop both ways;
// nothing is closed, so neither end gets a FIN or RST) while one stream is
// idle with a Read blocked on each end and another uploads at full speed.
// Both sessions must be declared dead (Done closed) within 3 heartbeat
// intervals + detectSlack of the black hole; each blocked call must then fail
// within prompt with a clear error: one matching ErrSessionClosed whose text
// includes the session's Err (the cause, not a bare io.EOF). Err must match
// ErrSessionClosed, and Close on the dead session must return within prompt.
func testHeartbeat(t *testing.T, tr Transport) {
	p := tr.Pair(t, PairOptions{Heartbeat: heartbeat, HeartbeatTimeout: heartbeatTimeout,
		StreamWindow: 256 << 10, ViaProxy: true})
	if p.Proxy == nil {
		t.Fatal("Pair with ViaProxy returned no Proxy")
	}
	idleA, idleB := connect(t, p.Client, p.Server)
	// A round trip, so the opening was acknowledged: yamux ends a session
	// whose open goes unacknowledged for HeartbeatTimeout, which would hide
	// whether the heartbeat works.
	if _, err := idleB.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(idleA, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	clientUpload, serverUpload := upload(t, p)
	clientRead, serverRead := readBlocked(idleA), readBlocked(idleB)

	start := time.Now()
	p.Proxy.SetBlackhole(true)
	bound := 3*heartbeat + detectSlack()
	clientDead := doneBy(t, "client", p.Client, start, bound)
	serverDead := doneBy(t, "server", p.Server, start, bound)
	t.Logf("heartbeat %v, timeout %v: client declared dead after %v, server after %v (bound %v)",
		heartbeat, heartbeatTimeout, clientDead, serverDead, bound)
	t.Logf("client Err: %v; server Err: %v", p.Client.Err(), p.Server.Err())

	for _, c := range []struct {
		name string
		ch   <-chan Result
		sess tunnel.Session
	}{
		{"client's blocked Read", clientRead, p.Client}, {"client's uploading Write", clientUpload, p.Client},
		{"server's blocked Read", serverRead, p.Server}, {"server's reader of the upload", serverUpload, p.Server},
	} {
		r := Await(t, c.name, c.ch, prompt)
		if !errors.Is(r.Err, tunnel.ErrSessionClosed) || !strings.Contains(r.Err.Error(), c.sess.Err().Error()) {
			t.Errorf("%s on a dead session = %d, %v; want ErrSessionClosed naming the session's cause (%v)",
				c.name, r.N, r.Err, c.sess.Err())
		}
	}
	for name, sess := range map[string]tunnel.Session{"client": p.Client, "server": p.Server} {
		if err := sess.Err(); !errors.Is(err, tunnel.ErrSessionClosed) {
			t.Errorf("%s Err = %v; want ErrSessionClosed", name, err)
		}
		Await(t, name+" Close on a dead session", Async(func() (int, error) { return 0, sess.Close() }), prompt)
	}
}

// upload starts a stream on which the client writes at full speed and the
// server reads and discards, and returns once 1 MiB went through. Both calls
// run until the stream or session fails.
func upload(t *testing.T, p Pair) (clientWrite, serverRead <-chan Result) {
	a, b := connect(t, p.Client, p.Server)
	var received atomic.Int64
	b.SetReadDeadline(time.Time{})
	serverRead = Async(func() (int, error) {
		n, err := io.Copy(counter{&received}, b)
		return int(n), err
	})
	a.SetWriteDeadline(time.Time{})
	clientWrite = Async(func() (int, error) {
		chunk, total := make([]byte, 64<<10), 0
		for {
			n, err := a.Write(chunk)
			total += n
			if err != nil {
				return total, err
			}
		}
	})
	for deadline := time.Now().Add(opTimeout); received.Load() < 1<<20; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d bytes uploaded (client err %v, server err %v)", received.Load(), p.Client.Err(), p.Server.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return clientWrite, serverRead
}

// doneBy waits until start+bound for sess.Done and returns the time from
// start.
func doneBy(t *testing.T, name string, sess tunnel.Session, start time.Time, bound time.Duration) time.Duration {
	t.Helper()
	select {
	case <-sess.Done():
		return time.Since(start)
	case <-time.After(time.Until(start.Add(bound))):
		t.Fatalf("%s session still up %v after its path was black-holed (bound %v)", name, time.Since(start), bound)
		return 0
	}
}

// counter is an io.Writer that only counts.
type counter struct{ n *atomic.Int64 }

func (c counter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// testSessionClose closes a session under load (in a subtest, so that the
// pair, its listener and proxy are released by the subtest's cleanup), then
// checks with goleak that no goroutine the subtest started outlives them.
func testSessionClose(t *testing.T, tr Transport) {
	before := goleak.IgnoreCurrent()
	t.Run("InFlight", func(t *testing.T) { testCloseInFlight(t, tr) })
	if !t.Failed() {
		goleak.VerifyNone(t, before)
	}
}

// testInfo: both ends of a session report the transport's Name, which the
// pool, the autodialer and the metrics go by.
func testInfo(t *testing.T, tr Transport) {
	p := tr.Pair(t, PairOptions{})
	c, s := p.Client.Info(), p.Server.Info()
	if c.Transport != tr.Name || s.Transport != tr.Name {
		t.Errorf("Info().Transport: client %q, server %q; want %q", c.Transport, s.Transport, tr.Name)
	}
}

// testCloseInFlight: closing the client session fails every in-flight call
// on both ends, blocked Reads on three streams and a Write blocked on a full
// window each way, within prompt of Close, with ErrSessionClosed. Both Done
// channels close within prompt, and afterwards OpenStream, AcceptStream,
// Read and Write fail with ErrSessionClosed and Err matches it.
func testCloseInFlight(t *testing.T, tr Transport) {
	const window = 256 << 10
	p := tr.Pair(t, PairOptions{StreamWindow: window})
	type call struct {
		name string
		ch   <-chan Result
	}
	var calls []call
	var a, b tunnel.Stream
	for i := range 3 {
		a, b = connect(t, p.Client, p.Server)
		calls = append(calls, call{fmt.Sprintf("client Read %d", i), readBlocked(a)},
			call{fmt.Sprintf("server Read %d", i), readBlocked(b)})
	}
	wa, wb := connect(t, p.Client, p.Server)
	fillUntilBlocked(t, wa, 64*window)
	fillUntilBlocked(t, wb, 64*window)
	calls = append(calls, call{"client Write", writeBlocked(wa, window)}, call{"server Write", writeBlocked(wb, window)})
	time.Sleep(50 * time.Millisecond)
	for _, c := range calls {
		blocked(t, c.name, c.ch)
	}

	start := time.Now()
	if err := p.Client.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	doneBy(t, "client", p.Client, start, prompt)
	doneBy(t, "server", p.Server, start, prompt)
	for _, c := range calls {
		r := Await(t, c.name, c.ch, time.Until(start.Add(prompt)))
		if !errors.Is(r.Err, tunnel.ErrSessionClosed) {
			t.Errorf("%s after session Close = %d, %v; want ErrSessionClosed", c.name, r.N, r.Err)
		}
	}
	t.Logf("every in-flight call failed within %v of Close", time.Since(start))

	checkDead(t, "client", p.Client, a)
	checkDead(t, "server", p.Server, b)
}

// checkDead: on a closed session Err matches ErrSessionClosed, and
// OpenStream, AcceptStream and I/O on its stream st fail with it at
// once; a second Close returns.
func checkDead(t *testing.T, side string, sess tunnel.Session, st tunnel.Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), prompt)
	defer cancel()
	if err := sess.Err(); !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("%s Err = %v; want ErrSessionClosed", side, err)
	}
	if _, err := sess.OpenStream(ctx); !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("%s OpenStream after close = %v; want ErrSessionClosed", side, err)
	}
	if _, err := sess.AcceptStream(ctx); !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("%s AcceptStream after close = %v; want ErrSessionClosed", side, err)
	}
	if _, err := st.Read(make([]byte, 1)); !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("%s Read after close = %v; want ErrSessionClosed", side, err)
	}
	if _, err := st.Write([]byte("x")); !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("%s Write after close = %v; want ErrSessionClosed", side, err)
	}
	Await(t, side+" second Close", Async(func() (int, error) { return 0, sess.Close() }), prompt)
}

// testNetConn runs golang.org/x/net/nettest.TestConn on single streams: the
// adapters are net.Conns, with net.Conn's deadline and Close semantics.
func testNetConn(t *testing.T, tr Transport) {
	p := tr.Pair(t, PairOptions{})
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b, err := connectErr(p.Client, p.Server)
		if err != nil {
			return nil, nil, nil, err
		}
		stop = func() { a.Close(); b.Close() }
		ca, ok1 := a.(net.Conn)
		cb, ok2 := b.(net.Conn)
		if !ok1 || !ok2 {
			stop()
			return nil, nil, nil, fmt.Errorf("stream type %T is not a net.Conn", a)
		}
		a.SetDeadline(time.Time{})
		b.SetDeadline(time.Time{})
		return ca, cb, stop, nil
	})
}
