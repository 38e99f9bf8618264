package forward

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
)

// Hedger is an Opener that can open a second stream for a request on
// another session to the same relay (the pool's OpenHedge). The relay
// takes only the first copy of a request ID to arrive upstream, so a
// hedge never reaches the provider twice, provided both copies go to one
// relay. The other copy gets the same answer, byte for byte (a relay that
// predates that refuses it with proto.CodeDuplicate); the edge reads both
// as one (mergedAnswer).
type Hedger interface {
	OpenHedge(ctx context.Context, first tunnel.Stream) (tunnel.Stream, error)
	// HedgeUseful reports whether hedging the request on first pays
	// (HedgeAuto).
	HedgeUseful(first tunnel.Stream) bool
}

// HedgeMode says which requests are hedged.
type HedgeMode uint8

const (
	// HedgeAuto hedges where the Hedger says it pays: over WebSocket on a
	// long path under BBR (pool.Pool.HedgeUseful). The zero value.
	HedgeAuto HedgeMode = iota
	HedgeOff
	HedgeOn // every request with a small body
)

// ParseHedgeMode reads a mode as configured: auto (or empty), on or true,
// off or false.
func ParseHedgeMode(s string) (HedgeMode, error) {
	switch s {
	case "", "auto":
		return HedgeAuto, nil
	case "on", "true":
		return HedgeOn, nil
	case "off", "false":
		return HedgeOff, nil
	}
	return HedgeAuto, fmt.Errorf("hedge: %q is not auto, on or off", s)
}

// DefaultHedgeMaxBody is the largest request body hedged when
// Forwarder.HedgeMaxBody is not set: a chat request without long context.
const DefaultHedgeMaxBody = 16 << 10

// SetHedge sets which requests are hedged; maxBody bounds the request
// bodies hedged (0 means DefaultHedgeMaxBody). Over a WebSocket tunnel a
// request can wait a round trip behind a lost TCP segment of another
// stream on its session; a second copy on another session, whose losses
// are independent, takes that wait off the request's way to the relay,
// and (the relay mirrors the answer to the second copy) off the answer's
// way back. It costs one more stream, and the request's and the answer's
// bytes again. Call it before the first Forward.
func (f *Forwarder) SetHedge(mode HedgeMode, maxBody int) {
	if maxBody <= 0 {
		maxBody = DefaultHedgeMaxBody
	}
	f.hedge, f.hedgeMaxBody = mode, maxBody
}

// openHedge opens the second stream for req, whose first is st, or
// returns nil when the request is not hedged.
func (f *Forwarder) openHedge(ctx context.Context, st tunnel.Stream, req *Request) tunnel.Stream {
	h, ok := f.open.(Hedger)
	if f.hedge == HedgeOff || !ok || len(req.Body) > f.hedgeMaxBody || headerBound(req) > proto.HedgeMaxHeader ||
		(f.hedge == HedgeAuto && !h.HedgeUseful(st)) {
		return nil
	}
	hst, err := h.OpenHedge(ctx, st)
	if err != nil {
		return nil // one session only, or it failed: the request goes on st alone
	}
	return hst
}

// headerBound is at least the size of req's encoded request header: its
// strings, each with room for its length prefix.
func headerBound(req *Request) int {
	const prefix = binary.MaxVarintLen32
	n := 64 + len(req.ID) + len(req.Family) + len(req.Provider) + len(req.Method) + len(req.Path) + len(req.RawQuery) +
		len(req.Model) + 8*prefix
	for k, vs := range req.Header {
		n += len(k) + 2*prefix
		for _, v := range vs {
			n += len(v) + prefix
		}
	}
	return n
}

// frame is a frame read from a leg, or the error that ended it.
type frame struct {
	typ proto.FrameType
	p   []byte // valid until the leg's reader is used again
	err error
}

// refused reports whether this first frame is the relay refusing the
// request with one of codes.
func (fr *frame) refused(codes ...proto.Code) bool {
	if fr.err != nil || fr.typ != proto.FrameEnd {
		return false
	}
	end, err := proto.ParseEnd(fr.p)
	return err == nil && slices.Contains(codes, end.Code)
}

// lost reports whether the relay did not take the request through the
// leg this first frame came from: it refused it as a duplicate (the other
// copy got there first) or as draining, or the leg broke before any frame.
func (fr *frame) lost() bool {
	return fr.err != nil || fr.refused(proto.CodeDuplicate, proto.CodeGoingAway)
}

// duplicate reports whether this first frame is the relay's refusal of a
// second copy: the other copy reached it, and maybe the provider.
func (fr *frame) duplicate() bool { return fr.refused(proto.CodeDuplicate) }

// runHedged runs the exchange on both legs of a hedged request, read as
// one merged answer (mergedAnswer), and finishes both. The send error is
// that of the leg whose answer came first.
func (x *exchange) runHedged(a, b *leg) (Result, *retryable, error) {
	// The legs' own readers are not used: their buffers go back now.
	a.r.Release()
	b.r.Release()
	m := newMergedAnswer(a, b)
	r := proto.NewReader(m)
	x.r, x.st, x.legs = r, m, []*leg{a, b}
	x.res.Hedged = true // also in a detached answer's final Result
	x.end = func() error {
		m.close()
		r.Release()
		first, second := m.sendLeg(), b
		if first == b {
			second = a
		}
		sendErr := first.finish()
		// Forward's caller may reuse req.Body once it returns (the edge
		// pools the border guard's rewritten bodies), and a detached
		// answer's end lets go of it: the other copy must be done
		// reading it too.
		second.doneSending()
		_ = second.finish()
		return sendErr
	}
	// A panic on the way (net/http's abort of a broken answer, or a bug
	// below the handler) skips x.end: the merge must still end, or its
	// leading reader, waiting for a client that is gone, waits for good.
	// The legs end with the request's context, which net/http cancels.
	defer func() {
		if p := recover(); p != nil {
			m.close()
			panic(p)
		}
	}()
	res, retry := x.run()
	res.Hedged = true
	if res.Detached {
		return res, nil, nil
	}
	return res, retry, x.end()
}

// hedgeMark returns h with the hedge mark set when hedged, and never with
// one a client sent.
func hedgeMark(h http.Header, hedged bool) http.Header {
	if _, sent := h[proto.HedgeHeader]; !hedged && !sent {
		return h
	}
	h = h.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Del(proto.HedgeHeader)
	if hedged {
		h.Set(proto.HedgeHeader, "1")
	}
	return h
}
