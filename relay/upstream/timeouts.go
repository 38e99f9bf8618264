package upstream

import "time"

// Timeouts fit LLM calls: a short wait for the first byte of a stream, a
// limit on silence between events, and no total limit.
type Timeouts struct {
	// FirstByte bounds the wait for the first body byte of a streaming call
	// (headers included); past it the attempt fails over to another key or
	// provider, since nothing has reached the client yet. Non-streaming calls
	// answer only when done, so they wait up to Idle instead. Zero means 60s.
	FirstByte time.Duration
	// Idle bounds the silence between two reads of a response body (and the
	// wait for a non-streaming answer); it resets on every read. Zero means
	// 10 minutes: reasoning models think for minutes.
	Idle time.Duration
	// Ping is the interval of keep-alive events sent to the client while an
	// SSE stream is silent; zero means 15s.
	Ping time.Duration
}

// or fills t's zero fields from d, then from the defaults.
func (t Timeouts) or(d Timeouts) Timeouts {
	pick := func(v, fallback, def time.Duration) time.Duration {
		switch {
		case v > 0:
			return v
		case fallback > 0:
			return fallback
		}
		return def
	}
	return Timeouts{
		FirstByte: pick(t.FirstByte, d.FirstByte, 60*time.Second),
		Idle:      pick(t.Idle, d.Idle, 10*time.Minute),
		Ping:      pick(t.Ping, d.Ping, 15*time.Second),
	}
}
