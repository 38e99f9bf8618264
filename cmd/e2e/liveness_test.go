package e2e

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/openai/openai-go/v3"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
)

// TestSilenceIsNotATimeout: a model that thinks before its first byte, or
// pauses mid-stream, for three times as long as every liveness bound of the
// tunnel (heartbeat + heartbeat timeout on both sides, probe timeout on the
// edge) is not cut: liveness is judged by heartbeats and probes, never by a
// stream's silence.
func TestSilenceIsNotATimeout(t *testing.T) {
	// The bounds are short so that the silence can outlast each three times,
	// yet long enough that a process starved of CPU for a few hundred
	// milliseconds (-race, load average 15 on two cores) is not taken for a
	// dead peer: 100 + 200 ms of heartbeat failed there with 502s.
	const beat, beatTimeout, silence = 250 * time.Millisecond, 500 * time.Millisecond, 3 * time.Second
	eachTransport(t, func(t *testing.T, transport string) {
		s := newStack(t, stackOptions{transport: transport,
			relayTLSEdit: func(f *relaycmd.File) { f.Heartbeat, f.HeartbeatTimeout = beat, beatTimeout },
			edgeEdit: func(f *edgecmd.File) {
				f.Tunnel.Heartbeat, f.Tunnel.HeartbeatTimeout = beat, beatTimeout
				f.Tunnel.ProbeInterval, f.Tunnel.ProbeTimeout = 100*time.Millisecond, time.Second
			}})
		// Two tokens with the silence between them: a non-streaming answer
		// sends nothing at all until the end, a stream pauses after its first.
		slowly := slow(2, silence)
		var wg sync.WaitGroup
		wg.Go(func() {
			start := time.Now()
			if _, err := s.openai(slowly...).Chat.Completions.New(testCtx(t, 20*time.Second), chatParams); err != nil {
				t.Errorf("answer after %v of silence: %v", time.Since(start), err)
			}
		})
		wg.Go(func() {
			st := s.openai(slowly...).Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), chatParams)
			defer st.Close()
			n := 0
			for st.Next() {
				n++
			}
			if err := st.Err(); err != nil || n < 2 {
				t.Errorf("stream with a %v pause: %d chunks, %v", silence, n, err)
			}
		})
		wg.Wait()
	})
}

// TestNoSessionMeans503WithRetryAfter: with no tunnel session up, a request
// waits session_wait for one, then gets a 503 with Retry-After in its API
// family's format, which each SDK raises as its own error type.
func TestNoSessionMeans503WithRetryAfter(t *testing.T) {
	const wait = 300 * time.Millisecond
	s := newStack(t, stackOptions{sessionWait: wait})
	s.stopRelay()

	start := time.Now()
	_, err := s.openai().Chat.Completions.New(testCtx(t, 10*time.Second), chatParams)
	waited := time.Since(start)
	var oe *openai.Error
	if !errors.As(err, &oe) || oe.StatusCode != 503 || oe.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("OpenAI SDK: %v; want a 503 with Retry-After", err)
	}
	if waited < wait {
		t.Errorf("503 after %v; the request should have waited session_wait (%v) for a session", waited, wait)
	}
	_, err = s.anthropic().Messages.New(testCtx(t, 10*time.Second), messageParams)
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 503 || ae.Response.Header.Get("Retry-After") == "" {
		t.Fatalf("Anthropic SDK: %v; want a 503 with Retry-After", err)
	}
}

// TestEdgeDrainsOnShutdown: when the edge is told to stop (SIGTERM in the
// binary), it stops accepting connections at once and lets a stream in
// flight finish.
func TestEdgeDrainsOnShutdown(t *testing.T) {
	s := newStack(t, stackOptions{})
	st := s.openai(slow(20, 50*time.Millisecond)...).Chat.Completions.NewStreaming(testCtx(t, 10*time.Second), chatParams)
	defer st.Close()
	if !st.Next() {
		t.Fatalf("no first chunk: %v", st.Err())
	}
	stopped := make(chan struct{})
	go func() { s.stopEdge(); close(stopped) }()
	addr := s.edgeURL[len("https://"):]
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // no longer accepting
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the edge still accepts connections 2s after shutdown began")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n := 1
	for st.Next() {
		n++
	}
	if err := st.Err(); err != nil || n < 20 {
		t.Fatalf("in-flight stream across the edge's shutdown: %d of 20 chunks, %v", n, err)
	}
	<-stopped
}
