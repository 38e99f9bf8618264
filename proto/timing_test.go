package proto

import (
	"net/http"
	"testing"
	"time"
)

func TestRelayTimingRoundTrip(t *testing.T) {
	h := http.Header{}
	want := RelayTiming{Relay: 1500 * time.Microsecond, Upstream: 2 * time.Second}
	want.Set(h)
	got, ok := TakeRelayTiming(h)
	if !ok || got != want {
		t.Fatalf("got %+v %v, want %+v", got, ok, want)
	}
	if h.Get(TimingHeader) != "" {
		t.Fatal("TakeRelayTiming left the header for the client to see")
	}
}

func TestRelayTimingMalformed(t *testing.T) {
	for _, v := range []string{"", "relay=1", "relay=x,upstream=2", "relay=-1,upstream=2", "relay1,upstream=2",
		// more microseconds than a time.Duration holds: they would wrap
		"relay=9223372036854775807,upstream=2", "relay=1,upstream=9223372036854776"} {
		h := http.Header{}
		if v != "" {
			h.Set(TimingHeader, v)
		}
		if _, ok := TakeRelayTiming(h); ok {
			t.Errorf("%q parsed", v)
		}
	}
}
