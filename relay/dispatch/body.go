package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/upstream"
)

var errFirstByte = errors.New("no first byte from the provider within the time limit")

// firstByte sends req and waits for its status and, for a successful
// stream, its first body bytes, all within the first-byte limit (the idle
// limit for non-streaming calls, which answer only when done). Until then
// nothing has reached the client, so a failure can still be retried.
func (c *caller) firstByte(cancel context.CancelFunc, req *http.Request, to upstream.Timeouts) (*http.Response, []byte, error) {
	limit := to.Idle
	if c.in.Stream {
		limit = to.FirstByte
	}
	timer := time.AfterFunc(limit, cancel)
	resp, first, err := c.send(req)
	if !timer.Stop() { // the limit struck, and canceled the call
		if resp != nil {
			resp.Body.Close()
		}
		return nil, nil, fmt.Errorf("%w (%s)", errFirstByte, limit)
	}
	return resp, first, err
}

func (c *caller) send(req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.d.cfg.Client.Do(req)
	if err != nil || !c.in.Stream || resp.StatusCode >= 300 {
		return resp, nil, err
	}
	first, err := readFirst(resp.Body)
	if err != nil {
		resp.Body.Close()
		return nil, nil, err
	}
	return resp, first, nil
}

// readFirst reads until the body yields at least one byte or ends. It
// returns a copy the size of what came (a stream's first event, typically):
// the answer keeps it for the whole stream.
func readFirst(body io.Reader) ([]byte, error) {
	bufp := bigBufPool.Get().(*[]byte)
	defer bigBufPool.Put(bufp)
	for {
		n, err := body.Read(*bufp)
		if n > 0 || err == io.EOF {
			return append([]byte(nil), (*bufp)[:n]...), nil // a later Read repeats io.EOF
		}
		if err != nil {
			return nil, err
		}
	}
}

// deliver sends the answer's status and headers, then its body. From the
// first byte on nothing is retried; a failure ends the stream with an End
// code the edge turns into an in-band error, never a clean end. The body is
// pumped through the exchange's handoff, on a goroutine of its own.
func (c *caller) deliver(ctx context.Context, a *answer) {
	out, p, first := c.sendHead(a)
	if p == nil {
		c.closeAnswer(a, out)
		return
	}
	if p.whole {
		// A whole answer is in the provider's hands already: its body
		// follows at once, and pumping it here spares a goroutine and the
		// stack it would grow (see Handoff), which only pays for a stream
		// that waits on the provider.
		c.pumpBody(ctx, a, p, first)
		c.closeAnswer(a, out)
		return
	}
	c.x.goPump(func() {
		c.pumpBody(ctx, a, p, first)
		c.closeAnswer(a, out)
	})
}

// sendHead sends the answer's status and headers (converted, if the client
// speaks another API) and returns the pump for its body, with the first
// body bytes, or a nil pump when the exchange is over already.
func (c *caller) sendHead(a *answer) (out converted, p *pump, first []byte) {
	if c.listing != nil {
		mergeListing(a, c.in.Header.Family, c.listing)
	}
	out = converted{status: a.resp.StatusCode, header: a.resp.Header, body: a.resp.Body}
	first, family := a.first, c.in.Header.Family
	if c.conv != nil {
		out, first, family = c.conv.respond(a), nil, c.conv.family
		if errors.Is(out.err, errIdle) {
			c.x.log.Warn("provider silent past the idle limit before its whole answer", zap.Error(out.err))
			c.x.ended(endTimeout)
			c.x.finish(proto.End{Code: proto.CodeUpstreamTimeout, Message: out.err.Error()})
			return out, nil, nil
		}
		if out.err != nil {
			c.x.log.Warn("provider answer could not be converted", zap.Error(out.err))
			c.x.ended(endUpstreamError)
			c.x.finish(proto.End{Code: proto.CodeUpstreamBroken, Message: "converting the provider's answer: " + out.err.Error()})
			return out, nil, nil
		}
	}
	h := out.header
	upstream.CleanResponseHeader(h)
	if c.attempts > 1 {
		h.Set("X-Strait-Attempts", strconv.Itoa(c.attempts))
	}
	c.x.stats.Status = out.status
	c.x.stats.Timing.Set(h)
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	events := mt == "text/event-stream"
	if len(first) > 0 || !events {
		// The header leaves with the first body bytes, in one write: they
		// are here already, or the answer is not an event stream (its
		// length may be unknown once the relay decompressed it), and the
		// edge sends its header with the body anyway, unless the client
		// asked for a stream (forward.Request.Stream). pump.run flushes.
		c.x.w.Hold()
	}
	if err := c.x.w.WriteResponse(&proto.ResponseHeader{Status: out.status, Header: h}); err != nil {
		c.x.ended(endClientGone)
		return out, nil, nil
	}
	// Neither an event stream nor asked for as a stream (Gemini's
	// streamGenerateContent without alt=sse streams one JSON array).
	whole := !events && !c.in.Stream
	c.releaseBody(a)
	return out, &pump{x: c.x, body: out.body, cancel: a.cancel, to: a.target.Provider.Timeouts(), ping: pingFor(family, mt),
		events: events, whole: whole}, first
}

