package e2e

import (
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"

	"github.com/strait/strait/cmd/internal/relaycmd"
)

// TestQUICRenewal: once a QUIC session's congestion window has moved (a
// large answer grew it) and its last stream has ended, the relay asks the
// edge to renew it; the edge dials the replacement and requests go on.
// With renew_after at 0s nothing is renewed.
func TestQUICRenewal(t *testing.T) {
	for _, tt := range []struct {
		name  string
		after time.Duration
		renew bool
	}{
		{"on", time.Millisecond, true},
		{"off", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, stackOptions{transport: "quic",
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
			if tt.renew {
				waitLog(t, s.edgeLogs, "relay asked for the session to be renewed; draining it", "renewing the session")
				waitFor(t, "the relay's renewal log", func() bool {
					return s.relayLogs.FilterMessage("asking the edge to renew an idle tunnel session").Len() > 0
				})
			}
			for range 3 {
				if _, err := openaiChat(ctx, t, s); err != nil {
					t.Fatal(err)
				}
			}
			if !tt.renew {
				if n := s.relayLogs.FilterMessage("asking the edge to renew an idle tunnel session").Len(); n != 0 {
					t.Fatalf("the relay renewed %d sessions with renewal off", n)
				}
			}
		})
	}
}
