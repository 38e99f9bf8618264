package forward

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/tunnel"
)

// hedgingRelay is a scriptedRelay whose hedge streams are its next
// scripted streams, as if on another session.
type hedgingRelay struct{ *scriptedRelay }

func (h hedgingRelay) OpenHedge(ctx context.Context, _ tunnel.Stream) (tunnel.Stream, error) {
	return h.OpenStream(ctx)
}

func (hedgingRelay) HedgeUseful(tunnel.Stream) bool { return true }

// TestHedge: a hedged request goes out on two streams and the client gets
// the one answer the relay gave (it refuses the other copy as a duplicate,
// or that copy's stream stalled or broke), from the provider once; a copy
// whose stream stalls is closed, not left open; a request that broke on
// both before dispatch is resent, hedged again, and one that reached the
// relay (a duplicate refusal) is not; a large body is not hedged.
func TestHedge(t *testing.T) {
	for _, tc := range []struct {
		name         string
		steps        []relayStep // in the order the streams are opened: first, hedge, first of the resend, ...
		body         int
		header       int // bytes of one more request header
		status       int
		attempts     int
		dispatched   int32
		wantInBody   string
		wantOpenings int32
		wantStalled  int32
	}{
		{"first copy answered", []relayStep{answer, refuseDuplicate}, 10, 0, 200, 1, 1, "{}", 2, 0},
		{"hedge answered", []relayStep{refuseDuplicate, answer}, 10, 0, 200, 1, 1, "{}", 2, 0},
		{"first stalled, hedge answered", []relayStep{stall, answer}, 10, 0, 200, 1, 1, "{}", 2, 1},
		{"hedge stalled, first answered", []relayStep{answer, stall}, 10, 0, 200, 1, 1, "{}", 2, 1},
		{"first broke, hedge answered", []relayStep{breakBeforeDispatch, answer}, 10, 0, 200, 1, 1, "{}", 2, 0},
		{"draining relay refused one", []relayStep{refuseGoingAway, answer}, 10, 0, 200, 1, 1, "{}", 2, 0},
		// The first copy reached the provider and its stream broke: the
		// relay's duplicate refusal says so, and nothing is resent.
		{"dispatched copy broke", []relayStep{breakAfterDispatch, refuseDuplicate, answer}, 10, 0, 502, 1, 1, "not retried", 2, 0},
		{"one broke, one refused as duplicate", []relayStep{breakBeforeDispatch, refuseDuplicate, answer}, 10, 0, 502, 1, 0, "not retried", 2, 0},
		{"both broke before dispatch: resent, hedged", []relayStep{breakBeforeDispatch, refuseGoingAway, answer, stall}, 10, 0, 200, 2, 1, "{}", 4, 1},
		{"large body not hedged", []relayStep{answer, answer}, DefaultHedgeMaxBody + 1, 0, 200, 1, 1, "{}", 1, 0},
		// The relay would not see a larger header's ID in time to refuse
		// or mirror the second copy: it would reach the provider too.
		{"large header not hedged", []relayStep{answer, answer}, 10, proto.HedgeMaxHeader, 200, 1, 1, "{}", 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := &scriptedRelay{steps: tc.steps}
			defer func() {
				relay.wg.Wait() // every scripted stream ended: the edge closed them all
				if n := relay.stalledClosed.Load(); n != tc.wantStalled {
					t.Errorf("%d stalled streams closed by the edge; want %d", n, tc.wantStalled)
				}
			}()
			f := New(hedgingRelay{relay}, time.Second, zap.NewNop())
			f.SetHedge(HedgeOn, 0)
			r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
			w := httptest.NewRecorder()
			var h http.Header
			if tc.header > 0 {
				h = http.Header{"X-Big": {strings.Repeat("h", tc.header)}}
			}
			res := f.Forward(w, r, &Request{ID: "req_1", Family: llmapi.OpenAI, Method: "POST",
				Path: "/v1/chat/completions", Header: h, Body: []byte(strings.Repeat("x", tc.body))})
			relay.check(t, w, res, outcome{tc.status, tc.attempts, tc.dispatched, tc.wantInBody, tc.wantOpenings})
			if res.Hedged != (tc.wantOpenings > 1) {
				t.Errorf("Hedged = %v", res.Hedged)
			}
		})
	}
}

// stuckWrites is a stream whose writes wait until a deadline is set, as a
// hedge copy stuck behind a lost segment does; its reads are the pipe's.
// Its Write shares no lock with the caller of SetDeadline, so that only
// the forwarder's own waits order it before Forward's return.
type stuckWrites struct {
	tunnel.Stream
	once sync.Once
	dead chan struct{}
}

func (s *stuckWrites) Write([]byte) (int, error) {
	<-s.dead
	return 0, os.ErrDeadlineExceeded
}

func (s *stuckWrites) SetDeadline(t time.Time) error {
	s.once.Do(func() { close(s.dead) })
	return s.Stream.SetDeadline(t)
}

// stuckHedge is a scriptedRelay whose hedge copies are stuck writing.
type stuckHedge struct{ *scriptedRelay }

func (stuckHedge) HedgeUseful(tunnel.Stream) bool { return true }

func (h stuckHedge) OpenHedge(ctx context.Context, _ tunnel.Stream) (tunnel.Stream, error) {
	st, err := h.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	return &stuckWrites{Stream: st, dead: make(chan struct{})}, nil
}

// TestForwardDoneWithBody: when Forward returns, nothing of it reads the
// request body any more, not even the losing copy of a hedged request
// (the edge then reuses the border guard's buffer for another request).
// The race detector reports a copy still being sent.
func TestForwardDoneWithBody(t *testing.T) {
	relay := &scriptedRelay{steps: []relayStep{answer, stall}}
	defer relay.wg.Wait()
	f := New(stuckHedge{relay}, time.Second, zap.NewNop())
	f.SetHedge(HedgeOn, 0)
	body := []byte(`{"model":"m"}`)
	w := httptest.NewRecorder()
	res := f.Forward(w, httptest.NewRequest("POST", "/v1/chat/completions", nil), &Request{ID: "req_1", Family: llmapi.OpenAI,
		Method: "POST", Path: "/v1/chat/completions", Body: body})
	for i := range body { // what the edge's next request does to a reused buffer
		body[i] = 0
	}
	relay.check(t, w, res, outcome{200, 1, 1, "{}", 2})
	if !res.Hedged {
		t.Error("not hedged")
	}
}

// panickingHeader is a client whose WriteHeader panics, as a bug below the
// handler would.
type panickingHeader struct{ *httptest.ResponseRecorder }

func (panickingHeader) WriteHeader(int) { panic("client write panicked") }

// TestHedgedPanicEndsTheMerge: a panic while a hedged answer is forwarded,
// with the merge's queue full (the leading leg's reader waits for the
// client), still ends the merge's readers once the request's context ends,
// as net/http ends it after the handler's panic.
func TestHedgedPanicEndsTheMerge(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	relay := &scriptedRelay{steps: []relayStep{answerFlood, refuseDuplicate}}
	f := New(hedgingRelay{relay}, time.Second, zap.NewNop())
	f.SetHedge(HedgeOn, 0)
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil).WithContext(ctx)
	func() {
		defer func() {
			if p := recover(); p == nil {
				t.Error("Forward returned; want the client's panic")
			}
		}()
		f.Forward(panickingHeader{httptest.NewRecorder()}, r, &Request{ID: "req_1", Family: llmapi.OpenAI, Method: "POST",
			Path: "/v1/chat/completions", Stream: true, Body: []byte(`{"model":"m","stream":true}`)})
	}()
	cancel()
	relay.wg.Wait()
}
