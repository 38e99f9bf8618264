package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync/atomic"
	"time"
)

// errIdle is a body read cut by the provider idle limit (idleBody).
var errIdle = errors.New("the provider sent nothing for the idle limit")

// idleBody bounds the silence between reads of an upstream body that is
// read before the pump's own idle limit runs: a converted whole answer,
// which the converter reads to its end before the answer's header exists,
// and an error answer's body, read to judge it. When no read returns
// within limit, cancel ends the upstream call, and Read reports errIdle.
type idleBody struct {
	r     io.Reader
	limit time.Duration
	timer *time.Timer
	fired atomic.Bool
}

func newIdleBody(r io.Reader, limit time.Duration, cancel context.CancelFunc) *idleBody {
	b := &idleBody{r: r, limit: limit}
	b.timer = time.AfterFunc(limit, func() {
		b.fired.Store(true)
		cancel()
	})
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.fired.Load() {
		return n, fmt.Errorf("%w (%s)", errIdle, b.limit)
	}
	if n > 0 {
		b.timer.Reset(b.limit)
	}
	return n, err
}

// stop ends the limit; the body is read no more.
func (b *idleBody) stop() { b.timer.Stop() }

// isEventStream reports whether h is an SSE answer's header.
func isEventStream(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "text/event-stream"
}
