package edge

import (
	"context"
	"errors"

	"github.com/strait/strait/edge/forward"
	"github.com/strait/strait/tunnel"
)

// via records which relay and session carried a request's (last) stream,
// for its log line and audit record.
type via struct{ relay, session string }

type viaKey struct{}

// viaOpener hands out the pool's streams and notes, in the request's
// context, where each went; the forwarder stays unaware of it.
type viaOpener struct{ forward.Opener }

func (o viaOpener) OpenStream(ctx context.Context) (tunnel.Stream, error) {
	st, err := o.Opener.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	if v, ok := ctx.Value(viaKey{}).(*via); ok {
		if s, ok := st.(interface{ Via() (string, string) }); ok {
			v.relay, v.session = s.Via()
		}
	}
	return st, nil
}

// Draining passes on the pool's count of draining sessions (see
// forward.Forwarder).
func (o viaOpener) Draining() int {
	if d, ok := o.Opener.(interface{ Draining() int }); ok {
		return d.Draining()
	}
	return 0
}

// OpenHedge passes on the pool's second stream for a hedged request (see
// forward.Hedger). The request log names the first stream's session.
func (o viaOpener) OpenHedge(ctx context.Context, first tunnel.Stream) (tunnel.Stream, error) {
	if h, ok := o.Opener.(forward.Hedger); ok {
		return h.OpenHedge(ctx, first)
	}
	return nil, errNoHedge
}

// HedgeUseful passes on the pool's judgement (see forward.Hedger).
func (o viaOpener) HedgeUseful(first tunnel.Stream) bool {
	h, ok := o.Opener.(forward.Hedger)
	return ok && h.HedgeUseful(first)
}

var errNoHedge = errors.New("tunnel opener cannot hedge")

// withVia returns ctx carrying v for viaOpener.
func withVia(ctx context.Context, v *via) context.Context { return context.WithValue(ctx, viaKey{}, v) }
