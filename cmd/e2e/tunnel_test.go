package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
)

// waitLog waits until logs holds an entry with message msg whose "reason"
// field contains want.
func waitLog(t *testing.T, logs *observer.ObservedLogs, msg, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range logs.FilterMessage(msg).All() {
			if reason, _ := e.ContextMap()["reason"].(string); strings.Contains(reason, want) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := logs.FilterMessage(msg).All()
	last := "none"
	if len(got) > 0 {
		last = fmt.Sprint(got[len(got)-1].ContextMap()["reason"])
	}
	t.Fatalf("no %q log with reason containing %q (%d such logs; last reason: %s)", msg, want, len(got), last)
}

// TestBadEdgeCertificateRefused starts a second edge whose tunnel
// credentials are wrong and checks that the relay refuses it during the
// handshake and that both sides log why.
func TestBadEdgeCertificateRefused(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		otherDir := t.TempDir()
		if _, err := certs.Generate(certs.GenerateOptions{Dir: otherDir}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name                    string
			cert, key               func(s *stack) string
			relayReason, edgeReason string
		}{
			{"certificate from another CA",
				func(*stack) string { return otherDir + "/edge.pem" }, func(*stack) string { return otherDir + "/edge-key.pem" },
				"certificate signed by unknown authority", "remote refused our certificate"},
			{"server certificate used as client certificate",
				func(s *stack) string { return s.path("relay.pem") }, func(s *stack) string { return s.path("relay-key.pem") },
				"wrong extended key usage", "remote refused our certificate"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				// A stack each: the relay logs its first 10 refusals and
				// then one per 10 s (refusals.Default), and the first
				// case's edge, dialing its sessions, uses them up.
				s := newStack(t, stackOptions{transport: transport})
				f := s.edgeFile(stackOptions{})
				f.Tunnel.Cert, f.Tunnel.Key = tt.cert(s), tt.key(s)
				core, edgeLogs := observer.New(zap.DebugLevel)
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				srv, err := edgecmd.Build(f, ln, zap.New(core))
				if err != nil {
					t.Fatal(err)
				}
				defer func() { ln.Close(); srv.Edge.Close() }()
				waitLog(t, s.relayLogs, "tunnel handshake refused", tt.relayReason)
				waitLog(t, edgeLogs, "tunnel dial failed", tt.edgeReason)
				if srv.Edge.WaitReady(testCtx(t, 200*time.Millisecond)) == nil {
					t.Fatal("an edge with a bad certificate got a tunnel session")
				}
			})
		}
	})
}

// TestNoClientCertificateRefused dials the relay without a certificate.
func TestNoClientCertificateRefused(t *testing.T) {
	s := newStack(t, stackOptions{})
	pool, err := certs.LoadPool(s.path("ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	d := newDialer(t, s.relayAddr, certs.ClientConfig(nil, pool, "localhost"))
	if sess, err := d.Dial(testCtx(t, 5*time.Second)); err == nil {
		sess.Close()
		t.Fatal("relay accepted a tunnel without a client certificate")
	}
	waitLog(t, s.relayLogs, "tunnel handshake refused", "client presented no certificate")
}

// TestRelayRestartReconnects stops the relay, sends a request while it is
// down, and restarts it on the same address: the edge reconnects by itself
// and the waiting request succeeds.
func TestRelayRestartReconnects(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, stackOptions{sessionWait: 10 * time.Second, transport: transport})
		tcpAddr, udpAddr := s.relayAddr, s.quicAddr
		s.stopRelay()

		// The relay comes back once the edge has the whole request: from
		// then on it can only be waiting for a session.
		result := make(chan error, 1)
		wrote := make(chan struct{})
		signal := sync.OnceFunc(func() { close(wrote) }) // a transport retry writes again
		ctx := httptrace.WithClientTrace(testCtx(t, 20*time.Second),
			&httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { signal() }})
		go func() {
			_, err := s.openai().Chat.Completions.New(ctx, chatParams)
			result <- err
		}()
		select {
		case <-wrote:
		case err := <-result:
			t.Fatalf("the request ended before the relay came back: %v", err)
		}
		ln, err := net.Listen("tcp", tcpAddr)
		if err != nil {
			t.Fatal(err)
		}
		ua, _ := net.ResolveUDPAddr("udp", udpAddr)
		udp, err := net.ListenUDP("udp", ua)
		if err != nil {
			t.Fatal(err)
		}
		listening := time.Now()
		s.startRelay(relaycmd.Sockets{TCP: ln, UDP: udp}, nil)
		s.waitReady()
		t.Logf("edge reconnected %v after the relay listened again", time.Since(listening))
		if err := <-result; err != nil {
			t.Fatalf("request issued while the relay was down: %v", err)
		}
		if _, err := s.openai().Chat.Completions.New(testCtx(t, 10*time.Second), chatParams); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRelayVanishesMidStream cuts the tunnel while a stream is flowing (TCP:
// connections reset; QUIC: UDP black-holed, found by the heartbeat): the SDK
// must see an error, never a clean end, and the relay must cancel the
// upstream call.
func TestRelayVanishesMidStream(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, stackOptions{viaProxy: true, quicGate: true, quicGateOpen: true, transport: transport})
		cut := func() {
			if transport == "quic" {
				s.gate.open.Store(false)
				return
			}
			if n := s.proxy.cut(); n == 0 {
				t.Fatal("nothing to cut")
			}
		}
		vanishMidStream(t, s, cut)
		if transport == "quic" {
			s.gate.open.Store(true)
		}
		// The edge redials and serves again.
		s.waitReady()
		if _, err := s.openai().Chat.Completions.New(testCtx(t, 10*time.Second), chatParams); err != nil {
			t.Fatalf("after reconnect: %v", err)
		}
	})
}

