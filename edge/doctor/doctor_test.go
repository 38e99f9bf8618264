package doctor

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/strait/strait/tunnel"
)

// TestSummarise: round-trip statistics, and loss counted as runs of late
// probes (a resend costs at least another round trip), so a stall holding
// several probes behind one loss counts once, and small jitter none.
func TestSummarise(t *testing.T) {
	flat := func(n int, v float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	withRuns := func(base []float64, runs ...[2]int) []float64 { // [start, length] of late probes
		for _, r := range runs {
			for i := r[0]; i < r[0]+r[1]; i++ {
				base[i] = 2.5 * base[i]
			}
		}
		return base
	}
	for _, tc := range []struct {
		name       string
		rtts       []float64
		probes     int
		wantEvents int
		wantMedian float64
	}{
		{"clean 150 ms", flat(100, 150), 100, 0, 150},
		{"jitter under the threshold", append(flat(50, 150), flat(50, 190)...), 100, 0, 190},
		{"one stall of four probes", withRuns(flat(100, 150), [2]int{10, 4}), 100, 1, 150},
		{"three separate losses", withRuns(flat(100, 150), [2]int{5, 1}, [2]int{40, 3}, [2]int{90, 2}), 100, 3, 150},
		{"loopback stall below 50 ms", append(flat(99, 0.5), 40), 100, 0, 0.5},
		{"two unanswered", flat(98, 150), 100, 2, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := summarise(&RTT{Probes: tc.probes, Lost: tc.probes - len(tc.rtts)}, tc.rtts)
			if got.LossEvents != tc.wantEvents || got.Median != tc.wantMedian {
				t.Errorf("events %d median %v; want %d and %v", got.LossEvents, got.Median, tc.wantEvents, tc.wantMedian)
			}
			if want := round(float64(tc.wantEvents) / float64(2*tc.probes)); got.Loss != want {
				t.Errorf("loss %v; want %v", got.Loss, want)
			}
		})
	}
}

// TestAdvice: each finding leads with the change that fixes it.
func TestAdvice(t *testing.T) {
	skew := 95.0
	quic := Relay{Address: "r:443", QUICAddress: "r:443", DialQUIC: dialNone, DialWS: dialNone}
	quicFEC := quic
	quicFEC.DialQUICFEC = dialNone
	for _, tc := range []struct {
		name string
		rr   RelayReport
		r    Relay
		want string // prefix of the first advice; empty: none
	}{
		{"healthy", RelayReport{TCP: ok, TLS: ok, UDP: ok, Transport: "quic"}, quic, ""},
		{"udp blocked", RelayReport{TCP: ok, TLS: ok, Transport: "ws", Congestion: "bbr"}, quic, "UDP is blocked"},
		{"nothing answers", RelayReport{}, quic, "relay r:443 is unreachable over TCP and UDP"},
		{"tcp blocked", RelayReport{UDP: ok, Transport: "quic"}, quic, "TCP is blocked but QUIC works"},
		{"other CA", RelayReport{TCP: ok, UDP: ok, TLS: Check{Detail: "TLS handshake failed: certificate signed by unknown authority"}}, quic,
			"the relay's certificate is not from the CA in tunnel.ca"},
		{"revoked", RelayReport{TCP: ok, UDP: ok, TLS: Check{Detail: "TLS handshake failed: remote refused our certificate: bad certificate"}}, quic,
			"the relay refused this edge's certificate"},
		{"clock", RelayReport{TCP: ok, TLS: ok, UDP: ok, ClockSkew: &skew}, quic, "clocks differ by 95 s"},
		{"lossy quic", RelayReport{TCP: ok, TLS: ok, UDP: ok, Transport: "quic", RTT: &RTT{Probes: 100, LossEvents: 6, Loss: 0.03}}, quic,
			"about 3.0% packet loss: keep QUIC"},
		{"one event is not loss", RelayReport{TCP: ok, TLS: ok, UDP: ok, Transport: "quic", RTT: &RTT{Probes: 10, LossEvents: 1, Loss: 0.05}}, quic, ""},
		{"fec frames dropped", RelayReport{TCP: ok, TLS: ok, UDP: ok, FEC: Check{Detail: "QUIC in FEC frames failed"}, Transport: "quic"}, quicFEC,
			"QUIC works but not in FEC frames"},
		{"fec frames pass", RelayReport{TCP: ok, TLS: ok, UDP: ok, FEC: ok, Transport: "quic"}, quicFEC, ""},
		{"cubic", RelayReport{TCP: ok, TLS: ok, Transport: "ws", Congestion: "cubic"}, Relay{Address: "r:443", DialWS: dialNone}, "the tunnel's TCP uses cubic"},
	} {
		got := advise(tc.rr, tc.r)
		switch {
		case tc.want == "" && len(got) > 0:
			t.Errorf("%s: advice %q; want none", tc.name, got)
		case tc.want != "" && (len(got) == 0 || !strings.HasPrefix(got[0], tc.want)):
			t.Errorf("%s: advice %q; want it to start with %q", tc.name, got, tc.want)
		}
	}
}

var ok = Check{OK: true}

func dialNone(context.Context) (tunnel.Session, error) {
	return nil, errors.New("not dialled in this test")
}
