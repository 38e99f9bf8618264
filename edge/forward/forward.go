package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/edge/apierr"
	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/tunnel"
)

// Opener hands out tunnel streams (the edge's session pool). An Opener
// that also has a Draining() int method (the pool) makes requests wait
// longer while a relay restarts; see Forwarder.openStream.
type Opener interface {
	OpenStream(ctx context.Context) (tunnel.Stream, error)
}

// Request is a client request ready to cross the tunnel.
type Request struct {
	ID       string
	Family   llmapi.Family
	Provider string
	Method   string
	Path     string
	RawQuery string
	Header   http.Header // already without credentials and hop-by-hop headers
	Body     []byte
	// Model is the model the edge's policy judged (proto/llmapi); the
	// relay routes on it.
	Model string
	// Stream is the client asking for its answer as it is made
	// (proto/llmapi's Request.Stream). An answer of unknown length is flushed to
	// the client piece by piece only then: a whole answer whose length the
	// relay could not declare (it decompressed it) goes in one write, with
	// a Content-Length net/http works out, instead of a header, a chunk and
	// a chunked terminator, three TLS records.
	Stream bool
	// BodyDone, when set, is called (on Forward's goroutine, at most once)
	// as soon as Forward reads Body no more: the relay's response has
	// begun, so the request is never sent again, and it went out whole.
	// Forward drops its own reference to Body then too. A stream lasts
	// minutes and a prompt can be megabytes: without this, every open
	// stream would hold its prompt until its end. A hedged request (two
	// legs) keeps Body until Forward returns.
	BodyDone func()
	// Detach, when set, is offered an answer that streams (hedged or not),
	// once its status and header are out: it may take the client
	// connection from net/http (package edge/detach) and return the
	// writer the rest goes to, the context it goes on under, and what to
	// call with its Result at its end. Forward then returns at once, with
	// Result.Detached, and the answer streams on a goroutine of its own,
	// holding neither the handler's goroutine nor anything of net/http's.
	// A nil writer declines: the answer streams on the handler.
	Detach func(status int) (w http.ResponseWriter, ctx context.Context, done func(Result))
}

// Forwarder sends requests through an Opener.
type Forwarder struct {
	open Opener
	// sessionWait bounds the wait for a tunnel session when none is up.
	sessionWait time.Duration
	log         *zap.Logger

	// ClientWriteTimeout, when positive, cuts a response whose client has
	// taken no byte of it for this long. A client that stops reading
	// otherwise pins its stream's tunnel window (and the relay's upstream
	// call) for as long as it likes. Set it before the first Forward.
	ClientWriteTimeout time.Duration
	blocked            atomic.Int64 // responses inside a write to their client
	cut                atomic.Int64 // responses cut by ClientWriteTimeout
	budget             clientBudget // see SetClientBufferBudget
	hedge              HedgeMode    // see SetHedge
	hedgeMaxBody       int
}

// ClientStats reports how many responses are inside a write to their
// client right now (a client that does not read stays there), how many
// were cut by ClientWriteTimeout so far, and how many were cut to keep
// within the client buffer budget.
func (f *Forwarder) ClientStats() (blocked, cutTimeout, cutBudget int64) {
	return f.blocked.Load(), f.cut.Load(), f.budget.cutByBudget()
}

// New returns a Forwarder. sessionWait is how long a request may wait for a
// tunnel session (edge start, relay restart) before it fails with 503.
func New(open Opener, sessionWait time.Duration, log *zap.Logger) *Forwarder {
	return &Forwarder{open: open, sessionWait: sessionWait, log: log}
}

