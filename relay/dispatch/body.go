package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
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
// code the edge turns into an in-band error, never a clean end.
func (c *caller) deliver(ctx context.Context, a *answer) {
	defer a.cancel()
	defer a.resp.Body.Close()
	if c.listing != nil {
		mergeListing(a, c.in.Header.Family, c.listing)
	}
	out := converted{status: a.resp.StatusCode, header: a.resp.Header, body: a.resp.Body}
	first, family := a.first, c.in.Header.Family
	if c.conv != nil {
		out, first, family = c.conv.respond(a), nil, c.conv.family
		defer out.stop()
		if out.err != nil {
			c.x.log.Warn("provider answer could not be converted", zap.Error(out.err))
			c.x.ended(endUpstreamError)
			c.x.finish(proto.End{Code: proto.CodeUpstreamBroken, Message: "converting the provider's answer: " + out.err.Error()})
			return
		}
	}
	h := out.header
	proto.RemoveHopHeaders(h)
	if c.attempts > 1 {
		h.Set("X-Strait-Attempts", strconv.Itoa(c.attempts))
	}
	c.x.stats.Status = out.status
	c.x.stats.Timing.Set(h)
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	if len(first) > 0 || mt != "text/event-stream" {
		// The header leaves with the first body bytes, in one write: they
		// are here already, or (an answer that is not an event stream,
		// whose length may be unknown once the relay decompressed it) the
		// edge holds the header for the body anyway. pump.run flushes.
		c.x.w.Hold()
	}
	if err := c.x.w.WriteResponse(&proto.ResponseHeader{Status: out.status, Header: h}); err != nil {
		c.x.ended(endClientGone)
		return
	}
	p := &pump{x: c.x, body: out.body, cancel: a.cancel, to: a.target.Provider.Timeouts(), ping: pingFor(family, mt)}
	start := time.Now()
	n, end, reason := p.run(first)
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
type pump struct {
	x      *exchange
	body   io.Reader
	cancel context.CancelFunc
	to     upstream.Timeouts
	ping   []byte // nil: no keep-alives
	tail   [4]byte
	total  int64
	last   bool // the body has ended: forward leaves its frame for the End to take along
}

type readResult struct {
	p   []byte // in the reader's buffer, valid until it is told to read on
	err error
}

// run forwards first, then the rest of the body. A reader goroutine owns
// the blocking Read; this goroutine owns every write to the edge, so reads,
// keep-alives and timeouts never interleave mid-frame.
func (p *pump) run(first []byte) (int64, proto.End, string) {
	if len(first) > 0 {
		if end, ok := p.forward(first); !ok {
			return p.total, end, endClientGone
		}
	}
	// The reader starts with a small buffer, enough for SSE events, and
	// moves to a big one once a read fills it (a bulk body): an open stream
	// that trickles events holds 4 KiB, not 32.
	bufp := smallBufPool.Get().(*[]byte)
	results, next := make(chan readResult, 1), make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			n, err := p.body.Read(*bufp)
			results <- readResult{(*bufp)[:n], err}
			if err != nil {
				return
			}
			if _, ok := <-next; !ok {
				return
			}
			if n == len(*bufp) && len(*bufp) < bigBuf {
				smallBufPool.Put(bufp)
				bufp = bigBufPool.Get().(*[]byte)
			}
		}
	}()
	pending := true // the reader is in Read or has a result waiting
	defer func() {
		if pending {
			p.cancel() // unblocks Read; the result lands in the buffered channel
		}
		close(next)
		wg.Wait()
		if len(*bufp) < bigBuf {
			smallBufPool.Put(bufp)
		} else {
			bigBufPool.Put(bufp)
		}
	}()
	idle := time.NewTimer(p.to.Idle)
	defer idle.Stop()
	var pingC <-chan time.Time
	if p.ping != nil {
		t := time.NewTicker(p.to.Ping)
		defer t.Stop()
		pingC = t.C
	}
	lastRead := time.Now()
	for {
		select {
		case r := <-results:
			pending = false
			if r.err == io.EOF {
				// The last bytes and the End (which finish writes next)
				// leave together.
				p.last = true
				p.x.w.Hold()
			}
			if len(r.p) > 0 {
				if end, ok := p.forward(r.p); !ok {
					return p.total, end, endClientGone
				}
				idle.Reset(p.to.Idle)
				lastRead = time.Now()
			}
			if r.err == io.EOF {
				return p.total, proto.End{}, endCompleted
			}
			if r.err != nil {
				p.x.log.Warn("upstream body broke off", zap.Int64("bytes", p.total), zap.Error(r.err))
				return p.total, proto.End{Code: proto.CodeUpstreamBroken, Message: "reading from provider: " + clientText(r.err)}, endUpstreamError
			}
			pending = true
			next <- struct{}{}
		case <-idle.C:
			p.x.log.Warn("provider silent past the idle limit; stream cut", zap.Duration("idle_limit", p.to.Idle),
				zap.Int64("bytes", p.total))
			return p.total, proto.End{Code: proto.CodeUpstreamTimeout,
				Message: fmt.Sprintf("the provider sent nothing for %s (idle limit)", p.to.Idle)}, endTimeout
		case <-pingC:
			if time.Since(lastRead) < p.to.Ping/2 || !p.atBoundary() {
				continue
			}
			ping := p.keepAlive()
			if end, ok := p.forward(ping); !ok {
				return p.total, end, endClientGone
			}
			p.total -= int64(len(ping))
		}
	}
}

// forward writes b as one Data frame, with the Response header if that
// was held for it.
func (p *pump) forward(b []byte) (proto.End, bool) {
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

// Read buffers; pointers avoid an allocation per Put.
const (
	smallBuf = 4 << 10
	bigBuf   = 32 << 10
)

var (
	smallBufPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	bigBufPool   = sync.Pool{New: func() any { b := make([]byte, bigBuf); return &b }}
)
