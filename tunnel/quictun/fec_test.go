package quictun

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/faultnet"
	"github.com/strait/strait/tunnel/quictun/fec"
	"github.com/strait/strait/tunnel/tunneltest"
)

// echo serves one stream on the relay's session: it sends back what it
// reads.
func echo(t *testing.T, s tunnel.Session) {
	st, err := s.AcceptStream(context.Background())
	if err != nil {
		t.Errorf("AcceptStream: %v", err)
		return
	}
	defer st.Close()
	if _, err := io.Copy(st, st); err != nil {
		t.Errorf("echo: %v", err)
	}
	st.CloseWrite()
}

// echoRoundTrip sends msg on a new stream of s and checks it comes back whole.
func echoRoundTrip(t *testing.T, s tunnel.Session, msg []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // a failure bound
	defer cancel()
	st, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	defer st.Close()
	done := make(chan error, 1)
	go func() { _, err := st.Write(msg); st.CloseWrite(); done <- err }()
	got, err := io.ReadAll(st)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %d of %d bytes, equal %v, err %v", len(got), len(msg), bytes.Equal(got, msg), err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
}

// TestPlainAndFECEdgesOnOneListener: one relay listener serves an edge
// that speaks FEC and one that does not (as edges that predate FEC), and
// answers each in its own kind.
func TestPlainAndFECEdgesOnOneListener(t *testing.T) {
	pki := tunneltest.NewPKI(t, "quic-test")
	ln := relayListener(t, pki)
	msg := bytes.Repeat([]byte("strait "), 20000)
	for _, shape := range []fec.Shape{{}, fec.DefaultShape, {}} {
		edge, relay := dialPair(t, ln, ln.Addr().String(), pki, shape)
		served := make(chan struct{})
		go func() { defer close(served); echo(t, relay) }()
		echoRoundTrip(t, edge, msg)
		<-served
		edge.Close()
		relay.Close()
		if fec := ln.pc.SpeaksFEC(relay.Info().RemoteAddr); fec != shape.Enabled() {
			t.Errorf("FEC %v: the relay took the edge for one that speaks FEC: %v", shape, fec)
		}
	}
}

