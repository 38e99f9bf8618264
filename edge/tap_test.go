package edge

import (
	"testing"
	"time"

	"github.com/strait/strait/proto"
)

// TestServerTiming pins the Server-Timing split, its format and its cost:
// one header on every response.
func TestServerTiming(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	c := &call{start: start, forwardAt: start.Add(1500 * time.Microsecond), headerAt: start.Add(160 * time.Millisecond)}
	rt := proto.RelayTiming{Relay: 250 * time.Microsecond, Upstream: 4 * time.Millisecond}
	for _, tc := range []struct {
		fromRelay bool
		want      string
	}{
		{false, "edge;dur=1.500"},
		{true, `edge;dur=1.500, tunnel;dur=154.250, relay;dur=0.250, upstream;dur=4.000;desc="provider first byte"`},
	} {
		if got := c.serverTiming(rt, tc.fromRelay); got != tc.want {
			t.Errorf("serverTiming(fromRelay %v) = %q; want %q", tc.fromRelay, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { c.serverTiming(rt, true) }); n > 2 {
		t.Errorf("serverTiming allocates %v times; want at most 2 (its buffer and the string)", n)
	}
}