// Result summarises one exchange for the access log.
type Result struct {
	Status     int
	Bytes      int64
	Dispatched bool // the relay sent the request upstream
	Attempts   int  // tunnel streams used (resends happen only before dispatch)
	Hedged     bool // the last attempt went out on two sessions (Forwarder.Hedge)
	Err        error
	// Detached: the answer goes on without the handler (Request.Detach),
	// and this Result is only the header's; the final one goes to the
	// function Detach returned.
	Detached bool
	// Aborted: the answer broke off mid-stream, and the client connection
	// must be closed without ending the body, so that no client takes the
	// cut body for a whole one. Only a detached answer reports it; on the
	// handler Forward panics with http.ErrAbortHandler instead.
	Aborted bool
}

// Forward runs the exchange and writes the response to w. It returns after
// the response is complete or abandoned, and then nothing it started reads
// req.Body any more: the caller may reuse it. When a response breaks off
// mid-stream Forward does not return but panics with http.ErrAbortHandler;
// the body may then still be read until the stream's context ends.
func (f *Forwarder) Forward(w http.ResponseWriter, r *http.Request, req *Request) Result {
	var lost *apierr.Error
	var cause error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		res, retry := f.attempt(w, r, req, attempt)
		if retry == nil {
			res.Attempts = attempt
			return res
		}
		lost, cause = retry.apiErr, retry.cause
		f.logResend(req.ID, attempt, retry.cause)
	}
	res := fail(w, req.Family, lost, cause)
	res.Attempts = maxAttempts
	return res
}

// logResend and logOpened log out of line: their fields would take a few
// hundred bytes of the frames the handler parks under for a stream's life
// (see sendHeader).
func (f *Forwarder) logResend(id string, attempt int, cause error) {
	f.log.Debug("tunnel failed before the relay dispatched the request; resending",
		zap.String("request_id", id), zap.Int("attempt", attempt), zap.Error(cause))
}

func (f *Forwarder) logDetachedPanic(id string, p any) {
	f.log.Error("panic while streaming a detached answer; aborting it",
		zap.String("request_id", id), zap.Any("panic", p), zap.Stack("stack"))
}

func (f *Forwarder) logOpened(id string, opening time.Time, st tunnel.Stream) {
	if ce := f.log.Check(zap.DebugLevel, "tunnel stream opened"); ce != nil {
		// Where a request's time to first byte goes: waiting here for a
		// session (none up, or a burst waiting for sessions being dialed)
		// counts in Server-Timing's "tunnel" share.
		ce.Write(zap.String("request_id", id), zap.Duration("wait", time.Since(opening)), zap.Uint64("stream", st.ID()))
	}
}

// maxAttempts bounds resends of a request whose tunnel stream failed, or a
// draining relay refused it, before the relay said it had dispatched it
// upstream. During a rolling restart a request may meet each session of a
// draining relay before the GoAway reaches the edge; five covers two.
const maxAttempts = 5

// retryable is a failure that provably happened before the request reached
// the provider: the stream broke before the relay sent Dispatched. Such a
// request is resent on another session; apiErr is what the client gets when
// no attempt is left.
type retryable struct {
	apiErr *apierr.Error
	cause  error
}

