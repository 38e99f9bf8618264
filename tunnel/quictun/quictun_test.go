package quictun

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
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

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	return udp
}

// pair returns a connected edge (client) and relay (server) session.
func pair(t *testing.T, pki *tunneltest.PKI, cfg Config) (client, server tunnel.Session) {
	t.Helper()
	ln, err := Listen(listenUDP(t), pki.ServerConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	d, err := NewDialer(ln.Addr().String(), pki.ClientConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan tunnel.Session, 1)
	go func() {
		s, err := ln.Accept(ctx)
		if err == nil {
			accepted <- s
		}
		close(accepted)
	}()
	client, err = d.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("no session accepted")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestExchange: a stream opened and written before the peer accepts it
// carries data both ways, with half-close, over mutual TLS 1.3.
func TestExchange(t *testing.T) {
	pki := tunneltest.NewPKI(t, "quic-test")
	c, s := pair(t, pki, Config{})
	if c.Info().Transport != "quic" || s.Info().PeerName != tunneltest.EdgeName || c.Info().PeerName != tunneltest.RelayName {
		t.Fatalf("infos: %+v %+v", c.Info(), s.Info())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("strait "), 100_000)
	go func() { st.Write(msg); st.CloseWrite() }()
	peer, err := s.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(peer)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	if _, err := peer.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	peer.CloseWrite()
	reply, err := io.ReadAll(st)
	if err != nil || string(reply) != "reply" {
		t.Fatalf("reply %q err %v", reply, err)
	}
	if rtt, err := c.Ping(ctx); err != nil || rtt <= 0 {
		t.Fatalf("ping %v %v", rtt, err)
	}
	st.Close()
	peer.Close()
	c.Close()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("server session still up after client closed")
	}
	if !errors.Is(s.Err(), tunnel.ErrSessionClosed) {
		t.Fatalf("Err = %v", s.Err())
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
