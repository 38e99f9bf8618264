package dispatch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/relay/upstream"
)

// slowBody is an upstream body that yields the chunks sent on c (closed:
// io.EOF) and ends with ctx's error when the call is canceled. waiting
// gets a value each time a Read starts to wait.
type slowBody struct {
	ctx     context.Context
	c       chan []byte
	waiting chan struct{}
}

func (b *slowBody) Read(p []byte) (int, error) {
	select {
	case b.waiting <- struct{}{}:
	default:
	}
	select {
	case chunk, ok := <-b.c:
		if !ok {
			return 0, io.EOF
		}
		return copy(p, chunk), nil
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	}
}

// edgeSink is the edge's side of the stream: it records every write and
// signals it, and fails them all once broken is set.
type edgeSink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	broken bool
	wrote  chan struct{}
}

func (s *edgeSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken {
		return 0, errors.New("stream reset")
	}
	s.buf.Write(p)
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (s *edgeSink) count(b []byte) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Count(s.buf.Bytes(), b)
}

type pumpResult struct {
	n      int64
	end    proto.End
	reason string
}

// startPump runs a pump of an OpenAI event stream from body to sink.
func startPump(to upstream.Timeouts, body *slowBody, cancel context.CancelFunc, sink *edgeSink) <-chan pumpResult {
	p := &pump{x: &exchange{w: proto.NewWriter(sink), log: zap.NewNop()}, body: body, cancel: cancel, to: to,
		ping: pingFor("openai", "text/event-stream")}
	out := make(chan pumpResult, 1)
	go func() {
		n, end, reason := p.run(nil)
		out <- pumpResult{n, end, reason}
	}()
	return out
}

func newSlowBody() (*slowBody, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	// waiting has room for every Read a test makes: none is lost.
	return &slowBody{ctx: ctx, c: make(chan []byte), waiting: make(chan struct{}, 64)}, cancel
}

// TestPumpHoldsOneGoroutine: an open stream waiting for the provider's
// next event costs the pump one goroutine, not a second one parked in
// Read (at 10 000 open streams, each goroutine is 10 000 stacks).
func TestPumpHoldsOneGoroutine(t *testing.T) {
	body, cancel := newSlowBody()
	defer cancel()
	sink := &edgeSink{wrote: make(chan struct{}, 1)}
	res := startPump(upstream.Timeouts{Idle: time.Hour, Ping: time.Hour}, body, cancel, sink)
	body.c <- []byte("data: {}\n\n")
	<-body.waiting // the first Read
	<-body.waiting // the second: the event is forwarded, the pump waits for the next
	buf := make([]byte, 1<<20)
	stacks := string(buf[:runtime.Stack(buf, true)])
	if n := strings.Count(stacks, "dispatch.(*pump)"); n != 1 {
		t.Fatalf("%d goroutines in the pump while it waits, want 1:\n%s", n, stacks)
	}
	close(body.c)
	if r := <-res; r.end.Code != proto.CodeOK || r.reason != endCompleted || r.n != int64(len("data: {}\n\n")) {
		t.Fatalf("got %+v", r)
	}
}

// TestPumpSilence: keep-alives while the provider is silent, the idle
// limit, and a keep-alive that finds the edge gone, each ending the
// stream the way the client must see it.
func TestPumpSilence(t *testing.T) {
	ping := pingFor("openai", "text/event-stream")
	event := []byte("data: {\"x\":1}\n\n")
	for _, tc := range []struct {
		name   string
		to     upstream.Timeouts
		drive  func(body *slowBody, sink *edgeSink)
		code   proto.Code
		reason string
		n      int64
	}{{
		name: "keep-alives, then the stream completes",
		to:   upstream.Timeouts{Idle: time.Hour, Ping: time.Millisecond},
		drive: func(body *slowBody, sink *edgeSink) {
			body.c <- event
			for sink.count(ping) < 3 {
				<-sink.wrote
			}
			body.c <- event
			close(body.c)
		},
		code: proto.CodeOK, reason: endCompleted, n: int64(2 * len(event)),
	}, {
		name:  "silent past the idle limit",
		to:    upstream.Timeouts{Idle: 20 * time.Millisecond, Ping: time.Hour},
		drive: func(body *slowBody, sink *edgeSink) { body.c <- event },
		code:  proto.CodeUpstreamTimeout, reason: endTimeout, n: int64(len(event)),
	}, {
		name: "a keep-alive finds the edge gone",
		to:   upstream.Timeouts{Idle: time.Hour, Ping: time.Millisecond},
		drive: func(body *slowBody, sink *edgeSink) {
			body.c <- event
			<-body.waiting
			<-body.waiting // the event is forwarded
			sink.mu.Lock()
			sink.broken = true
			sink.mu.Unlock()
		},
		code: proto.CodeCanceled, reason: endClientGone, n: int64(len(event)),
	}} {
		t.Run(tc.name, func(t *testing.T) {
			body, cancel := newSlowBody()
			defer cancel()
			sink := &edgeSink{wrote: make(chan struct{}, 1)}
			res := startPump(tc.to, body, cancel, sink)
			tc.drive(body, sink)
			r := <-res
			if r.end.Code != tc.code || r.reason != tc.reason || r.n != tc.n {
				t.Fatalf("got %+v, want code %v, reason %s, %d bytes", r, tc.code, tc.reason, tc.n)
			}
			if tc.code == proto.CodeOK && sink.count(event) != 2 {
				t.Fatalf("edge got %q", sink.buf.String())
			}
		})
	}
}

// TestPumpBufferFollowsTheBody: the read buffer grows while reads fill it
// and shrinks back once a read would have fit the small one.
func TestPumpBufferFollowsTheBody(t *testing.T) {
	bufp := smallBufPool.Get().(*[]byte)
	for i, step := range []struct{ n, want int }{
		{100, smallBuf},    // an event
		{smallBuf, bigBuf}, // the read filled it: a burst or a bulk body
		{bigBuf, bigBuf},   // bulk goes on
		{5000, bigBuf},     // more than a small buffer holds
		{300, smallBuf},    // an event again
		{smallBuf - 1, smallBuf},
	} {
		if bufp = resize(bufp, step.n); len(*bufp) != step.want {
			t.Fatalf("step %d: after a read of %d bytes the buffer is %d bytes, want %d", i, step.n, len(*bufp), step.want)
		}
	}
	smallBufPool.Put(bufp)
}
