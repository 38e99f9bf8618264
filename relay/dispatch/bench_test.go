package dispatch

import (
	"net/http"
	"testing"
)

// BenchmarkDispatch is one request through the dispatcher: read the framed
// request from a loopback stream, call the fake provider, frame the answer
// back. The edge side of the stream is in the same process.
//
//	go test -run '^$' -bench Dispatch -benchmem ./relay/dispatch
func BenchmarkDispatch(b *testing.B) {
	r := newRig(b, rigOptions{keys: []string{"k1"}, quiet: true})
	for _, tc := range []struct {
		name   string
		stream bool
	}{{"unary", false}, {"stream", true}} {
		b.Run(tc.name, func(b *testing.B) {
			h := http.Header{"X-Fake-Tokens": {"5"}, "X-Fake-Interval-Ms": {"0"}}
			body := chat("gpt-4o", tc.stream)
			for b.Loop() {
				if res := r.do("openai", "/v1/chat/completions", h.Clone(), body); res.status != http.StatusOK {
					b.Fatalf("status %d end %v", res.status, res.end)
				}
			}
		})
	}
}
