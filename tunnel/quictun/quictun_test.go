package quictun

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/faultnet"
	"github.com/strait/strait/tunnel/quictun/fec"
	"github.com/strait/strait/tunnel/tunneltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSessionUp: each side learns the transport and the peer's certificate
// name. The conformance suite covers streams and session life.
func TestSessionUp(t *testing.T) {
	p := conformancePair(t, tunneltest.PairOptions{})
	for _, c := range []struct {
		side string
		sess tunnel.Session
		peer string
	}{{"edge", p.Client, tunneltest.RelayName}, {"relay", p.Server, tunneltest.EdgeName}} {
		info := c.sess.Info()
		if info.Transport != tunnel.TransportQUIC || info.PeerName != c.peer {
			t.Errorf("%s: Transport %q, PeerName %q; want quic, %q", c.side, info.Transport, info.PeerName, c.peer)
		}
		if c.sess.Err() != nil {
			t.Errorf("%s: Err = %v on a live session", c.side, c.sess.Err())
		}
	}
}

// TestRefusedClientsAreLogged: missing or foreign client certificates, a
// certificate without its key, and a foreign ALPN are refused during the
// handshake and logged with the reason, as the WebSocket listener does.
func TestRefusedClientsAreLogged(t *testing.T) {
	pki, other, ln, logs := warnListener(t)
	go func() { _, _ = ln.Accept(context.Background()) }()
	stolenKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The edge's certificate, signed for with a key that is not its own.
	stolen := tls.Certificate{Certificate: pki.Edge.Certificate, PrivateKey: stolenKey}
	tests := []struct {
		name   string
		cert   *tls.Certificate
		alpn   string // dial with this ALPN instead of the tunnel's
		reason string
	}{
		{"no certificate", nil, "", "client presented no certificate"},
		{"other CA", &other.Edge, "", "unknown authority"},
		{"server certificate", &pki.Relay, "", "wrong extended key usage"},
		{"certificate without its key", &stolen, "", "invalid signature"},
		{"wrong ALPN", &pki.Edge, "h3", "unsupported application protocols"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := pki.ClientConfigWith(tt.cert)
			if tt.cert == nil {
				tc = certs.ClientConfig(nil, pki.CA.Pool(), tunneltest.RelayName)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if tt.alpn != "" {
				tc.NextProtos = []string{tt.alpn}
				if c, err := quic.DialAddr(ctx, ln.Addr().String(), tc, nil); err == nil {
					c.CloseWithError(0, "")
					t.Fatal("dial succeeded")
				}
			} else {
				d, _ := NewDialer(ln.Addr().String(), tc, Config{HandshakeTimeout: 2 * time.Second})
				if s, err := d.Dial(ctx); err == nil {
					s.Close()
					t.Fatal("dial succeeded")
				}
			}
			// The relay logs once the connection is gone, which may be a
			// moment after the edge gave up.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) && !refusalLogged(logs, tt.reason) {
				time.Sleep(20 * time.Millisecond)
			}
			if !refusalLogged(logs, tt.reason) {
				t.Fatalf("no refusal logged with %q: %v", tt.reason, logs.All())
			}
		})
	}
}

// TestQlogWhenQLOGDIRSet: with QLOGDIR set, both ends of a session write a
// qlog trace there, with the congestion metrics needed to diagnose a slow
// link (window, bytes in flight, RTT).
func TestQlogWhenQLOGDIRSet(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("QLOGDIR", dir)
	p := conformancePair(t, tunneltest.PairOptions{})
	p.Client.Close()
	p.Server.Close()
	for _, side := range []string{"client", "server"} {
		var trace []byte
		// The trace is flushed when quic-go's connection loop ends, which
		// may be just after Close returns: wait for it, bounded.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			files, _ := filepath.Glob(filepath.Join(dir, "*_"+side+".sqlog"))
			if len(files) == 1 {
				trace, _ = os.ReadFile(files[0])
				if bytes.Contains(trace, []byte(`"transport:connection_closed"`)) {
					break
				}
			}
		}
		if !bytes.Contains(trace, []byte(`"recovery:metrics_updated"`)) || !bytes.Contains(trace, []byte(`"congestion_window"`)) {
			t.Errorf("%s: no qlog trace with congestion metrics in %s (%d bytes)", side, dir, len(trace))
		}
	}
}