// TestFECOffOnShortPath: on a path shorter than FECMinRTT (loopback, under
// a minimum of a second) the first session, dialed with FEC before the
// path was known, stops sending FEC frames after its handshake, and the
// relay answers it plainly (and would rather have it replaced, since it
// follows its slow start); the next session is dialed bare. With the
// minimum at zero (the existing tests) FEC stays on.
func TestFECOffOnShortPath(t *testing.T) {
	pki := tunneltest.NewPKI(t, "quic-test")
	ln := relayListener(t, pki)
	d, err := NewDialer(ln.Addr().String(), pki.ClientConfig(),
		Config{FEC: fec.DefaultShape, FECMinRTT: time.Second, HandshakeTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("strait "), 20000)
	for i := range 2 {
		framed := ln.pc.Stats().DataSent
		edge, relay := dialPairWith(t, ln, d)
		served := make(chan struct{})
		go func() { defer close(served); echo(t, relay) }()
		echoRoundTrip(t, edge, msg)
		<-served
		// The answer takes about 100 datagrams. The first session spoke
		// FEC in its handshake, and the relay answered a few datagrams so
		// before it heard the edge's plain ones; the second is bare.
		if n, most := ln.pc.Stats().DataSent-framed, []uint64{10, 0}[i]; n > most {
			t.Errorf("session %d: the relay sent %d datagrams in FEC frames; want at most %d", i, n, most)
		}
		if ln.pc.SpeaksFEC(relay.Info().RemoteAddr) {
			t.Errorf("session %d: the relay still takes the edge for one that speaks FEC on a short path", i)
		}
		if !d.isShort(ln.Addr().(*net.UDPAddr)) {
			t.Errorf("session %d: the dialer did not find the path short", i)
		}
		// The relay followed the first session's slow start, as it does
		// for every edge that dials with FEC, and now has no need to.
		if got := tunnel.NeedlessWatch(relay); got != (i == 0) {
			t.Errorf("session %d: NeedlessWatch = %v, want %v", i, got, i == 0)
		}
		edge.Close()
		relay.Close()
	}

}

// TestFECRebuildsLosses: through a link that loses 3 % of the packets
// both ways, an FEC session carries 2 MB byte-exact, and the relay's FEC
// rebuilds lost packets.
func TestFECRebuildsLosses(t *testing.T) {
	pki := tunneltest.NewPKI(t, "quic-test")
	ln := relayListener(t, pki)
	proxy, err := faultnet.NewUDPProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	edge, relay := dialPair(t, ln, proxy.Addr().String(), pki, fec.DefaultShape)
	defer edge.Close()
	defer relay.Close()
	proxy.SetLoss(0.03)
	served := make(chan struct{})
	go func() { defer close(served); echo(t, relay) }()
	msg := make([]byte, 2<<20)
	for i := range msg {
		msg[i] = byte(i * 7 / 5)
	}
	echoRoundTrip(t, edge, msg)
	<-served
	if s := ln.pc.Stats(); s.Recovered == 0 {
		t.Errorf("the relay rebuilt no packet at 3 %% loss: %+v", s)
	}
}

// relayListener is a listener with the default Config, closed at the
// test's end.
func relayListener(t *testing.T, pki *tunneltest.PKI) *Listener {
	t.Helper()
	ln, err := Listen(listenUDP(t), pki.ServerConfig(), Config{HandshakeTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialPair dials the listener at addr (it or a proxy before it) and
// returns both ends of the session.
func dialPair(t *testing.T, ln *Listener, addr string, pki *tunneltest.PKI, shape fec.Shape) (edge, relay tunnel.Session) {
	t.Helper()
	d, err := NewDialer(addr, pki.ClientConfig(), Config{FEC: shape, HandshakeTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return dialPairWith(t, ln, d)
}

// dialPairWith is dialPair with a Dialer of the test's.
func dialPairWith(t *testing.T, ln *Listener, d *Dialer) (edge, relay tunnel.Session) {
	t.Helper()
	shape := d.cfg.FEC
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	accepted := make(chan tunnel.Session, 1)
	go func() {
		s, err := ln.Accept(ctx)
		if err != nil {
			t.Errorf("Accept: %v", err)
		}
		accepted <- s
	}()
	edge, err := d.Dial(ctx)
	relay = <-accepted
	if err != nil || relay == nil {
		t.Fatalf("FEC %v: Dial: %v", shape, err)
	}
	return edge, relay
}

// TestNoAmplificationBeforeHandshake: an Initial in an FEC frame, as from a
// spoofed source that never answers, makes the relay send that address no
// more than QUIC's anti-amplification limit, three times what it received,
// and no parity. quic-go keeps to the limit for its own packets; parity
// frames on them, in the sender's shape, used to take it to about six.
func TestNoAmplificationBeforeHandshake(t *testing.T) {
	pki := tunneltest.NewPKI(t, "quic-test")
	ln, err := Listen(listenUDP(t), pki.ServerConfig(), Config{HandshakeTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	initial := fecInitial(t, clientTLS(pki.ClientConfig(), []string{ALPN}))

	victim := listenUDP(t)
	defer victim.Close()
	var sent, parity int
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 2048)
		for {
			n, _, err := victim.ReadFrom(b)
			if err != nil {
				return
			}
			sent += n
			if n > 0 && b[0] == 0x2d {
				parity++
			}
		}
	}()
	received := 0
	for _, f := range initial {
		if _, err := victim.WriteTo(f, ln.Addr()); err != nil {
			t.Fatal(err)
		}
		received += len(f)
	}
	// The relay gives up on the handshake after its timeout; what it sent
	// has arrived by then (loopback).
	for deadline := time.Now().Add(10 * time.Second); ln.RefusedHandshakes() == 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if ln.RefusedHandshakes() == 0 {
		t.Fatal("the relay never gave up on the handshake")
	}
	victim.SetReadDeadline(time.Now())
	<-done
	if sent < received || sent > 3*received || parity > 0 {
		t.Errorf("relay sent %d bytes (%d parity frames) for %d received; want a handshake, at most %d, no parity",
			sent, parity, received, 3*received)
	}
}

// fecInitial returns the first frames an FEC edge sends, those before the
// first parity frame: its QUIC Initials (a ClientHello with a post-quantum
// key share takes two) in FEC data frames.
func fecInitial(t *testing.T, tc *tls.Config) [][]byte {
	t.Helper()
	sink := listenUDP(t)
	defer sink.Close()
	fc, err := fec.NewConn(listenUDP(t), fec.Always, fec.DefaultShape)
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: fc}
	defer fc.Close()
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	dialed := make(chan struct{})
	go func() {
		defer close(dialed)
		if c, err := tr.Dial(ctx, sink.LocalAddr(), tc, &quic.Config{}); err == nil {
			c.CloseWithError(0, "")
		}
	}()
	defer func() { cancel(); <-dialed }()
	var frames [][]byte
	for {
		b := make([]byte, 2048)
		n, _, err := sink.ReadFrom(b)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 && b[0] != 0x2c { // parity: the flush timer closed the first round
			return frames
		}
		frames = append(frames, b[:n])
	}
}
