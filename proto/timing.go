package proto

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TimingHeader is a response header the relay adds to every Response frame
// and the edge removes before the client sees it: the relay's own time and
// the provider's time to its response header, from which the edge composes
// Server-Timing. A header, not a frame field, so the frame layout is the
// same for relays that do not send it.
const TimingHeader = "Strait-Relay-Timing"

// RelayTiming is what the relay measured for one exchange.
type RelayTiming struct {
	Relay    time.Duration // from stream accept to the upstream call
	Upstream time.Duration // from the upstream call to its response header
}

// Set writes t into h as "relay=<µs>,upstream=<µs>".
func (t RelayTiming) Set(h http.Header) {
	h.Set(TimingHeader, "relay="+strconv.FormatInt(t.Relay.Microseconds(), 10)+
		",upstream="+strconv.FormatInt(t.Upstream.Microseconds(), 10))
}

// maxMicros is the most microseconds a time.Duration holds.
const maxMicros = math.MaxInt64 / int64(time.Microsecond)

// TakeRelayTiming removes the timing header from h and parses it; ok is
// false when it is absent or malformed (an older relay).
func TakeRelayTiming(h http.Header) (t RelayTiming, ok bool) {
	v := h.Get(TimingHeader)
	if v == "" {
		return t, false
	}
	h.Del(TimingHeader)
	var seen int
	for part := range strings.SplitSeq(v, ",") {
		name, num, found := strings.Cut(part, "=")
		us, err := strconv.ParseInt(num, 10, 64)
		// Past maxMicros, us×1µs would wrap to a wrong (even negative)
		// Duration.
		if !found || err != nil || us < 0 || us > maxMicros {
			return RelayTiming{}, false
		}
		switch name {
		case "relay":
			t.Relay, seen = time.Duration(us)*time.Microsecond, seen|1
		case "upstream":
			t.Upstream, seen = time.Duration(us)*time.Microsecond, seen|2
		}
	}
	return t, seen == 3
}