// TestSenderState: a QUIC session reports its sender's window, RTT and
// packet counts once data has flowed, and the losses of a lossy path;
// other sessions report nothing. The relay's end of a session from an edge
// that sends FEC also follows its slow start, which a loss ends; that of a
// plain edge does not.
func TestSenderState(t *testing.T) {
	for _, shape := range []fec.Shape{{}, fec.DefaultShape} {
		t.Run(shape.String(), func(t *testing.T) {
			p := pairWith(t, tunneltest.PairOptions{ViaProxy: true}, shape)
			send := func(n int) {
				t.Helper()
				// The relay sends, as it does the answers.
				st, err := p.Client.OpenStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				if _, err := st.Write([]byte{1}); err != nil {
					t.Fatal(err)
				}
				peer, err := p.Server.AcceptStream(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				defer peer.Close()
				go func() { _, _ = peer.Write(make([]byte, n)) }()
				if _, err := io.ReadFull(st, make([]byte, n)); err != nil {
					t.Fatal(err)
				}
			}
			send(256 << 10)
			c, ok := tunnel.SenderStateOf(p.Server)
			if !ok || c.Window == 0 || c.SmoothedRTT <= 0 || c.MinRTT <= 0 || c.PacketsSent < 100 {
				t.Fatalf("SenderStateOf(relay) = %+v, %v; want a window, RTTs and >= 100 packets sent", c, ok)
			}
			if r := c.LossRate(); r < 0 || r > 1 {
				t.Fatalf("LossRate = %v outside [0, 1]", r)
			}
			if c.PhaseKnown != shape.Enabled() {
				t.Fatalf("edge with FEC %v: relay's PhaseKnown = %v", shape, c.PhaseKnown)
			}
			lossy := p.Proxy.(*faultnet.UDPProxy)
			lossy.SetLoss(0.2)
			send(1 << 20)
			lossy.SetLoss(0)
			if c, _ = tunnel.SenderStateOf(p.Server); c.PacketsLost == 0 {
				t.Fatalf("relay after a transfer at 20 %% loss: %+v; want losses", c)
			}
			if c.LeftSlowStart != shape.Enabled() {
				t.Fatalf("relay after losses, edge with FEC %v: LeftSlowStart = %v, want %v", shape, c.LeftSlowStart, shape.Enabled())
			}
			if _, ok := tunnel.SenderStateOf(nil); ok {
				t.Fatal("SenderStateOf(nil) reported a QUIC session")
			}
		})
	}
}

// TestSessionEndLogsCongestion: at debug level both ends log what their
// sender saw of the path when a session ends.
func TestSessionEndLogsCongestion(t *testing.T) {
	pki := tunneltest.NewPKI(t, "quic-test")
	relayCore, relayLogs := observer.New(zap.DebugLevel)
	ln, err := Listen(listenUDP(t), pki.ServerConfig(), Config{Logger: zap.New(relayCore)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if s, err := ln.Accept(t.Context()); err == nil {
			<-s.Done()
		}
	}()
	core, logs := observer.New(zap.DebugLevel)
	d, _ := NewDialer(ln.Addr().String(), pki.ClientConfig(), Config{Logger: zap.New(core)})
	s, err := d.Dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	<-s.Done()
	for _, side := range []struct {
		name     string
		logs     *observer.ObservedLogs
		key, val string
	}{{"edge", logs, "relay", ln.Addr().String()}, {"relay", relayLogs, "peer", tunneltest.EdgeName}} {
		if m := awaitEnded(t, side.logs); m[side.key] != side.val || m["packets_sent"].(uint64) == 0 || m["cwnd_bytes"].(uint64) == 0 {
			t.Errorf("%s: session end logged as %v", side.name, m)
		}
	}
}

// awaitEnded returns the fields of the "quic session ended" entry. It is
// written by an AfterFunc on the connection's end: wait for it, bounded.
func awaitEnded(t *testing.T, logs *observer.ObservedLogs) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if e := logs.FilterMessage("quic session ended").All(); len(e) == 1 {
			return e[0].ContextMap()
		}
	}
	t.Fatalf("no session end logged: %v", logs.All())
	return nil
}

