package wstun_test

import (
	"crypto/tls"
	"sync"
	"testing"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

// TestSessionUp checks what each side learns about the other: transport,
// addresses, the peer's certificate name, TLS 1.3 and the ALPN the WebSocket
// upgrade needs.
func TestSessionUp(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	var mu sync.Mutex
	seen := map[string]tls.ConnectionState{}
	record := func(side string) func(tls.ConnectionState) error {
		return func(cs tls.ConnectionState) error {
			mu.Lock()
			seen[side] = cs
			mu.Unlock()
			return nil
		}
	}
	sc := pki.ServerConfig()
	sc.VerifyConnection = record("relay") // prepare clones the config, hooks included
	cc := pki.ClientConfig()
	cc.VerifyConnection = record("edge")

	cfg := testConfig()
	ln, err := listenWith(t, sc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	edge, err := dial(t, ln.Addr().String(), cc, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	relay := accept(t, ln)

	for _, c := range []struct {
		side string
		sess tunnel.Session
		peer string
	}{{"edge", edge, tunneltest.RelayName}, {"relay", relay, tunneltest.EdgeName}} {
		info := c.sess.Info()
		if info.Transport != tunnel.TransportWS {
			t.Errorf("%s: Transport = %q, want ws", c.side, info.Transport)
		}
		if info.PeerName != c.peer {
			t.Errorf("%s: PeerName = %q, want %q", c.side, info.PeerName, c.peer)
		}
		if c.sess.Err() != nil {
			t.Errorf("%s: Err = %v on a live session", c.side, c.sess.Err())
		}
		mu.Lock()
		cs, ok := seen[c.side]
		mu.Unlock()
		if !ok {
			t.Errorf("%s: VerifyConnection never ran", c.side)
		} else if cs.Version != tls.VersionTLS13 || cs.NegotiatedProtocol != "http/1.1" {
			t.Errorf("%s: TLS version %s, ALPN %q; want TLS 1.3, http/1.1",
				c.side, tls.VersionName(cs.Version), cs.NegotiatedProtocol)
		}
	}
	if got, want := edge.Info().LocalAddr.String(), relay.Info().RemoteAddr.String(); got != want {
		t.Errorf("edge LocalAddr %s != relay RemoteAddr %s", got, want)
	}
	if got, want := edge.Info().RemoteAddr.String(), ln.Addr().String(); got != want {
		t.Errorf("edge RemoteAddr %s != listener %s", got, want)
	}
}
