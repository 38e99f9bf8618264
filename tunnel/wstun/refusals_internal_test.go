package wstun

import (
	"crypto/tls"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/tunnel/tunneltest"
)

// TestRefusalLogsAreLimited: anyone who reaches the relay's port can make
// TLS handshakes fail, so only the first ones are logged one by one, then
// one line per interval saying how many were left out; RefusedHandshakes
// counts every one. Real TCP connections on loopback, each kind of bad
// client on a listener of its own.
func TestRefusalLogsAreLimited(t *testing.T) {
	pki := tunneltest.NewPKI(t, "Strait CA test")
	other := tunneltest.NewPKI(t, "Other CA")
	tlsClient := func(tc *tls.Config) func(t *testing.T, addr string) {
		return func(t *testing.T, addr string) {
			c, err := tls.Dial("tcp", addr, tc)
			if err == nil { // TLS 1.3: the server judges the certificate after the client is done
				c.Close()
			}
		}
	}
	for _, tt := range []struct {
		name   string
		client func(t *testing.T, addr string)
	}{
		{"plain garbage", func(t *testing.T, addr string) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: relay\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
		}},
		{"TLS client without a certificate", tlsClient(pki.ClientConfigWith(nil))},
		{"TLS client certificate from another CA", tlsClient(pki.ClientConfigWith(&other.Edge))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			limit := refusalLimit
			t.Cleanup(func() { refusalLimit = limit })
			clock := new(tunneltest.Clock) // no token comes back until it is moved
			refusalLimit.Now = clock.Now
			burst := refusalLimit.Burst
			core, logs := observer.New(zapcore.WarnLevel)
			ln, err := Listen(tunneltest.Listen(t), pki.ServerConfig(),
				Config{HandshakeTimeout: 5 * time.Second, Logger: zap.New(core)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			addr := ln.Addr().String()

			const beyond = 3 // refusals past the burst
			for range burst + beyond {
				tt.client(t, addr)
			}
			tunneltest.AwaitCount(t, "RefusedHandshakes", ln.RefusedHandshakes, uint64(burst+beyond))
			refused := logs.FilterMessage("tunnel handshake refused").All()
			if len(refused) != burst {
				t.Fatalf("%d refusals logged of %d, want the first %d", len(refused), burst+beyond, burst)
			}
			for _, e := range refused {
				m := e.ContextMap()
				if m["transport"] != "ws" || m["reason"] == "" || m["not_logged"] != nil {
					t.Errorf("refusal logged as %v; want transport ws, a reason, no not_logged", m)
				}
			}

			// A token back: the next refusal is logged with those left out.
			clock.Advance(refusalLimit.Every)
			tt.client(t, addr)
			tunneltest.AwaitCount(t, "RefusedHandshakes", ln.RefusedHandshakes, uint64(burst+beyond+1))
			refused = logs.FilterMessage("tunnel handshake refused").All()
			if len(refused) != burst+1 {
				t.Fatalf("%d refusals logged after the interval, want %d", len(refused), burst+1)
			}
			if got := refused[burst].ContextMap()["not_logged"]; got != uint64(beyond) {
				t.Errorf("not_logged = %v, want %d", got, beyond)
			}
		})
	}
}
