package dispatch

import (
	"net/http"
	"testing"
	"time"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/relay/upstream"
)

// TestIdleLimitBeforeThePump: a provider that sends its header and a few
// bytes, then nothing, is cut at the idle limit also where its body is read
// before the pump runs: a whole answer converted from another family (read
// to its end before its header exists) and an error answer's body (read to
// judge it; each attempt then fails as a timeout). The same-family answer,
// which the pump reads, is the reference.
func TestIdleLimitBeforeThePump(t *testing.T) {
	const idle = 300 * time.Millisecond
	stall := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			status := http.StatusOK
			if req.Header.Get("X-Fake-Err") != "" {
				status = http.StatusInternalServerError
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"id":`))
			w.(http.Flusher).Flush()
			select { // silent far past the idle limit
			case <-req.Context().Done():
			case <-time.After(10 * time.Second):
			}
		})
	}
	for _, tc := range []struct {
		name, model string
		header      http.Header
	}{
		{"same family", "gpt-4o-mini", http.Header{}},
		{"converted whole answer", "claude-x", http.Header{}},
		{"error answer's body", "gpt-4o-mini", http.Header{"X-Fake-Err": {"1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOptions{keys: []string{"k1"}, upstream: stall, quiet: true, timeouts: upstream.Timeouts{Idle: idle}})
			res := r.do("openai", "/v1/chat/completions", tc.header, chat(tc.model, false))
			if res.end.Code != proto.CodeUpstreamTimeout || res.elapsed > 5*time.Second {
				t.Fatalf("end %v (%s) after %v; want upstream_timeout within a few idle limits of %v",
					res.end.Code, res.end.Message, res.elapsed, idle)
			}
		})
	}
}
