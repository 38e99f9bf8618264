package forward

import (
	"context"
	"slices"
	"time"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
)

// Hedger is an Opener that can open a second stream for a request on
// another session to the same relay (the pool's OpenHedge). The relay
// takes only the first copy of a request ID to arrive upstream and refuses
// the other with proto.CodeDuplicate, so a hedge never reaches the
// provider twice, provided both copies go to one relay.
type Hedger interface {
	OpenHedge(ctx context.Context, first tunnel.Stream) (tunnel.Stream, error)
}

// DefaultHedgeMaxBody is the largest request body hedged when
// Forwarder.HedgeMaxBody is not set: a chat request without long context.
const DefaultHedgeMaxBody = 16 << 10

// SetHedge turns the request hedge on or off; maxBody bounds the request
// bodies hedged (0 means DefaultHedgeMaxBody). Over a WebSocket tunnel a
// request can wait a round trip behind a lost TCP segment of another
// stream on its session; a second copy on another session, whose losses
// are independent, takes that wait off the request's way to the relay.
// It costs one more stream and the request's bytes again. Call it before
// the first Forward.
func (f *Forwarder) SetHedge(on bool, maxBody int) {
	if maxBody <= 0 {
		maxBody = DefaultHedgeMaxBody
	}
	f.hedge, f.hedgeMaxBody = on, maxBody
}

// openHedge opens the second stream for req, whose first is st, or
// returns nil when the request is not hedged.
func (f *Forwarder) openHedge(ctx context.Context, st tunnel.Stream, req *Request) tunnel.Stream {
	h, ok := f.open.(Hedger)
	if !f.hedge || !ok || len(req.Body) > f.hedgeMaxBody {
		return nil
	}
	hst, err := h.OpenHedge(ctx, st)
	if err != nil {
		return nil // one session only, or it failed: the request goes on st alone
	}
	return hst
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

// race reads the first frame of both legs and returns the leg the relay
// took the request through, with that frame, to go on with, and the other
// leg, which is closed in the background. The relay answers only its first copy with
// anything but a refusal, so the first leg whose first frame is not one
// wins. When both lose, the returned leg is the one whose frame tells the
// most: a duplicate refusal (the request reached the relay through the
// other leg, which broke: it must not be resent), else the last one.
func race(a, b *leg) (won *leg, first *frame, lost *leg) {
	legs := [2]*leg{a, b}
	var firsts [2]chan *frame
	for i, l := range legs {
		firsts[i] = make(chan *frame, 1)
		go func() {
			typ, p, err := l.r.Next()
			firsts[i] <- &frame{typ, p, err}
		}()
	}
	var got [2]*frame
	for range 2 {
		var fr *frame
		i := 0
		select {
		case fr = <-firsts[0]:
		case fr = <-firsts[1]:
			i = 1
		}
		got[i], firsts[i] = fr, nil // a nil channel: not selected again
		if fr.lost() {
			continue
		}
		loser, rest := legs[1-i], firsts[1-i]
		if rest != nil {
			// Its first frame is still on the way: wake its reader (the
			// stream's close then tells the relay), and let it go.
			_ = loser.st.SetDeadline(time.Now())
		}
		go func() {
			if rest != nil {
				<-rest
			}
			_ = loser.finish()
		}()
		return legs[i], fr, loser
	}
	keep := 1
	if got[0].duplicate() {
		keep = 0
	}
	go func() { _ = legs[1-keep].finish() }()
	return legs[keep], got[keep], legs[1-keep]
}
