// Package dispatch serves one tunnel stream on the relay: it reads the
// request the edge framed, sends it to the routed provider, and streams the
// answer back frame by frame without buffering.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/convstore"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/tunnel"
)

// Config configures a Dispatcher.
type Config struct {
	Registry *upstream.Registry // required; replace later with SetRegistry
	Client   *http.Client       // required; shared by every stream
	// Retry bounds the attempts made before the first byte.
	Retry RetryPolicy
	// MaxBodyBytes caps a request body; zero means 64 MiB.
	MaxBodyBytes int64
	// HeaderTimeout bounds the wait for the request header after a stream
	// opens; zero means 30s.
	HeaderTimeout time.Duration
	// Metrics, when set, counts attempts, retries and stream endings.
	Metrics *Metrics
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
	// Observe, when set, is called once per finished exchange (metrics).
	Observe func(Stats)
	// Conversations, when set, keeps the conversations of Responses clients
	// converted for another API, for previous_response_id and GET/DELETE
	// /v1/responses/{id}; nil refuses previous_response_id on them.
	Conversations convstore.Backend
	// MaxChoices is the most choices (n) a Chat Completions request may ask
	// of a provider that makes one per call (Anthropic, Gemini, the
	// Responses API): the relay makes that many calls at once and merges
	// them. Zero means DefaultMaxChoices; 1 refuses n > 1 there.
	MaxChoices int
}

// Stats describes one finished exchange.
type Stats struct {
	Family, Provider string
	// Status is the provider's HTTP status; zero when there was no answer.
	Status int
	// End says how the exchange ended.
	End proto.Code
	// Timing is the relay's own time and the provider's time to first byte
	// (of the attempt whose answer was delivered).
	Timing proto.RelayTiming
	// Duration is the whole exchange, stream accept to End.
	Duration time.Duration
	// BytesUp and BytesDown count body bytes to and from the provider.
	BytesUp, BytesDown int64
}

// Dispatcher serves streams. It is safe for concurrent use.
type Dispatcher struct {
	cfg Config
	reg atomic.Pointer[upstream.Registry]
	log *zap.Logger
}

// New returns a Dispatcher.
func New(cfg Config) *Dispatcher {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.MaxChoices <= 0 {
		cfg.MaxChoices = DefaultMaxChoices
	}
	cfg.Retry = cfg.Retry.withDefaults()
	d := &Dispatcher{cfg: cfg, log: cfg.Logger.Named("dispatch")}
	d.reg.Store(cfg.Registry)
	return d
}

// SetRegistry swaps in a new registry (a config reload); streams already
// running keep the one they started with.
func (d *Dispatcher) SetRegistry(r *upstream.Registry) { d.reg.Store(r) }

// Registry returns the registry new streams use.
func (d *Dispatcher) Registry() *upstream.Registry { return d.reg.Load() }

// exchange is the state of one stream.
type exchange struct {
	st    tunnel.Stream
	r     *proto.Reader
	w     *proto.Writer
	log   *zap.Logger
	m     *Metrics
	start time.Time
	read  time.Duration // from accept to the whole request read
	stats Stats
	// sub marks one call of a fan-out: its stream goes to the fan-out,
	// which ends the exchange (and counts its end) for all of them.
	sub bool
	// handoff takes the answer's pump to a goroutine of its own (nil for a
	// fan-out's call: it pumps in place).
	handoff *Handoff
}

// goPump runs pump, the rest of the exchange, through the handoff.
func (x *exchange) goPump(pump func()) {
	if x.handoff == nil {
		pump()
		return
	}
	x.handoff.Go(pump)
}

// Serve handles one stream until the exchange is over, then closes it. ctx
// ending (relay shutdown) cancels the upstream call.
func (d *Dispatcher) Serve(ctx context.Context, st tunnel.Stream) {
	h := Inline()
	d.Start(ctx, st, h)
	h.Done()
}