// attempt runs one exchange: on one stream, or on two when the request is
// hedged (see Forwarder.Hedge). It writes the response unless it returns a
// retryable failure, in which case nothing has been written.
func (f *Forwarder) attempt(w http.ResponseWriter, r *http.Request, req *Request, n int) (Result, *retryable) {
	ctx := r.Context()
	opening := time.Now()
	st, err := f.openStream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return Result{Err: ctx.Err()}, nil
		}
		return fail(w, req.Family, &apierr.Error{Kind: apierr.Unavailable, RetryAfter: time.Second,
			Message: "Strait edge has no tunnel to a relay right now; retry shortly"}, err), nil
	}
	f.logOpened(req.ID, opening, st)
	hst := f.openHedge(ctx, st, req)
	lg := startLeg(ctx, st, req, hst != nil)
	x := &exchange{f: f, w: w, family: req.Family, id: req.ID, r: lg.r, st: lg.st, ctx: ctx, stream: req.Stream,
		attempt: n, detachTo: req.Detach}
	var res Result
	var retry *retryable
	var sendErr error
	if hst == nil {
		x.req, x.sending, x.legs, x.end = req, lg.sending, []*leg{lg}, lg.finish
		res, retry = x.run()
		if res.Detached {
			return res, nil
		}
		sendErr = lg.finish()
	} else {
		res, retry, sendErr = x.runHedged(lg, startLeg(ctx, hst, req, true))
	}
	if retry != nil && errors.Is(sendErr, proto.ErrFrameTooLarge) {
		// Too large for the tunnel: no other session takes it either.
		return fail(w, req.Family, &apierr.Error{Kind: apierr.HeaderTooLarge,
			Message: "request headers too large for Strait to forward (the tunnel's limit is " + strconv.Itoa(proto.MaxHeaderFrame>>10) + " KiB)"}, sendErr), nil
	}
	if retry != nil && sendErr != nil && !errors.Is(sendErr, os.ErrDeadlineExceeded) { // not the deadline set by finish
		retry.apiErr.Message = "Strait tunnel to the relay broke while sending the request"
	}
	return res, retry
}

// leg is one stream carrying a request: the request going out on it while
// its answer is read.
type leg struct {
	st   tunnel.Stream
	r    *proto.Reader
	sent chan error // the sender's result
	// sending is closed when the sender reads the request no more (its
	// End may still be going out).
	sending chan struct{}
	stop    func() bool
}

// startLeg sends req on st and returns the leg whose answer is to be read.
func startLeg(ctx context.Context, st tunnel.Stream, req *Request, hedged bool) *leg {
	l := &leg{st: st, r: proto.NewReader(st), sent: make(chan error, 1), sending: make(chan struct{})}
	l.watch(ctx)
	// The request goes out while the relay's answer is read: a relay that
	// refuses a request (body over its limit) answers before it has read
	// the body and stops reading, so a writer that finished first would
	// wait forever, and one that failed would resend a refused request.
	go func() {
		err := sendRequest(st, req, hedged, l.sending)
		if err != nil {
			// A relay that refused the request (body over its limit) may have
			// closed the stream while its answer is still on the way: give the
			// answer a moment before waking the reader, or a refusal would
			// look like a broken stream and be resent.
			wake := time.Now().Add(sendFailGrace)
			if errors.Is(err, proto.ErrFrameTooLarge) {
				wake = time.Now() // nothing left this edge: no answer is coming
			}
			_ = st.SetReadDeadline(wake)
		}
		l.sent <- err
	}()
	return l
}

// watch cuts the leg when ctx ends: a client that goes away must not
// leave the answer blocked on the tunnel. The deadline wakes any Read or
// Write, and closing the stream tells the relay to cancel the upstream
// call. l.stop undoes it.
func (l *leg) watch(ctx context.Context) {
	st := l.st
	l.stop = context.AfterFunc(ctx, func() {
		_ = st.SetDeadline(time.Now())
		_ = st.Close()
	})
}

// finish waits for the leg's sender, releases the reader and closes the
// stream, and returns the sender's error.
func (l *leg) finish() error {
	var err error
	select {
	case err = <-l.sent:
	default:
		// The relay answered without reading it all, or the reader lost the
		// stream while the request was still going out; or the sender
		// failed and woke the reader (its read deadline) but has not
		// reported yet. Its error is the cause in that last case: dropping
		// it made a header too large for the tunnel look like a broken
		// stream, resent up to maxAttempts times.
		_ = l.st.SetDeadline(time.Now())
		err = <-l.sent
	}
	l.stop()
	l.r.Release()
	_ = l.st.Close()
	return err
}

// doneSending returns once the leg's sender no longer reads the request,
// cutting a send still under way: the leg is abandoned.
func (l *leg) doneSending() {
	select {
	case <-l.sending:
		return
	default:
	}
	_ = l.st.SetWriteDeadline(time.Now())
	<-l.sending
}

