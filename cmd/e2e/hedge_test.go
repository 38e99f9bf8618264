package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/scripts/fakeprovider"
)

// TestHedgeAroundStalledSession: with tunnel.hedge on and two sessions to
// the relay, one of them stalled (what the edge sends on it waits, as
// behind a lost TCP segment), every request still answers through the
// other session while the stall holds; the copies on the stalled session
// are closed at the edge at once, and when the stall ends the relay
// refuses them as duplicates: the provider sees each request once.
func TestHedgeAroundStalledSession(t *testing.T) {
	s := newHedgeStack(t)
	release := s.proxy.stall(t, 0)

	const n = 6 // the pool spreads first streams over both sessions by load
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			p := chatParams
			_, err := s.openai(option.WithMaxRetries(0)).Chat.Completions.New(testCtx(t, 30*time.Second), p)
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
			}
		})
	}
	wg.Wait() // all answered while the stall holds
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The losing copies, all on the stalled session, were closed: no stream
	// stays open at the edge although that session carries nothing.
	waitWithin(t, time.Minute, "no open tunnel streams", func() bool { return edgeMetricSum(s, "strait_tunnel_streams{") == 0 })

	release()
	waitWithin(t, time.Minute, "the relay to refuse the stalled copies", func() bool {
		return s.relayLogs.FilterMessageSnippet("came after its answer").Len() >= n
	})
	if got := len(s.fake.Requests()); got != n {
		t.Fatalf("the provider received %d requests for %d hedged ones", got, n)
	}
}

// newHedgeStack is a stack with tunnel.hedge on and two sessions to the
// relay through the cutting proxy, up. Nothing may notice a stall by
// itself and route around it: probes, heartbeats and dead-peer timeouts
// are pushed out of the test's way, so only the hedge can answer around a
// stalled session.
func newHedgeStack(t *testing.T) *stack {
	s := newStack(t, stackOptions{viaProxy: true,
		relayTLSEdit: func(f *relaycmd.File) { f.Heartbeat, f.HeartbeatTimeout = time.Minute, 2*time.Minute },
		edgeEdit: func(f *edgecmd.File) {
			f.Tunnel.Hedge = "on"
			f.Tunnel.Sessions = edgecmd.SessionsFile{Min: 2, Max: 2}
			f.Tunnel.Heartbeat, f.Tunnel.HeartbeatTimeout = time.Minute, 2*time.Minute
			f.Tunnel.ProbeInterval, f.Tunnel.ProbeTimeout = time.Minute, 2*time.Minute
		}})
	waitWithin(t, time.Minute, "two tunnel sessions", func() bool { return edgeMetricSum(s, "strait_tunnel_sessions{") >= 2 })
	return s
}

// edgeMetricSum adds the edge's samples whose names (with labels) start
// with prefix.
func edgeMetricSum(s *stack, prefix string) float64 {
	var sum float64
	for _, line := range edgeMetricLines(s) {
		if strings.HasPrefix(line, prefix) {
			var f float64
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				fmt.Sscan(line[i+1:], &f)
			}
			sum += f
		}
	}
	return sum
}

// TestHedgedAnswersLeaveTheHandler: a hedged answer, read from two
// streams as one, also goes on detached from net/http over HTTP/1.1.
func TestHedgedAnswersLeaveTheHandler(t *testing.T) {
	s := newHedgeStack(t)
	streamDetached(t, s, s.client, 1)
	waitWithin(t, time.Minute, "no open tunnel streams", func() bool { return edgeMetricSum(s, "strait_tunnel_streams{") == 0 })
}

// TestMirrorAroundStalledAnswers: with tunnel.hedge on and two sessions to
// the relay, one of which brings nothing back to the edge (its relay →
// edge direction held, as behind a lost segment), every streamed answer
// still arrives whole while the stall holds: the relay sends a hedged
// request's answer on both its streams (answer mirrors), and the edge
// takes each byte from the stream that brings it first. Without mirrors,
// the answers of the requests the relay took through the held session
// would wait for it. The provider sees each request once.
func TestMirrorAroundStalledAnswers(t *testing.T) {
	s := newHedgeStack(t)
	release := s.proxy.stallAnswers(t, 0)

	const n, tokens = 6, 5 // the pool spreads first streams over both sessions by load
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			text, err := chatStreamText(testCtx(t, 30*time.Second), s.openai(slow(tokens, 20*time.Millisecond)...))
			if err != nil {
				errs <- fmt.Errorf("request %d: %w", i, err)
			} else if text != fakeprovider.Text(tokens) {
				errs <- fmt.Errorf("request %d: text %q", i, text)
			}
		})
	}
	wg.Wait() // all answered while the stall holds
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(s.fake.Requests()); got != n {
		t.Fatalf("the provider received %d requests for %d hedged ones", got, n)
	}
	release()
	waitWithin(t, time.Minute, "no open tunnel streams", func() bool { return edgeMetricSum(s, "strait_tunnel_streams{") == 0 })
}