// Start is Serve for a goroutine that gives its stack back while the answer
// streams: once the answer's header is on its way, the rest of the
// exchange moves to a goroutine of its own through handoff, and Start
// returns. What ends the exchange is registered with handoff, to run when
// the answer is over.
func (d *Dispatcher) Start(ctx context.Context, st tunnel.Stream, handoff *Handoff) {
	x := &exchange{st: st, r: proto.NewReader(st), w: proto.NewWriter(st), log: d.log, m: d.cfg.Metrics, start: time.Now(),
		stats: Stats{End: proto.CodeCanceled}, handoff: handoff} // finish overwrites End; a return without finish means the edge left
	handoff.Defer(func() {
		st.Close()
		x.r.Release()
		if d.cfg.Observe != nil {
			x.stats.Duration = time.Since(x.start)
			d.cfg.Observe(x.stats)
		}
	})
	h, body, end := d.readRequest(x)
	x.read = time.Since(x.start)
	// The edge sends nothing after the request (watchPeer reads the stream
	// itself): the read buffer goes back to the pool now, not when the
	// answer, which may stream for minutes, is over; so does the
	// transport's receive buffer, which grew to hold the body (yamux keeps
	// it for the stream's life otherwise).
	x.r.Release()
	tunnel.Shrink(st)
	if end != nil {
		x.finish(*end)
		return
	}
	x.log = d.log.WithLazy(zap.String("request_id", h.ID), zap.String("family", h.Family),
		zap.String("method", h.Method), zap.String("path", h.Path))
	x.stats.Family, x.stats.BytesUp = h.Family, int64(len(body))
	if err := upstream.CheckPath(h.Path); err != nil {
		x.finish(proto.End{Code: proto.CodeBadRequest, Message: err.Error()})
		return
	}
	reg := d.reg.Load()
	if id, ok := storedResponseID(h); ok && d.cfg.Conversations != nil &&
		x.serveStored(d.cfg.Conversations, h, id, reg.ServesEndpoint(llmapi.EndpointStored)) {
		return
	}
	if class := llmapi.EndpointClass(h.Family, h.Method, h.Path); !reg.ServesEndpoint(class) {
		x.refuseEndpoint(h, class)
		return
	}
	in := upstream.ParseInbound(h, body)
	model, bad := routedModel(h, in)
	if bad != nil {
		x.finish(*bad)
		return
	}
	rt, err := reg.Resolve(h.Family, h.Provider, model)
	var served []upstream.Target
	if isListing(h) {
		if served = reg.Served(h.Family); len(served) > 0 && (err != nil || reg.Strict()) {
			x.serveListing(h.Family, served)
			return
		}
	}
	if err != nil {
		x.finish(proto.End{Code: proto.CodeNoRoute, Message: err.Error()})
		return
	}
	client, conv := in, (*conversion)(nil)
	var calls []fanCall
	if t := rt.Targets[0]; needsConversion(h, t) {
		var end *proto.End
		if n := fanOutChoices(h, in); n > 1 {
			calls, end = d.prepareFanOut(in, rt, n)
		} else {
			in, conv, end = crossFamily(in, t, d.cfg.Conversations)
		}
		if end != nil {
			x.finish(*end)
			return
		}
	}
	x.log = x.log.WithLazy(zap.String("model", in.Model), zap.String("route", rt.Rule))
	ctx, cancel := context.WithCancel(ctx)
	handoff.Defer(cancel)
	handoff.Defer(x.watchPeer(cancel))
	// Tell the edge before the first upstream byte: from now on the request
	// may have reached the provider, so the edge must never replay it.
	if err := x.w.WriteDispatched(); err != nil {
		return
	}
	handoff.dispatched = true
	if calls != nil {
		d.fanOut(ctx, x, client, rt, calls)
		return
	}
	c := &caller{d: d, x: x, client: client, in: in, route: rt, conv: conv, listing: served}
	c.run(ctx)
}

// readAllSized is io.ReadAll into a buffer sized for the declared length
// (the edge declares it): the body is kept until an answer is on its way
// (a fallback provider is sent it again; see caller.releaseBody), so it
// should not keep the spare capacity of append's growth, up to twice its
// size. A wrong or missing
// declaration only costs growth.
func readAllSized(r io.Reader, declared int64) ([]byte, error) {
	b := make([]byte, 0, max(declared, 0)+1) // +1: the read that meets EOF needs room
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// maxPrealloc caps what readAllSized takes on the edge's word alone.
const maxPrealloc = 8 << 20

// readRequest reads the header and the whole body. The body is buffered so
// the upstream request has a Content-Length and can be re-sent by the
// transport on a dead keep-alive connection.
func (d *Dispatcher) readRequest(x *exchange) (*proto.RequestHeader, []byte, *proto.End) {
	_ = x.st.SetReadDeadline(time.Now().Add(d.cfg.HeaderTimeout))
	typ, p, err := x.r.Next()
	if err != nil {
		return nil, nil, &proto.End{Code: proto.CodeBadRequest, Message: "reading request: " + err.Error()}
	}
	if typ != proto.FrameRequest {
		return nil, nil, &proto.End{Code: proto.CodeBadRequest, Message: "stream must start with a request frame, got " + typ.String()}
	}
	h, err := proto.ParseRequestHeader(p)
	if err != nil {
		return nil, nil, &proto.End{Code: proto.CodeBadRequest, Message: err.Error()}
	}
	_ = x.st.SetReadDeadline(time.Time{})
	if h.BodyLen > d.cfg.MaxBodyBytes {
		return nil, nil, tooLarge(d.cfg.MaxBodyBytes)
	}
	body, err := readAllSized(io.LimitReader(x.r.Body(), d.cfg.MaxBodyBytes+1), min(h.BodyLen, d.cfg.MaxBodyBytes, maxPrealloc))
	if err != nil {
		return nil, nil, &proto.End{Code: proto.CodeBadRequest, Message: "reading request body: " + err.Error()}
	}
	if int64(len(body)) > d.cfg.MaxBodyBytes {
		return nil, nil, tooLarge(d.cfg.MaxBodyBytes)
	}
	return h, body, nil
}

func tooLarge(limit int64) *proto.End {
	return &proto.End{Code: proto.CodeTooLarge, Message: fmt.Sprintf("request body over the relay's limit of %d bytes", limit)}
}

// watchPeer cancels the upstream call as soon as the edge closes its side or
// the session dies (the stream's Context: after the request body the edge
// sends nothing more, so its end means it is gone). No goroutine waits for
// it: the callback runs only if it happens. The returned func stops the
// watch.
func (x *exchange) watchPeer(cancel context.CancelFunc) (stop func()) {
	unwatch := context.AfterFunc(x.st.Context(), func() {
		cancel()
		// The edge closed the stream and will not read it again: a write
		// blocked on its window would hold the stream (and the edge's
		// buffered data) until the session ends.
		_ = x.st.SetWriteDeadline(time.Now())
	})
	return func() { unwatch() }
}

// finish sends the End frame; a failure means the edge is gone already.
func (x *exchange) finish(e proto.End) {
	x.stats.End = e.Code
	if e.Code != proto.CodeOK && e.Code != proto.CodeCanceled {
		x.log.Info("exchange ended with error", zap.Stringer("code", e.Code), zap.String("detail", e.Message))
	}
	_ = x.w.WriteEnd(e)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, errIdle) || errors.As(err, &ne) && ne.Timeout()
}
