package e2e

import (
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"
	"go.uber.org/zap"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
)

// TestQUICRenewal: once a QUIC session's congestion window has moved (a
// large answer grew it) and its last stream has ended, the relay asks the
// edge to renew it; the edge dials the replacement and requests go on.
// The edge sends no FEC there, so the relay judges by the window. With FEC
// on a short path (loopback) the relay has the sessions the edge dialed
// with FEC renewed instead, busy or not, since it follows their slow start
// for nothing; their replacements are dialed bare. With renew_after at 0s
// nothing is renewed.
func TestQUICRenewal(t *testing.T) {
	const windowRenewal, shortRenewal = "asking the edge to renew an idle tunnel session",
		"asking the edge to renew a tunnel session on a short path: its sender's phase is followed needlessly"
	noFEC := func(f *edgecmd.File) { f.Tunnel.QUICFEC = &edgecmd.FECFile{} }
	// Loopback under a loaded test run can measure over the default 2 ms
	// for a while: a second makes the path short from the handshake on.
	second := time.Second
	shortPath := func(f *edgecmd.File) { f.Tunnel.QUICFECMinRTT = &second }
	for _, tt := range []struct {
		name     string
		after    time.Duration
		edgeEdit func(*edgecmd.File)
		renewal  string // the relay's log of the renewal expected, or none
		reason   string // what the edge logs of it
	}{
		{"on", time.Millisecond, noFEC, windowRenewal, "its congestion window moved"},
		{"short path", time.Millisecond, shortPath, shortRenewal, "the path is short"},
		{"off", 0, nil, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{transport: "quic", edgeEdit: tt.edgeEdit,
				relayTLSEdit: func(f *relaycmd.File) { f.RenewAfter = &tt.after }})
			ctx := testCtx(t, 20*time.Second)
			// About 300 KB of answer: more than the first window (40 KB).
			big, err := s.openai().Chat.Completions.New(ctx, chatParams, option.WithHeader("X-Fake-Tokens", "60000"))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(big.Choices[0].Message.Content); n < 200<<10 {
				t.Fatalf("the large answer has %d bytes of content", n)
			}
			if tt.renewal != "" {
				waitLog(t, s.edgeLogs, "relay asked for the session to be renewed; draining it", tt.reason)
				waitFor(t, "the relay's renewal log", func() bool {
					return s.relayLogs.FilterMessage(tt.renewal).Len() > 0
				})
			}
			if tt.renewal == shortRenewal {
				waitFor(t, "a replacement session without FEC", func() bool {
					return s.relayLogs.FilterMessage("edge authenticated").
						FilterField(zap.String("transport", "quic")).FilterField(zap.Bool("fec", false)).Len() > 0
				})
			}
			for range 3 {
				if _, err := openaiChat(ctx, t, s); err != nil {
					t.Fatal(err)
				}
			}
			if tt.renewal == "" {
				for _, m := range []string{windowRenewal, shortRenewal} {
					if n := s.relayLogs.FilterMessage(m).Len(); n != 0 {
						t.Fatalf("the relay renewed %d sessions with renewal off (%q)", n, m)
					}
				}
			}
		})
	}
}
