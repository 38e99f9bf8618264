package e2e

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
)

// TestTunnelCompression: edge and relay binaries negotiate compression on
// their WebSocket session by default, and use it where the path is slow
// enough for it to pay. Loopback is not (tunnel.compress_min_rtt, 2ms by
// default): each message then goes raw, a marker byte over its payload. With
// compress_min_rtt 0s on both, every direction sends fewer wire bytes than
// payload bytes.
func TestTunnelCompression(t *testing.T) {
	zero := time.Duration(0)
	for _, tc := range []struct {
		name       string
		minRTT     *time.Duration
		compressed bool
	}{
		{"default config on loopback", nil, false},
		{"compress_min_rtt 0s", &zero, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, stackOptions{
				relayTLSEdit: func(f *relaycmd.File) { f.CompressMinRTT = tc.minRTT },
				edgeEdit:     func(f *edgecmd.File) { f.Tunnel.CompressMinRTT = tc.minRTT },
			})
			for range 3 {
				if _, err := openaiChat(testCtx(t, 10*time.Second), t, s); err != nil {
					t.Fatal(err)
				}
			}
			for name, base := range map[string]string{"edge": s.edgeAdmin, "relay": s.relayAdmin} {
				_, body := adminGet(t, base, "/metrics")
				for _, dir := range []string{"out", "in"} {
					payload := metricValue(t, body, "strait_tunnel_ws_payload_bytes_total", dir)
					wire := metricValue(t, body, "strait_tunnel_ws_wire_bytes_total", dir)
					if payload == 0 {
						t.Fatalf("%s %s: no payload bytes counted", name, dir)
					}
					if compressed := wire < payload; compressed != tc.compressed {
						t.Errorf("%s %s: %v wire bytes for %v payload bytes: compressed %v, want %v",
							name, dir, wire, payload, compressed, tc.compressed)
					}
				}
			}
		})
	}
}

// metricValue reads one direction's sample of a counter from a /metrics page.
func metricValue(t *testing.T, page, name, dir string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + `\{direction="` + dir + `"\} (\S+)$`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no %s{direction=%q} in /metrics", name, dir)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestQUICCompressedByDefault: edge and relay binaries over QUIC negotiate
// stream compression with default configs, and an edge set to
// `compression: off` gets plain streams from the same relay; requests work
// either way. The relay reports the outcome per session ("edge
// authenticated", field compressed).
func TestQUICCompressedByDefault(t *testing.T) {
	for _, tt := range []struct {
		compression string
		want        bool
	}{{"", true}, {"off", false}} {
		t.Run("edge compression "+strconv.Quote(tt.compression), func(t *testing.T) {
			s := newStack(t, stackOptions{transport: "quic",
				edgeEdit: func(f *edgecmd.File) { f.Tunnel.Compression = tt.compression }})
			if _, err := openaiChat(testCtx(t, 10*time.Second), t, s); err != nil {
				t.Fatal(err)
			}
			quicSessionsLogged(t, s, "compressed", tt.want)
		})
	}
}

// quicSessionsLogged checks that the relay logged QUIC sessions, each with
// the boolean field key equal to want.
func quicSessionsLogged(t *testing.T, s *stack, key string, want bool) {
	t.Helper()
	sessions := s.relayLogs.FilterMessage("edge authenticated").FilterField(zap.String("transport", "quic")).All()
	if len(sessions) == 0 {
		t.Fatal("the relay logged no QUIC session")
	}
	for _, e := range sessions {
		if got, ok := e.ContextMap()[key].(bool); !ok || got != want {
			t.Errorf("QUIC session logged %s=%v, want %v", key, e.ContextMap()[key], want)
		}
	}
}