// pumpBody streams the answer's body and ends the exchange. It and what
// it calls while the answer streams keep their frames small (the rest is
// in endPump and pump's out-of-line branches): parked in the provider's
// Read under about 900 B of frames, the pump's goroutine lives in 4 KiB,
// and the GC can halve back to that a stack a write grew to 8 (see
// Handoff).
func (c *caller) pumpBody(ctx context.Context, a *answer, p *pump, first []byte) {
	start := time.Now()
	n, end, reason := p.run(first)
	c.endPump(ctx, a, start, n, end, reason)
}

// endPump ends the exchange once the answer's body is over.
func (c *caller) endPump(ctx context.Context, a *answer, start time.Time, n int64, end proto.End, reason string) {
	c.x.stats.BytesDown = n
	if ctx.Err() != nil && end.Code != proto.CodeOK {
		c.x.log.Info("edge went away mid-response; upstream canceled", zap.Int64("bytes", n))
		c.x.ended(endClientGone)
		return
	}
	c.x.log.Debug("exchange done", zap.Int("status", a.resp.StatusCode), zap.Int64("bytes", n),
		zap.Duration("duration", time.Since(start)), zap.String("ended", reason))
	c.x.ended(reason)
	c.x.finish(end)
}

// closeAnswer ends the upstream call: the conversion first (it reads the
// body), then the body, then the call's context.
func (c *caller) closeAnswer(a *answer, out converted) {
	if out.stop != nil {
		out.stop()
	}
	a.resp.Body.Close()
	a.cancel()
}

// releaseBody lets go of the request once an answer is on its way to the
// edge: no fallback will send it again, and the answer may stream for
// minutes. The upstream request's body reader let go of the body when it
// was sent; GetBody (the transport's resend before an answer) and the
// parsed request hold it too, and the parsed request also holds the
// tunnel's request header (about 1.4 KiB a stream, measured at 4 000
// streams). A converted request keeps it (the conversion may read the
// request again for its answer), and so does a fan-out's call (its calls
// share what they were made from).
func (c *caller) releaseBody(a *answer) {
	if c.conv != nil || c.x.sub {
		return
	}
	if a.resp.Request != nil {
		a.resp.Request.GetBody = nil
	}
	c.client.Body, c.in.Body = nil, nil
	c.client, c.in, c.listing = nil, nil, nil
}

// pingFor is the keep-alive an SSE client of family ignores (see
// llmapi.Family.Ping), or nil when the response is not SSE.
func pingFor(family, mediaType string) []byte {
	if mediaType != "text/event-stream" {
		return nil
	}
	return llmapi.Family(family).Ping()
}

// keepAlive is the ping to send now: a blank ping (Gemini's) follows the line ending of
// the event just forwarded (a "\n\n" after "\r\n\r\n" events would
// glue the next event to a stray "\r\n" for genai's splitter).
func (p *pump) keepAlive() []byte {
	if string(p.ping) == "\n\n" && string(p.tail[:]) == "\r\n\r\n" {
		return []byte("\r\n\r\n")
	}
	return p.ping
}