// openStream waits up to sessionWait for a session. While a relay that
// announced a drain (a restart) still has a session up, the wait goes on,
// until sessionWait after the drain ended and at most restartWait: the
// replacement session comes up as soon as the relay is back, and a drain
// can outlast sessionWait.
func (f *Forwarder) openStream(ctx context.Context) (tunnel.Stream, error) {
	d, _ := f.open.(interface{ Draining() int })
	restarting := func() bool { return d != nil && d.Draining() > 0 }
	giveUp := time.Now().Add(restartWait)
	sawDrain := restarting()
	for {
		wctx, cancel := context.WithTimeout(ctx, f.sessionWait)
		st, err := f.open.OpenStream(wctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil || time.Now().After(giveUp) {
			return st, err
		}
		// One more full wait after the drain was last seen.
		now := restarting()
		if !now && !sawDrain {
			return st, err
		}
		sawDrain = now
	}
}

// sendFailGrace is how long the reader still waits for the relay's answer
// after the request could not be sent whole.
const sendFailGrace = 2 * time.Second

// restartWait bounds how long a request waits for a session while a relay
// restarts.
const restartWait = 2 * time.Minute

// sendRequest writes the request header, body and End. They go out
// together without waiting for the relay (one round trip to the first
// response byte), in one transport write when the body is small.
//
// It closes read as soon as it reads req no more: after the body, before
// the End. The relay answers a request only once it has read the End, so
// by the time its answer arrives read is closed, and the body can be let
// go of at once (Request.BodyDone). Closed after the End, it raced the
// answer.
func sendRequest(st tunnel.Stream, req *Request, hedged bool, read chan<- struct{}) error {
	w := proto.NewWriter(st)
	w.Hold()
	err := w.WriteRequest(&proto.RequestHeader{
		ID: req.ID, Family: string(req.Family), Provider: req.Provider,
		Method: req.Method, Path: req.Path, RawQuery: req.RawQuery,
		Header: hedgeMark(req.Header, hedged), BodyLen: int64(len(req.Body)), Model: req.Model,
	})
	if err == nil {
		_, err = w.Write(req.Body) // copies it into the frames it writes
	}
	close(read)
	if err != nil {
		return err
	}
	return w.WriteEnd(proto.End{})
}

type exchange struct {
	f      *Forwarder
	w      http.ResponseWriter
	family llmapi.Family
	id     string
	r      *proto.Reader
	st     buffered // the tunnel stream: what the response holds here
	ctx    context.Context
	res    Result
	// req and sending, for an unhedged request: see Request.BodyDone.
	req     *Request
	sending <-chan struct{}
	stream  bool // Request.Stream
	attempt int  // which of Forward's attempts this is
	// detachTo is Request.Detach; legs are the streams the answer comes
	// on, to watch under a detached answer's context; end finishes them
	// once the answer is over and returns the send error.
	detachTo func(status int) (http.ResponseWriter, context.Context, func(Result))
	legs     []*leg
	end      func() error
}

// run reads frames until the response header, then streams the body.
func (x *exchange) run() (Result, *retryable) {
	for {
		typ, p, err := x.r.Next()
		if err != nil {
			return x.lostBeforeResponse(err)
		}
		switch typ {
		case proto.FrameDispatched:
			x.res.Dispatched = true
		case proto.FrameEnd:
			end, err := proto.ParseEnd(p)
			if err != nil {
				return x.lostBeforeResponse(err)
			}
			if end.Code == proto.CodeGoingAway && !x.res.Dispatched {
				// A draining relay refused the stream without sending it
				// upstream: another session or relay takes it.
				return Result{}, &retryable{relayError(end), end}
			}
			e := relayError(end)
			// After Dispatched, or refused as a copy of a request taken
			// before, the provider may have processed it.
			e.NoRetry = x.res.Dispatched || end.Code == proto.CodeDuplicate
			return fail(x.w, x.family, e, end), nil
		case proto.FrameResponse:
			h, err := proto.ParseResponseHeader(p)
			if err != nil {
				return x.lostBeforeResponse(err)
			}
			x.bodyDone()
			return x.streamBody(h), nil
		default:
			return x.lostBeforeResponse(fmt.Errorf("%w: unexpected %s frame", proto.ErrMalformed, typ))
		}
	}
}

// bodyDone lets go of the request's body once the relay answers, if it
// went out whole (Request.BodyDone). A relay that answered before it
// read it all (a refusal) is rare and short: its body is kept until
// Forward returns.
func (x *exchange) bodyDone() {
	if x.req == nil || x.req.BodyDone == nil {
		return
	}
	select {
	case <-x.sending:
	default:
		return
	}
	x.req.Body = nil
	done := x.req.BodyDone
	x.req.BodyDone = nil
	done()
}

// lostBeforeResponse handles a stream that broke before a response header.
// Before Dispatched the provider never saw the request, so it is retryable;
// after it the request may have cost money and must never be replayed.
func (x *exchange) lostBeforeResponse(err error) (Result, *retryable) {
	if x.ctx.Err() != nil {
		return Result{Err: x.ctx.Err(), Dispatched: x.res.Dispatched}, nil
	}
	if !x.res.Dispatched {
		return Result{}, &retryable{&apierr.Error{Kind: apierr.BadGateway,
			Message: "Strait tunnel to the relay broke before the request reached the provider"}, err}
	}
	res := fail(x.w, x.family, &apierr.Error{Kind: apierr.BadGateway,
		Message: "Strait tunnel to the relay broke after the request was sent to the provider; not retried, since the provider may have processed it",
		NoRetry: true}, err)
	res.Dispatched = true
	return res, nil
}

// streamBody writes the provider's status and headers, then copies Data
// frames to the client, flushing after each one when the response is a
// stream (SSE, or no declared length). It returns the exchange's Result;
// for a detached answer (Request.Detach) only the header's, and x is then
// the detached goroutine's.
func (x *exchange) streamBody(h *proto.ResponseHeader) Result {
	dst := x.w.Header()
	for k, vv := range h.Header {
		dst[k] = vv
	}
	stream := isStreaming(h.Header, x.stream)
	if stream {
		dst.Set("X-Accel-Buffering", "no") // tell nginx & co. in front not to buffer
		dst.Del("Content-Length")
	}
	dst.Set("X-Strait-Request-Id", x.id)
	x.res.Status = h.Status
	rc := http.NewResponseController(x.w)
	x.sendHeader(h.Status, stream, rc)
	if stream && x.detachTo != nil {
		if res, ok := x.detach(h.Status); ok {
			return res
		}
	}
	if x.copyBody(rc, stream) {
		panic(http.ErrAbortHandler)
	}
	return x.res
}

// detach hands the rest of the answer to a goroutine of its own when
// Request.Detach takes the client connection, and returns the Result
// Forward returns then.
func (x *exchange) detach(status int) (Result, bool) {
	w, ctx, done := x.detachTo(status)
	if w == nil {
		return Result{}, false
	}
	// The handler's context ends when it returns: the legs now end with
	// the detached answer's. A client gone in between already cut them,
	// and the body's next read fails.
	for _, l := range x.legs {
		l.stop()
		l.watch(ctx)
	}
	x.w, x.ctx, x.req, x.detachTo = w, ctx, nil, nil
	res := x.res
	res.Detached = true
	go x.streamDetached(done)
	return res, true
}

// streamDetached streams the rest of a detached answer, ends its legs and
// hands the final Result to done, once.
func (x *exchange) streamDetached(done func(Result)) {
	x.res.Aborted = x.pumpDetached()
	x.res.Attempts = x.attempt
	done(x.res)
}

// pumpDetached copies the rest of the body and ends the legs, and reports
// whether the answer must be aborted. A panic on the way, which net/http
// would have recovered for the handler, is logged and aborts the answer:
// the legs are cut and then ended as after any answer (a hedged answer's
// merge stops, and neither copy's sender reads the request body any more,
// which the edge reuses once done has run), and done still runs, so the
// call is accounted and its connection closed.
func (x *exchange) pumpDetached() (abort bool) {
	defer func() {
		if p := recover(); p != nil {
			x.f.logDetachedPanic(x.id, p)
			for _, l := range x.legs {
				l.stop()
				_ = l.st.Close()
			}
			x.endAfterPanic()
			abort = true
		}
	}()
	abort = x.copyBody(http.NewResponseController(x.w), true)
	_ = x.end() // the relay answered: the send error is no longer the client's
	return abort
}

// endAfterPanic ends the exchange's legs after a panic in pumpDetached;
// a second panic there is logged too, not raised.
func (x *exchange) endAfterPanic() {
	defer func() {
		if p := recover(); p != nil {
			x.f.logDetachedPanic(x.id, p)
		}
	}()
	_ = x.end()
}

// copyBody copies the answer's Data frames to the client, and reports
// whether the answer broke off so that the client connection must be
// aborted (see brokeMidStream).
func (x *exchange) copyBody(rc *http.ResponseController, stream bool) (abort bool) {
	// Each Data frame goes to the client straight from the tunnel reader's
	// buffer: no copy, and no copy buffer held per open stream.
	body := x.r.Body()
	for {
		p, err := body.Chunk()
		if err == io.EOF {
			return false
		}
		if err != nil {
			return x.brokeMidStream(err, stream, rc)
		}
		if stream && body.EndsNext() {
			if e := endingWriter(x.w); e != nil {
				e.Ending()
			}
		}
		if werr := x.toClient(rc, p, stream); werr != nil {
			x.res.Err = werr
			return false
		}
		x.res.Bytes += int64(len(p))
	}
}

// ender is a client writer that can send the answer's last writes with its
// end, in one write (detach.Stream).
type ender interface{ Ending() }

// endingWriter is the ender under w's wrappers (Unwrap, as
// http.ResponseController finds its writer), nil if there is none: the
// answer goes through net/http, which writes its last chunk itself.
func endingWriter(w http.ResponseWriter) ender {
	for {
		if e, ok := w.(ender); ok {
			return e
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}

// sendHeader sets the response's status; for a stream it also sends the
// header at once (SDKs start their stream parsers on it), on a goroutine
// of its own that ends with it.
//
// Why: memory per open stream. net/http's header writer alone takes about
// 3 KiB of stack; called this deep it needs more than the 8 KiB a serving
// goroutine starts with, and the stack it grows to (16 KiB) stays with the
// serving goroutine for the stream's whole life, since the goroutine parks
// more than a quarter of it deep. A panic on the way is the handler's.
func (x *exchange) sendHeader(status int, stream bool, rc *http.ResponseController) {
	if !stream { // the header goes with the body, and the handler is short-lived
		x.w.WriteHeader(status)
		return
	}
	done := make(chan any)
	go func() {
		defer func() { done <- recover() }()
		x.w.WriteHeader(status)
		_ = rc.Flush()
	}()
	if p := <-done; p != nil {
		panic(p)
	}
}

// toClient writes p to the client (and flushes it, for a stream) under
// ClientWriteTimeout and the client buffer budget. The tunnel stream is
// read only as fast as this returns, so a client that does not read holds
// at most its stream's window at the edge, and stops the relay's upstream
// read; the budget bounds how many such clients there may be at once.
func (x *exchange) toClient(rc *http.ResponseController, p []byte, stream bool) error {
	f := x.f
	if f.ClientWriteTimeout > 0 {
		_ = rc.SetWriteDeadline(time.Now().Add(f.ClientWriteTimeout))
	}
	f.blocked.Add(1)
	defer f.blocked.Add(-1)
	cut, err := x.chargedWrite(rc, p, stream)
	if cut {
		if err == nil {
			// The write finished as the budget cut it; the deadline it
			// set would fail the next one: end the response here.
			err = errors.New("writing to client: cut by the client buffer budget")
		}
		f.log.Info("client blocked the longest while responses blocked on their clients were over the client buffer budget; cutting its response",
			zap.String("request_id", x.id), zap.Int64("client_buffer_budget", f.budget.max))
		return err
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		f.cut.Add(1)
		f.log.Info("client took no response bytes for too long; cutting its response",
			zap.String("request_id", x.id), zap.Duration("client_write_timeout", f.ClientWriteTimeout))
	}
	return err
}

// chargedWrite is write under the client buffer budget, and reports
// whether the budget cut it. The write leaves the budget however it ends:
// one that panics (a detached answer recovers and goes on) would be
// charged, and its response kept, for the edge's life.
func (x *exchange) chargedWrite(rc *http.ResponseController, p []byte, stream bool) (cut bool, err error) {
	el, cw := x.f.budget.enter(rc, x.st, len(p))
	defer func() { cut = x.f.budget.leave(el, cw) }()
	return false, x.write(rc, p, stream)
}

// write writes p to the client, and flushes it for a stream.
func (x *exchange) write(rc *http.ResponseController, p []byte, stream bool) error {
	_, err := x.w.Write(p)
	if err == nil && stream {
		if err = rc.Flush(); err != nil {
			err = fmt.Errorf("flushing to client: %w", err)
		}
	} else if err != nil {
		err = fmt.Errorf("writing to client: %w", err)
	}
	return err
}

// brokeMidStream ends a response whose status line already went out: an
// in-band error event for SSE (the SDKs raise it as an error); it reports
// that the connection must be aborted, so no client can take the cut body
// for a complete one. Not when the client is gone.
func (x *exchange) brokeMidStream(err error, stream bool, rc *http.ResponseController) (abort bool) {
	x.res.Err = fmt.Errorf("response broke off: %w", err)
	if x.ctx.Err() != nil {
		return false
	}
	if stream && isSSE(x.w.Header()) {
		msg := "Strait: the response stream broke off before it was complete"
		var end *proto.End
		if errors.As(err, &end) && end.Message != "" {
			msg += " (" + end.Message + ")"
		}
		_, _ = x.w.Write(apierr.StreamEvent(x.family, &apierr.Error{Kind: apierr.BadGateway, Message: msg}))
		_ = rc.Flush()
	}
	return true
}

// relayError maps an End the relay sent instead of a response.
func relayError(e *proto.End) *apierr.Error {
	kind := apierr.BadGateway
	var retry time.Duration
	switch e.Code {
	case proto.CodeNoRoute:
		kind = apierr.NotFound
	case proto.CodeBadRequest:
		kind = apierr.InvalidRequest
	case proto.CodeTooLarge:
		kind = apierr.TooLarge
	case proto.CodeUpstreamTimeout:
		kind = apierr.GatewayTimeout
	case proto.CodeGoingAway:
		kind, retry = apierr.Unavailable, time.Second
	}
	return &apierr.Error{Kind: kind, RetryAfter: retry, Message: "Strait relay: " + e.Message}
}

func fail(w http.ResponseWriter, family llmapi.Family, e *apierr.Error, cause error) Result {
	apierr.Write(w, family, e)
	return Result{Status: e.Kind.Status(), Err: cause}
}

// isStreaming reports an answer to flush as it comes: an event stream, or
// one of unknown length to a request for a stream (Gemini's
// streamGenerateContent without alt=sse is a JSON array, written as it
// grows).
func isStreaming(h http.Header, asked bool) bool {
	return isSSE(h) || asked && h.Get("Content-Length") == ""
}

func isSSE(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "text/event-stream"
}
