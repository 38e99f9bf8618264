package pool

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/quictun"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

// TestAutoscaleOverTransports runs autoscaling on real sessions of both
// transports: streams held open make the pool add sessions, every stream
// echoes, and once they are closed the extra sessions are retired and
// closed while the base session stays. Over QUIC the relay admits 4
// streams per session (the control stream is one), so one session alone
// could not carry the 6 streams: the pool must grow past the stream limit
// rather than make the 4th open wait.
func TestAutoscaleOverTransports(t *testing.T) {
	for _, tr := range []tunnel.Transport{tunnel.TransportWS, tunnel.TransportQUIC} {
		t.Run(string(tr), func(t *testing.T) {
			relay, d := startEchoRelayOver(t, tr)
			p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, MaxSessionsPerRelay: 3,
				ProbeInterval: 20 * time.Millisecond,
				Scale:         ScaleConfig{TargetStreams: 2, MaxStreams: 3, ShrinkAfter: 200 * time.Millisecond}})
			waitLive(t, p, 1)
			base := relay.session(t, 0)

			held := openStreams(t, p, 6) // ⌈6/1.5⌉ = 4 wanted, 3 at most
			relay.session(t, 2)
			for i, st := range held {
				st.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.WriteString(st, "held"); err != nil {
					t.Fatalf("stream %d: %v", i, err)
				}
				buf := make([]byte, 4)
				if _, err := io.ReadFull(st, buf); err != nil {
					t.Fatalf("stream %d echoed %q, %v", i, buf, err)
				}
			}
			waitLive(t, p, 3)
			for _, st := range held {
				st.Close()
			}
			for i := 1; i <= 2; i++ {
				select {
				case <-relay.session(t, i).Done():
				case <-time.After(5 * time.Second):
					t.Fatalf("extra session %d still up 5s after its streams ended", i)
				}
			}
			select {
			case <-base.Done():
				t.Fatal("the base session was closed")
			default:
			}
			echo(t, p, "after shrinking")
			if st := p.Relays()[0]; st.ScaleDowns[reasonIdle] != 2 || st.SessionsLost != 0 {
				t.Errorf("ScaleDowns = %v, lost %d; want 2 for %q, none lost", st.ScaleDowns, st.SessionsLost, reasonIdle)
			}
		})
	}
}

// startEchoRelayOver starts an echo relay on a real listener of transport
// tr (over QUIC admitting 4 streams per session) and returns it with a
// dialer to it.
func startEchoRelayOver(t *testing.T, tr tunnel.Transport) (*echoRelay, tunnel.Dialer) {
	t.Helper()
	pki := tunneltest.NewPKI(t, "")
	var ln tunnel.Listener
	var d tunnel.Dialer
	var err error
	switch tr {
	case tunnel.TransportWS:
		cfg := wstun.Config{HandshakeTimeout: 5 * time.Second}
		if ln, err = wstun.Listen(tunneltest.Listen(t), pki.ServerConfig(), cfg); err == nil {
			d, err = wstun.NewDialer(ln.Addr().String(), pki.ClientConfig(), cfg)
		}
	case tunnel.TransportQUIC:
		udp, uerr := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if uerr != nil {
			t.Fatal(uerr)
		}
		cfg := quictun.Config{HandshakeTimeout: 5 * time.Second, MaxStreams: 4}
		if ln, err = quictun.Listen(udp, pki.ServerConfig(), cfg); err == nil {
			d, err = quictun.NewDialer(ln.Addr().String(), pki.ClientConfig(), cfg)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	relay := startEchoRelay(t, ln)
	t.Cleanup(relay.stop)
	return relay, d
}

// TestWebSocketFloor: with ScaleConfig.MinWebSocket, a relay whose
// sessions run over WebSocket (as auto's fallback does) gets that many
// sessions with no load at all, counted as their own scale-up reason; one
// whose sessions run over QUIC keeps its minimum.
func TestWebSocketFloor(t *testing.T) {
	for _, tt := range []struct {
		tr    tunnel.Transport
		floor int
	}{{tunnel.TransportWS, 3}, {tunnel.TransportQUIC, 0}} {
		t.Run(string(tt.tr), func(t *testing.T) {
			_, d := startEchoRelayOver(t, tt.tr)
			p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, MaxSessionsPerRelay: 4,
				ProbeInterval: 20 * time.Millisecond, Scale: ScaleConfig{MinWebSocket: 3, ShrinkAfter: 50 * time.Millisecond}})
			waitLive(t, p, 1)
			r := p.relays[0]
			if got := p.floor(p.relayLinks(r)); got != tt.floor {
				t.Fatalf("floor = %d; want %d", got, tt.floor)
			}
			if tt.floor == 0 {
				return
			}
			waitLive(t, p, tt.floor)
			echo(t, p, "on the floor")
			if st := p.Relays()[0]; st.ScaleUps[reasonWebSocket] != int64(tt.floor-1) {
				t.Errorf("ScaleUps = %v; want %d for %q", st.ScaleUps, tt.floor-1, reasonWebSocket)
			}
		})
	}
}