// pump copies a response body to the edge, one Data frame per upstream
// read, under the idle limit, with keep-alives while the provider is
// silent between events.
//
// The goroutine in run owns the blocking Read; the idle limit and the
// keep-alives are timers whose callbacks run only when they strike, so an
// open stream costs one goroutine here, not a second one parked in Read.
// mu orders every write to the edge, so a keep-alive never lands
// mid-frame.
type pump struct {
	x      *exchange
	body   io.Reader
	cancel context.CancelFunc
	to     upstream.Timeouts
	ping   []byte // nil: no keep-alives
	events bool   // the answer is an event stream
	whole  bool   // a whole answer, not a stream: deliver pumps it in place

	buf    *[]byte     // the read buffer, from smallBufPool or bigBufPool
	idle   *time.Timer // the idle limit
	pinger *time.Timer // the keep-alives; nil without them

	idled atomic.Bool // the idle limit struck and canceled the upstream call
	done  atomic.Bool // run has returned: no keep-alive may write any more (set under mu)

	mu       sync.Mutex // guards what follows and every write to the edge
	tail     [4]byte
	total    int64
	last     bool // the body has ended: forward leaves its frame for the End to take along
	lastRead time.Time
	pingEnd  *proto.End // a keep-alive found the edge gone
}

// run forwards first, then the rest of the body.
func (p *pump) run(first []byte) (int64, proto.End, string) {
	if len(first) > 0 {
		if end, ok := p.forward(first); !ok {
			return p.total, end, endClientGone
		}
	}
	// The read buffer starts small, enough for most SSE events, and moves
	// to a big one while reads fill it (a bulk body; see resize): an open
	// stream that trickles events holds 1 KiB, not 32.
	p.buf = smallBufPool.Get().(*[]byte)
	p.startTimers()
	defer p.stop()
	for {
		n, err := p.body.Read(*p.buf)
		p.idle.Stop()
		if p.idled.Load() {
			return p.idleCut()
		}
		p.mu.Lock()
		if p.pingEnd != nil {
			end := *p.pingEnd
			p.mu.Unlock()
			return p.totalNow(), end, endClientGone
		}
		if err == io.EOF {
			// The last bytes and the End (which finish writes next)
			// leave together.
			p.last = true
			p.x.w.Hold()
		}
		if n > 0 {
			end, ok := p.forwardLocked((*p.buf)[:n])
			p.lastRead = time.Now()
			if !ok {
				p.mu.Unlock()
				return p.totalNow(), end, endClientGone
			}
		}
		total := p.total
		p.mu.Unlock()
		if err == io.EOF {
			return total, proto.End{}, endCompleted
		}
		if err != nil {
			return p.brokeOff(total, err)
		}
		p.buf = resize(p.buf, n)
		p.idle.Reset(p.to.Idle)
	}
}

// startTimers arms the idle limit, which runs while the pump waits for the
// provider (striking, it cancels the call, which ends the Read), and the
// keep-alives.
func (p *pump) startTimers() {
	p.idle = time.AfterFunc(p.to.Idle, func() {
		p.idled.Store(true)
		p.cancel()
	})
	p.lastRead = time.Now()
	if p.ping != nil {
		// Armed only once pinger is set, which its callback reads.
		p.pinger = time.AfterFunc(math.MaxInt64, func() { p.keepAliveTick(p.pinger) })
		p.pinger.Reset(p.to.Ping)
	}
}

// stop stops the timers, waiting for a keep-alive being written, and gives
// the read buffer back.
func (p *pump) stop() {
	p.idle.Stop()
	p.mu.Lock()
	p.done.Store(true)
	if p.pinger != nil {
		p.pinger.Stop()
	}
	p.mu.Unlock()
	if len(*p.buf) < bigBuf {
		smallBufPool.Put(p.buf)
	} else {
		bigBufPool.Put(p.buf)
	}
	p.buf = nil
}

// idleCut is run's end when the idle limit struck.
func (p *pump) idleCut() (int64, proto.End, string) {
	p.x.log.Warn("provider silent past the idle limit; stream cut", zap.Duration("idle_limit", p.to.Idle),
		zap.Int64("bytes", p.totalNow()))
	return p.totalNow(), proto.End{Code: proto.CodeUpstreamTimeout,
		Message: fmt.Sprintf("the provider sent nothing for %s (idle limit)", p.to.Idle)}, endTimeout
}

