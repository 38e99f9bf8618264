package quictun

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

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
	edge, err = d.Dial(ctx)
	relay = <-accepted
	if err != nil || relay == nil {
		t.Fatalf("FEC %v: Dial: %v", shape, err)
	}
	return edge, relay
}
