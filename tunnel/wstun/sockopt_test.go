package wstun_test

import (
	"runtime"
	"testing"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

// TestCongestionPerSession forces reno (a loss-based algorithm, always
// built in) on both ends and checks, from the sessions' counts, that the
// edge's dialled socket and the relay's accepted one both run it, and that
// the count falls when the sessions end.
func TestCongestionPerSession(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("congestion control is chosen on Linux only")
	}
	var edgeStats, relayStats wstun.CongestionStats
	relayCfg, edgeCfg := testConfig(), testConfig()
	relayCfg.TCPCongestion, relayCfg.Congestion = "reno", &relayStats
	edgeCfg.TCPCongestion, edgeCfg.Congestion = "reno", &edgeStats
	pki := tunneltest.NewPKI(t, "")
	ln := listen(t, pki, relayCfg)
	p := connect(t, pki, ln, ln.Addr().String(), edgeCfg)
	for side, stats := range map[string]*wstun.CongestionStats{"edge": &edgeStats, "relay": &relayStats} {
		if got := stats.Sessions(); got["reno"] != 1 || len(got) != 1 {
			t.Errorf("%s sessions by congestion control = %v, want reno: 1", side, got)
		}
	}
	// The pool reads it from Info to decide how many streams a session carries.
	for side, s := range map[string]tunnel.Session{"edge": p.edge, "relay": p.relay} {
		if got := s.Info(); got.Congestion != "reno" || got.ModelBasedCongestion() {
			t.Errorf("%s Info().Congestion = %q (model-based %v), want reno", side, got.Congestion, got.ModelBasedCongestion())
		}
	}
	p.edge.Close()
	<-p.relay.Done()
	for side, stats := range map[string]*wstun.CongestionStats{"edge": &edgeStats, "relay": &relayStats} {
		waitFor(t, side+" session to be counted out", func() bool { return stats.Sessions()["reno"] == 0 })
	}
}

// TestUnknownCongestionFailsAtStart checks that a forced algorithm the
// kernel does not have is a configuration error on both sides.
func TestUnknownCongestionFailsAtStart(t *testing.T) {
	cfg := testConfig()
	cfg.TCPCongestion = "nosuchcc"
	pki := tunneltest.NewPKI(t, "")
	if _, err := listenWith(t, pki.ServerConfig(), cfg); err == nil {
		t.Error("Listen accepted an unknown congestion control")
	}
	if _, err := wstun.NewDialer("127.0.0.1:1", pki.ClientConfig(), cfg); err == nil {
		t.Error("NewDialer accepted an unknown congestion control")
	}
}

// TestSenderState: both ends of a session read their TCP sender state from
// the kernel (tunnel.SenderStateOf), which the relay's renewal uses: a
// window of whole segments, round trips, and no slow-start threshold on a
// path that never lost a segment.
func TestSenderState(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_INFO is read on Linux only")
	}
	pki := tunneltest.NewPKI(t, "")
	ln := listen(t, pki, testConfig())
	p := connect(t, pki, ln, ln.Addr().String(), testConfig())
	for side, s := range map[string]tunnel.Session{"edge": p.edge, "relay": p.relay} {
		st, ok := tunnel.SenderStateOf(s)
		if !ok {
			t.Fatalf("%s: no sender state", side)
		}
		if st.Window == 0 || st.SmoothedRTT <= 0 || st.PacketsSent == 0 || st.SlowStartThreshold != 0 {
			t.Errorf("%s: sender state %+v; want a window, a round trip, segments sent and no threshold", side, st)
		}
	}
}
