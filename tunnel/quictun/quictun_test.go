package quictun

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
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

// TestRefusedClientsAreLogged: missing or foreign client certificates, a
// certificate without its key, and a foreign ALPN are refused during the
// handshake and logged with the reason, as the WebSocket listener does.
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

func refusalLogged(logs *observer.ObservedLogs, reason string) bool {
	for _, e := range logs.FilterMessage("tunnel handshake refused").All() {
		if r, _ := e.ContextMap()["reason"].(string); strings.Contains(r, reason) {
			return true
		}
	}
	return false
}
