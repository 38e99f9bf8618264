package quictun

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/faultnet"
	"github.com/strait/strait/tunnel/quictun/fec"
	"github.com/strait/strait/tunnel/tunneltest"
)

// transport is quictun as the conformance suite sees it. QUIC has reset
// frames: the peer of a Reset stream fails with ErrStreamReset.
var transport = tunneltest.Transport{Name: tunnel.TransportQUIC, Pair: conformancePair, ResetVisible: true}

func TestConformance(t *testing.T) { tunneltest.Run(t, transport) }

// TestConformanceFEC: the same with the edge's packets in FEC frames (and
// the relay answering in kind).
func TestConformanceFEC(t *testing.T) {
	tunneltest.Run(t, tunneltest.Transport{Name: tunnel.TransportQUIC, ResetVisible: true,
		Pair: func(tb testing.TB, o tunneltest.PairOptions) tunneltest.Pair {
			return pairWith(tb, o, fec.DefaultShape)
		}})
}

func BenchmarkTunnel(b *testing.B) { tunneltest.RunBenchmarks(b, transport) }

// conformancePair connects an edge to a relay over loopback, through a
// faultnet UDP proxy when o.ViaProxy.
func conformancePair(tb testing.TB, o tunneltest.PairOptions) tunneltest.Pair {
	tb.Helper()
	return pairWith(tb, o, fec.Shape{})
}

// pairWith is conformancePair with the edge's FEC shape.
func pairWith(tb testing.TB, o tunneltest.PairOptions, shape fec.Shape) tunneltest.Pair {
	tb.Helper()
	cfg := Config{
		FEC:              shape,
		Heartbeat:        o.Heartbeat,
		HeartbeatTimeout: o.HeartbeatTimeout,
		StreamWindow:     o.StreamWindow,
		HandshakeTimeout: 5 * time.Second,
	}
	pki := tunneltest.NewPKI(tb, "quic-test")
	ln, err := Listen(listenUDP(tb), pki.ServerConfig(), cfg)
	if err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	var p tunneltest.Pair
	addr := ln.Addr().String()
	if o.ViaProxy {
		proxy, err := faultnet.NewUDPProxy(addr)
		if err != nil {
			tb.Fatalf("proxy: %v", err)
		}
		tb.Cleanup(func() { proxy.Close() })
		p.Proxy, addr = proxy, proxy.Addr().String()
	}
	d, err := NewDialer(addr, pki.ClientConfig(), cfg)
	if err != nil {
		tb.Fatalf("NewDialer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan tunnel.Session, 1)
	go func() { // the dialer waits for the welcome that Accept sends
		s, err := ln.Accept(ctx)
		if err != nil {
			tb.Errorf("Accept: %v", err)
		}
		accepted <- s
	}()
	if p.Client, err = d.Dial(ctx); err != nil {
		<-accepted
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { p.Client.Close() })
	if p.Server = <-accepted; p.Server == nil {
		tb.FailNow()
	}
	tb.Cleanup(func() { p.Server.Close() })
	return p
}

func listenUDP(tb testing.TB) *net.UDPConn {
	tb.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	return udp
}