// warnListener is a listener whose warnings are observed, closed at the
// test's end, with its PKI and a foreign one.
func warnListener(t *testing.T) (pki, other *tunneltest.PKI, ln *Listener, logs *observer.ObservedLogs) {
	t.Helper()
	pki = tunneltest.NewPKI(t, "quic-test")
	other = tunneltest.NewPKI(t, "other")
	core, logs := observer.New(zap.WarnLevel)
	ln, err := Listen(listenUDP(t), pki.ServerConfig(), Config{Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return pki, other, ln, logs
}

func refusalLogged(logs *observer.ObservedLogs, reason string) bool {
	for _, e := range logs.FilterMessage("tunnel handshake refused").All() {
		if r, _ := e.ContextMap()["reason"].(string); strings.Contains(r, reason) {
			return true
		}
	}
	return false
}

// TestStatelessResetIsSessionClosed: when a relay restarted with the same
// ResetSecret answers a session of its previous life with a stateless
// reset, the edge's blocked stream calls and OpenStream fail with
// ErrSessionClosed, as the tunnel contract says of a dead session (the
// pool counts only such failures against the relay).
func TestStatelessResetIsSessionClosed(t *testing.T) {
	pki := tunneltest.NewPKI(t, "quic-test")
	cfg := Config{ResetSecret: []byte("relay key"), HandshakeTimeout: 5 * time.Second}
	udp := listenUDP(t)
	addr := udp.LocalAddr().String()
	ln, err := Listen(udp, pki.ServerConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	edge, _ := dialPair(t, ln, addr, pki, fec.Shape{})
	defer edge.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a failure bound
	defer cancel()
	st, err := edge.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	read := make(chan error, 1)
	go func() { _, err := st.Read(make([]byte, 1)); read <- err }()

	// The relay dies without a word (its socket closes under it) and comes
	// back on the same port with the same secret.
	ln.pc.Close()
	udp2, err := net.ListenUDP("udp", udp.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := Listen(udp2, pki.ServerConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln2.Close() })
	// The edge's next packet draws the reset.
	if _, err := st.Write(bytes.Repeat([]byte("x"), 100)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-edge.Done():
	case <-ctx.Done():
		t.Fatal("the edge's session outlived the relay's stateless reset")
	}
	var sr *quic.StatelessResetError
	if err := edge.Err(); !errors.As(err, &sr) {
		t.Fatalf("session ended with %v, want a stateless reset", err)
	}
	if err := <-read; !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("blocked Read = %v, want ErrSessionClosed", err)
	}
	if _, err := st.Write([]byte("x")); !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("Write = %v, want ErrSessionClosed", err)
	}
	if _, err := edge.OpenStream(ctx); !errors.Is(err, tunnel.ErrSessionClosed) {
		t.Errorf("OpenStream = %v, want ErrSessionClosed", err)
	}
}

// TestRefusalLogsAreLimited: anyone can make handshakes fail, so past the
// first few the refusals are no longer logged one by one; the count still
// has every one, and the next line logged says how many were left out.
func TestRefusalLogsAreLimited(t *testing.T) {
	limit := refusalLimit
	t.Cleanup(func() { refusalLimit = limit })
	clock := new(tunneltest.Clock) // no token comes back until it is moved
	refusalLimit.Burst, refusalLimit.Now = 3, clock.Now
	_, other, ln, logs := warnListener(t)
	const refusals = 8
	d, _ := NewDialer(ln.Addr().String(), other.ClientConfig(), Config{HandshakeTimeout: 2 * time.Second})
	refuse := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if s, err := d.Dial(ctx); err == nil {
			s.Close()
			t.Fatal("dial succeeded")
		}
	}
	for range refusals {
		refuse()
	}
	// The relay counts a refusal once its connection is gone, which may be a
	// moment after the edge gave up.
	tunneltest.AwaitCount(t, "RefusedHandshakes", ln.RefusedHandshakes, refusals)
	if n := logs.FilterMessage("tunnel handshake refused").Len(); n != refusalLimit.Burst {
		t.Errorf("%d refusals logged of %d, want the first %d", n, refusals, refusalLimit.Burst)
	}
	// A token back: the next refusal is logged with those left out.
	clock.Advance(refusalLimit.Every)
	refuse()
	tunneltest.AwaitCount(t, "RefusedHandshakes", ln.RefusedHandshakes, refusals+1)
	last := logs.FilterMessage("tunnel handshake refused").All()
	if got := last[len(last)-1].ContextMap()["not_logged"]; got != uint64(refusals-refusalLimit.Burst) {
		t.Errorf("not_logged = %v, want %d", got, refusals-refusalLimit.Burst)
	}
}