// brokeOff is run's end when the provider's body failed.
func (p *pump) brokeOff(total int64, err error) (int64, proto.End, string) {
	p.x.log.Warn("upstream body broke off", zap.Int64("bytes", total), zap.Error(err))
	return total, proto.End{Code: proto.CodeUpstreamBroken, Message: "reading from provider: " + clientText(err)}, endUpstreamError
}

// keepAliveTick sends a keep-alive if the provider has been silent for
// half the interval and the stream is between events, then re-arms t. A
// write under way (a forward waiting on the edge's window) makes one
// unnecessary, so it does not wait for the lock.
func (p *pump) keepAliveTick(t *time.Timer) {
	if !p.mu.TryLock() {
		// A run that just ended may hold the lock: then one more tick
		// comes, finds done under the lock, and stops.
		if !p.done.Load() {
			t.Reset(p.to.Ping)
		}
		return
	}
	defer p.mu.Unlock()
	if p.done.Load() || p.pingEnd != nil {
		return
	}
	if time.Since(p.lastRead) >= p.to.Ping/2 && p.atBoundary() {
		ping := p.keepAlive()
		if end, ok := p.forwardLocked(ping); !ok {
			// The edge is gone: end the Read, and run returns this.
			p.pingEnd = &end
			p.cancel()
			return
		}
		p.total -= int64(len(ping))
	}
	t.Reset(p.to.Ping)
}

// totalNow is the byte count so far, under the lock.
func (p *pump) totalNow() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.total
}

// forward is forwardLocked for a caller that does not hold mu.
func (p *pump) forward(b []byte) (proto.End, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.forwardLocked(b)
}

// forwardLocked writes b as one Data frame, with the Response header if
// that was held for it. The caller holds mu.
func (p *pump) forwardLocked(b []byte) (proto.End, bool) {
	_, err := p.x.w.Write(b)
	if err == nil && !p.last {
		err = p.x.w.Flush()
	}
	if err != nil {
		return proto.End{Code: proto.CodeCanceled, Message: "writing to edge: " + err.Error()}, false
	}
	if p.total == 0 {
		// Where a request's time to first byte goes at the relay (the
		// edge's debug line "tunnel stream opened" has the other end).
		if ce := p.x.log.Check(zap.DebugLevel, "first response bytes sent"); ce != nil {
			ce.Write(zap.Duration("read", p.x.read), zap.Duration("since_accept", time.Since(p.x.start)))
		}
	}
	p.total += int64(len(b))
	p.tailOf(b)
	return proto.End{}, true
}

// tailOf keeps the last bytes forwarded, for atBoundary.
func (p *pump) tailOf(b []byte) {
	if len(b) >= len(p.tail) {
		copy(p.tail[:], b[len(b)-len(p.tail):])
	} else {
		copy(p.tail[:], append(p.tail[len(b):], b...))
	}
}

// atBoundary reports whether the bytes so far end an SSE event, so a
// keep-alive cannot land inside one.
func (p *pump) atBoundary() bool {
	return llmapi.EndsEvent(p.tail[:])
}

// resize returns the read buffer for the next read after one of n bytes
// into *bufp: a small one that the read filled gives way to a big one (a
// bulk body, or a burst of events), a big one that the read left mostly
// empty to a small one (the burst is over), so that a stream waiting for
// its next event never holds 32 KiB.
func resize(bufp *[]byte, n int) *[]byte {
	switch small := len(*bufp) < bigBuf; {
	case small && n == len(*bufp):
		smallBufPool.Put(bufp)
		return bigBufPool.Get().(*[]byte)
	case !small && n < smallBuf:
		bigBufPool.Put(bufp)
		return smallBufPool.Get().(*[]byte)
	}
	return bufp
}

// Read buffers; pointers avoid an allocation per Put. smallBuf holds a
// typical SSE event (chat chunks are a few hundred bytes): it is what each
// open stream keeps while its provider is silent.
const (
	smallBuf = 1 << 10
	bigBuf   = 32 << 10
)

var (
	smallBufPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	bigBufPool   = sync.Pool{New: func() any { b := make([]byte, bigBuf); return &b }}
)
