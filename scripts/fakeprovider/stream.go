package fakeprovider

import (
	"errors"
	"net/http"
	"time"
)

// streamer writes a streamed response, flushing after every event so that
// each token reaches the client when it is "generated".
type streamer struct {
	c   *call
	rc  *http.ResponseController
	eol string // line ending: "\n" for OpenAI and Anthropic, "\r\n" for Gemini
	err error  // first write failure; the client is gone
}

// startStream sends the status and headers of a streamed response.
func (c *call) startStream(contentType, eol string) *streamer {
	h := c.w.Header()
	h.Set("Content-Type", contentType)
	// What the real APIs and common proxies send to keep SSE unbuffered.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.w.WriteHeader(http.StatusOK)
	s := &streamer{c: c, rc: http.NewResponseController(c.w), eol: eol}
	s.flush()
	return s
}

// event writes one SSE event: an optional "event:" line, then one "data:"
// line holding data as JSON, then a blank line.
func (s *streamer) event(name string, data any) bool {
	var b []byte
	if name != "" {
		b = append(append(append(b, "event: "...), name...), s.eol...)
	}
	b = append(append(b, "data: "...), mustJSON(data)...)
	return s.write(append(b, s.eol+s.eol...))
}

// write sends raw bytes and flushes them; it reports whether the client is
// still reading.
func (s *streamer) write(b []byte) bool {
	if s.err == nil {
		s.err = s.c.ctx.Err()
	}
	if s.err == nil {
		_, s.err = s.c.w.Write(b)
	}
	s.flush()
	return s.err == nil
}

func (s *streamer) flush() {
	if s.err != nil {
		return
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.err = err
	}
}

// each emits the completion's pieces, piece i at i intervals after the
// first, and stops as soon as the client goes away.
//
// The schedule is absolute, as a model's own clock is: a piece whose write
// or wake-up came late does not push the later ones back. Sleeping the
// interval after each write instead made the fake provider itself slower
// whenever the machine was busy; in the lab it shares two cores with the
// contender it serves, so a contender that used more CPU got a slower
// "model" (inter-event gap p50 21.3-21.7 ms behind Strait's QUIC tiers
// against 20.6-20.8 behind nginx in the same run, 0.7 ms on each of 199
// gaps), which the total stream time then charged to the path.
func (s *streamer) each(cp completion, emit func(i int, piece string) bool) bool {
	start := s.c.clock()
	for i, p := range cp.pieces {
		if s.c.broken(i) {
			s.err = errInjectedBreak
			return false
		}
		if i > 0 && !s.c.sleep(start.Add(time.Duration(i)*s.c.interval).Sub(s.c.clock())) {
			s.err = s.c.ctx.Err()
			return false
		}
		if !emit(i, p) {
			return false
		}
	}
	return s.err == nil
}

// end marks the response complete unless a write failed.
func (s *streamer) end() {
	if s.err == nil {
		s.c.rec.complete()
	}
}
