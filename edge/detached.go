package edge

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/edge/detach"
	"github.com/strait/strait/edge/forward"
)

// clientSweep is how often the edge looks for clients that went away
// from detached answers (see detach.Registry): about this long after a
// client leaves mid-answer, between two of its events, its upstream call
// is cancelled; a write to it may notice sooner. Each sweep costs one
// getsockopt per open stream (about 1 µs): 20 ms of CPU a second at
// 10 000 streams.
const clientSweep = 500 * time.Millisecond

// detach takes the client connection from net/http for the rest of a
// streamed answer (forward.Request.Detach), once its header is out: the
// handler returns, and the answer, its metering and its accounting go on
// on the forwarder's goroutine, which calls the returned function at the
// end. It declines (nil) outside Serve, during a drain, for HTTP/2, for
// anything but a chunked HTTP/1.1 answer, and for an answer the border
// guard holds whole (a JSON stream: its header waits with its body, and
// taking the connection now would lose the header).
//
// What the call keeps from then on must not reach net/http's connection
// (its buffers are what detaching saves): the client writer under the tap
// and the border guard's restorer becomes the detached Stream, and the
// request a copy of what the log, the audit record and the response cache
// read of it, without its body, header or TLS state.
func (c *call) detach(status int) (http.ResponseWriter, context.Context, func(forward.Result)) {
	reg := c.e.streams.Load()
	if reg == nil || c.guard.writer != nil && c.guard.writer.HoldsWhole() {
		return nil, nil, nil
	}
	s, ok := reg.Take(c.tap, c.r, status)
	if !ok {
		return nil, nil, nil
	}
	if c.guard.writer != nil {
		c.guard.writer.ResponseWriter = s
	} else {
		c.tap.ResponseWriter = s
	}
	r := c.r
	c.r = (&http.Request{Method: r.Method, URL: r.URL, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Host: r.Host, RemoteAddr: r.RemoteAddr, RequestURI: r.RequestURI, ContentLength: r.ContentLength,
		Body: http.NoBody}).WithContext(s.Context())
	return c.tap, s.Context(), func(res forward.Result) { c.endDetached(s, res) }
}

// endDetached is a detached answer's end, as serveAPI's after Forward: the
// last writes (what the usage meter and the border guard still hold),
// then the last chunk (or nothing, for an answer that broke off), then the
// accounting, then the connection back to the server (or closed). The
// client has its whole answer before the accounting runs (quota
// settlement, the usage store, the audit record: a store's round trip,
// more on a slow one), and the connection carries no next request until
// that is done. The Stream ends whatever finish does: the edge's drain
// waits for every detached answer's End. A panic in finish, which net/http
// would have recovered for the handler, is logged and closes the
// connection.
func (c *call) endDetached(s *detach.Stream, res forward.Result) {
	complete := false
	defer func() { s.End(complete) }()
	defer func() {
		if p := recover(); p != nil {
			c.e.log.Error("panic while finishing a streamed answer; closing its connection",
				zap.String("request_id", c.id), zap.Any("panic", p), zap.Stack("stack"))
		}
	}()
	c.res = res
	c.guard.forwarding = false
	c.lastWrites()
	s.Finish(!res.Aborted)
	c.account()
	complete = !res.Aborted
}

// drainStreams waits for the detached answers to end until ctx does, then
// cuts those left, as Serve's drain closes the connections left with
// net/http: a drain that runs out of time is not an error.
func (e *Edge) drainStreams(ctx context.Context, streams *detach.Registry) {
	n := streams.Len()
	if n > 0 && ctx.Err() == nil {
		e.log.Info("waiting for streamed answers to end", zap.Int("streams", n))
	}
	if err := streams.Wait(ctx); errors.Is(err, context.DeadlineExceeded) {
		e.log.Warn("drain timeout: cutting the streamed answers left", zap.Int("streams", streams.Len()))
	}
}
