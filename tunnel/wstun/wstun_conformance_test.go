package wstun_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/faultnet"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

// transport is wstun as the conformance suite sees it. yamux has no reset
// frame: the peer of a Reset stream reads io.EOF. Buffered is counted
// (rx.go).
var transport = tunneltest.Transport{Name: tunnel.TransportWS, Pair: conformancePair, ResetVisible: false,
	BufferedExact: true}

func TestConformance(t *testing.T) { tunneltest.Run(t, transport) }

// TestConformanceEarly runs the suite on sessions used before their 101
// arrived: each pair's Dialer has had one session from the relay already,
// so the next one sends early (early.go).
func TestConformanceEarly(t *testing.T) {
	tr := transport
	tr.Pair = func(tb testing.TB, o tunneltest.PairOptions) tunneltest.Pair { return pairWith(tb, o, true) }
	tunneltest.Run(t, tr)
}

func BenchmarkTunnel(b *testing.B) { tunneltest.RunBenchmarks(b, transport) }

// conformancePair connects an edge to a relay over loopback, through a
// faultnet TCP proxy when o.ViaProxy.
func conformancePair(tb testing.TB, o tunneltest.PairOptions) tunneltest.Pair {
	tb.Helper()
	return pairWith(tb, o, false)
}

// pairWith is conformancePair; with early, the pair's session is the
// Dialer's second, sent before its 101.
func pairWith(tb testing.TB, o tunneltest.PairOptions, early bool) tunneltest.Pair {
	tb.Helper()
	if o.StreamWindow > math.MaxUint32 {
		tb.Fatalf("wstun: StreamWindow %d exceeds uint32", o.StreamWindow)
	}
	cfg := wstun.Config{
		Heartbeat:        o.Heartbeat,
		HeartbeatTimeout: o.HeartbeatTimeout,
		StreamWindow:     uint32(o.StreamWindow),
		HandshakeTimeout: 5 * time.Second,
	}
	pki := tunneltest.NewPKI(tb, "")
	ln, err := wstun.Listen(tunneltest.Listen(tb), pki.ServerConfig(), cfg)
	if err != nil {
		tb.Fatalf("Listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	var p tunneltest.Pair
	addr := ln.Addr().String()
	if o.ViaProxy {
		proxy, err := faultnet.NewTCPProxy(addr)
		if err != nil {
			tb.Fatalf("proxy: %v", err)
		}
		tb.Cleanup(func() { proxy.Close() })
		p.Proxy, addr = proxy, proxy.Addr().String()
	}
	d, err := wstun.NewDialer(addr, pki.ClientConfig(), cfg)
	if err != nil {
		tb.Fatalf("NewDialer: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if early {
		first, err := d.Dial(ctx)
		if err != nil {
			tb.Fatalf("first Dial: %v", err)
		}
		first.Close()
		if first, err = ln.Accept(ctx); err != nil {
			tb.Fatalf("first Accept: %v", err)
		}
		first.Close()
	}
	if p.Client, err = d.Dial(ctx); err != nil {
		tb.Fatalf("Dial: %v", err)
	}
	tb.Cleanup(func() { p.Client.Close() })
	if p.Server, err = ln.Accept(ctx); err != nil {
		tb.Fatalf("Accept: %v", err)
	}
	tb.Cleanup(func() { p.Server.Close() })
	return p
}
