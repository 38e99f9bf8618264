package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// adminGet fetches path from an admin listener and returns status and body.
func adminGet(t *testing.T, base, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestAdminListeners: both binaries serve /metrics, /healthz and /readyz on
// their admin listener, and the relay's metrics count a real exchange.
func TestAdminListeners(t *testing.T) {
	s := newStack(t, stackOptions{})
	if _, err := openaiChat(testCtx(t, 10*time.Second), t, s); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, base string }{{"edge", s.edgeAdmin}, {"relay", s.relayAdmin}} {
		for _, p := range []string{"/healthz", "/readyz"} {
			if code, body := adminGet(t, c.base, p); code != http.StatusOK {
				t.Errorf("%s %s: %d %s", c.name, p, code, body)
			}
		}
	}
	wants := map[string][]string{
		"edge": {`strait_tunnel_sessions{relay=`, "go_goroutines"},
		"relay": {`strait_relay_requests_total{family="openai",provider="openai",status="200"} 1`,
			`strait_relay_tunnel_sessions{transport="ws"}`, `strait_tunnel_tcp_congestion{algorithm="`,
			"strait_relay_upstream_first_byte_seconds_bucket",
			"strait_relay_overhead_seconds_count 1", "process_open_fds"},
	}
	for name, base := range map[string]string{"edge": s.edgeAdmin, "relay": s.relayAdmin} {
		_, body := adminGet(t, base, "/metrics")
		for _, w := range wants[name] {
			if !strings.Contains(body, w) {
				t.Errorf("%s /metrics lacks %q", name, w)
			}
		}
	}
	// With the relay gone the edge has no tunnel: not ready, still alive.
	s.stopRelay()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := adminGet(t, s.edgeAdmin, "/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge /readyz still %d with the relay stopped", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, _ := adminGet(t, s.edgeAdmin, "/healthz"); code != http.StatusOK {
		t.Errorf("edge /healthz %d with the relay stopped", code)
	}
}
