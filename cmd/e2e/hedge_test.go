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
)

// TestHedgeAroundStalledSession: with tunnel.hedge on and two sessions to
// the relay, one of them stalled (what the edge sends on it waits, as
// behind a lost TCP segment), every request still answers through the
// other session while the stall holds; the copies on the stalled session
// are closed at the edge at once, and when the stall ends the relay
// refuses them as duplicates: the provider sees each request once.
func TestHedgeAroundStalledSession(t *testing.T) {
	// Nothing may notice the stall by itself and route around it: probes,
	// heartbeats and dead-peer timeouts are pushed out of the test's way,
	// so only the hedge can answer a request whose first stream is on the
	// stalled session.
	s := newStack(t, stackOptions{viaProxy: true,
		relayTLSEdit: func(f *relaycmd.File) { f.Heartbeat, f.HeartbeatTimeout = time.Minute, 2*time.Minute },
		edgeEdit: func(f *edgecmd.File) {
			f.Tunnel.Hedge = true
			f.Tunnel.Sessions = edgecmd.SessionsFile{Min: 2, Max: 2}
			f.Tunnel.Heartbeat, f.Tunnel.HeartbeatTimeout = time.Minute, 2*time.Minute
			f.Tunnel.ProbeInterval, f.Tunnel.ProbeTimeout = time.Minute, 2*time.Minute
		}})
	waitWithin(t, time.Minute, "two tunnel sessions", func() bool { return edgeMetricSum(s, "strait_tunnel_sessions{") >= 2 })
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
		return s.relayLogs.FilterMessageSnippet("already taken upstream").Len() >= n
	})
	if got := len(s.fake.Requests()); got != n {
		t.Fatalf("the provider received %d requests for %d hedged ones", got, n)
	}
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
