package wstun

import (
	"context"
	"net"
	"testing"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

// loopbackPair serves a relay on ln with relayCfg, dials it with edgeCfg
// and returns both ends of the session; all is closed when the test ends.
func loopbackPair(tb testing.TB, ln net.Listener, edgeCfg, relayCfg Config) (edge, relay tunnel.Session) {
	tb.Helper()
	pki := tunneltest.NewPKI(tb, "")
	l, err := Listen(ln, pki.ServerConfig(), relayCfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	d, err := NewDialer(l.Addr().String(), pki.ClientConfig(), edgeCfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), negotiateTimeout)
	defer cancel()
	if edge, err = d.Dial(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { edge.Close() })
	if relay, err = l.Accept(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { relay.Close() })
	return edge, relay
}
