package quictun

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSessionUp: each side learns the transport and the peer's certificate
// name, and Ping reports QUIC's smoothed RTT. The conformance suite covers
// streams and session life.
func TestSessionUp(t *testing.T) {
	p := conformancePair(t, tunneltest.PairOptions{})
	for _, c := range []struct {
		side string
		sess tunnel.Session
		peer string
	}{{"edge", p.Client, tunneltest.RelayName}, {"relay", p.Server, tunneltest.EdgeName}} {
		info := c.sess.Info()
		if info.Transport != "quic" || info.PeerName != c.peer {
			t.Errorf("%s: Transport %q, PeerName %q; want quic, %q", c.side, info.Transport, info.PeerName, c.peer)
		}
		if c.sess.Err() != nil {
			t.Errorf("%s: Err = %v on a live session", c.side, c.sess.Err())
		}
	}
	if rtt, err := p.Client.Ping(t.Context()); err != nil || rtt <= 0 {
		t.Fatalf("Ping = %v, %v; want a positive RTT", rtt, err)
	}
}

// TestRefusedClientsAreLogged: missing or foreign client certificates are
// refused during the handshake and logged with the reason.
func TestRefusedClientsAreLogged(t *testing.T) {
	pki := tunneltest.NewPKI(t, "quic-test")
	other := tunneltest.NewPKI(t, "other")
	core, logs := observer.New(zap.WarnLevel)
	ln, err := Listen(listenUDP(t), pki.ServerConfig(), Config{Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { _, _ = ln.Accept(context.Background()) }()
	tests := []struct {
		name   string
		cert   *tls.Certificate
		reason string
	}{
		{"no certificate", nil, "client presented no certificate"},
		{"other CA", &other.Edge, "unknown authority"},
		{"server certificate", &pki.Relay, "wrong extended key usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := pki.ClientConfigWith(tt.cert)
			if tt.cert == nil {
				tc = certs.ClientConfig(nil, pki.CA.Pool(), tunneltest.RelayName)
			}
			d, _ := NewDialer(ln.Addr().String(), tc, Config{HandshakeTimeout: 2 * time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if s, err := d.Dial(ctx); err == nil {
				s.Close()
				t.Fatal("dial succeeded")
			}
			for _, e := range logs.FilterMessage("tunnel handshake refused").All() {
				if r, _ := e.ContextMap()["reason"].(string); strings.Contains(r, tt.reason) {
					return
				}
			}
			t.Fatalf("no refusal logged with %q: %v", tt.reason, logs.All())
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
	if _, err := p.Client.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
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