func vanishMidStream(t *testing.T, s *stack, cut func()) {
	stream := s.openai(slow(50, 50*time.Millisecond)...).Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams)
	defer stream.Close()
	chunks := 0
	for stream.Next() {
		if chunks++; chunks == 3 {
			cut()
		}
	}
	if chunks >= 50 {
		t.Fatalf("stream completed (%d chunks) although the tunnel was cut", chunks)
	}
	if stream.Err() == nil {
		t.Fatal("a cut stream ended without an error: the client would take it for complete")
	}
	req := s.fake.Requests()[0]
	select {
	case <-req.Done:
	case <-time.After(5 * time.Second): // QUIC: found by the 1 s + 2 s heartbeat
		t.Fatal("upstream call still running after the tunnel died")
	}
}

// TestUpstreamBreaksMidStream: when the provider's connection dies
// mid-stream, the SDK gets an in-band error in its own format, over
// HTTP/1.1 (the answer detached from net/http, edge/detach) as over HTTP/2
// (on the handler).
func TestUpstreamBreaksMidStream(t *testing.T) {
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, stackOptions{transport: transport})
		for _, client := range []*http.Client{s.client, s.http2Client()} {
			opts := append(slow(50, 50*time.Millisecond), option.WithHTTPClient(client))
			stream := s.openai(opts...).Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams)
			chunks := 0
			for stream.Next() {
				if chunks++; chunks == 3 {
					s.fakeSrv.CloseClientConnections()
				}
			}
			err := stream.Err()
			stream.Close()
			var e *openai.Error
			if err == nil {
				t.Fatal("a broken upstream stream ended cleanly")
			}
			if errors.As(err, &e) && !strings.Contains(e.Message, "broke off") {
				t.Fatalf("in-band error without a useful message: %v", e)
			}
			t.Logf("SDK error: %v", err)
		}
	})
}

// TestAutoFallsBackAndReturnsToQUIC: with UDP black-holed, transport auto
// connects over WebSocket; once UDP passes again the edge moves to QUIC on
// its own, and a stream in flight during the switch completes.
func TestAutoFallsBackAndReturnsToQUIC(t *testing.T) {
	s := newStack(t, stackOptions{transport: "auto", quicGate: true, quicRetry: 300 * time.Millisecond})
	if got := liveTransports(s); got["ws"] == 0 || got["quic"] != 0 {
		t.Fatalf("with UDP blocked, sessions are %v; want WebSocket only", got)
	}
	stream := s.openai(slow(30, 50*time.Millisecond)...).Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams)
	defer stream.Close()
	if !stream.Next() {
		t.Fatalf("stream did not start: %v", stream.Err())
	}
	s.gate.open.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for liveTransports(s)["ws"] > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("still on WebSocket 10s after UDP opened: %v", liveTransports(s))
		}
		time.Sleep(50 * time.Millisecond)
	}
	chunks := 1
	for stream.Next() {
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("the stream in flight during the switch failed: %v", err)
	}
	if _, err := s.openai().Chat.Completions.New(testCtx(t, 10*time.Second), chatParams); err != nil {
		t.Fatalf("over QUIC after the switch: %v", err)
	}
	t.Logf("%d chunks across the switch; sessions now %v", chunks, liveTransports(s))
}

// liveTransports counts the edge's live sessions per transport, as its
// strait_tunnel_sessions metric reports them.
func liveTransports(s *stack) map[string]int {
	out := map[string]int{}
	for _, line := range edgeMetricLines(s) {
		if !strings.HasPrefix(line, "strait_tunnel_sessions{") {
			continue
		}
		var n int
		tr := line[strings.Index(line, `transport="`)+len(`transport="`):]
		tr = tr[:strings.Index(tr, `"`)]
		fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &n)
		out[tr] += n
	}
	return out
}

// scaleUps sums the edge's strait_tunnel_scale_events_total for sessions
// added.
func scaleUps(s *stack) int {
	total := 0
	for _, line := range edgeMetricLines(s) {
		if strings.HasPrefix(line, "strait_tunnel_scale_events_total{") && strings.Contains(line, `direction="up"`) {
			var n int
			fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &n)
			total += n
		}
	}
	return total
}

// edgeMetricLines scrapes the edge's metrics.
func edgeMetricLines(s *stack) []string {
	rec := httptest.NewRecorder()
	s.edge.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return strings.Split(rec.Body.String(), "\n")
}

// TestNoReplayAfterDispatch: once the relay has dispatched a request to the
// provider, a tunnel that dies must not make the edge send it again (a model
// call costs money); the client gets a clear error instead.
func TestNoReplayAfterDispatch(t *testing.T) {
	s := newStack(t, stackOptions{viaProxy: true})
	p := chatParams
	p.Model = "hang" // the fake holds the request: it has reached the provider
	result := make(chan error, 1)
	go func() {
		_, err := s.openai().Chat.Completions.New(testCtx(t, 20*time.Second), p)
		result <- err
	}()
	if _, err := s.fake.WaitRequests(testCtx(t, 10*time.Second), 1); err != nil {
		t.Fatal(err)
	}
	s.proxy.cut()
	err := <-result
	var e *openai.Error
	if !errors.As(err, &e) || e.StatusCode != 502 || !strings.Contains(e.Message, "not retried") {
		t.Fatalf("err = %v, want a 502 saying the request was not retried", err)
	}
	s.waitReady() // the edge is back; a replay would have arrived by now
	if n := len(s.fake.Requests()); n != 1 {
		t.Fatalf("the provider received the request %d times", n)
	}
}
