package e2e

import (
	"testing"
	"time"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/tunnel/quictun/fec"
)

// TestQUICFEC: with tunnel.quic_fec on (or unset), requests go through
// QUIC sessions in FEC frames and the relay, which has no setting for it,
// says so; off, the same relay serves the edge plain.
func TestQUICFEC(t *testing.T) {
	for _, tt := range []struct {
		name string
		fec  *edgecmd.FECFile
		on   bool
	}{
		{"off", &edgecmd.FECFile{}, false},
		{"on", &edgecmd.FECFile{Shape: fec.Shape{Data: 8, Parity: 3}}, true},
		{"unset", nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// quic_fec_min_rtt 0s: FEC on this short path as on a long one
			// (otherwise the edge stops it and redials bare; see
			// TestQUICRenewal).
			always := time.Duration(0)
			s := newStack(t, stackOptions{transport: "quic",
				edgeEdit: func(f *edgecmd.File) { f.Tunnel.QUICFEC, f.Tunnel.QUICFECMinRTT = tt.fec, &always }})
			if _, err := openaiChat(testCtx(t, 10*time.Second), t, s); err != nil {
				t.Fatal(err)
			}
			quicSessionsLogged(t, s, "fec", tt.on)
		})
	}
}
