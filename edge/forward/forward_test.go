package forward

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

// pipeStream is one end of an in-memory stream.
type pipeStream struct{ net.Conn }

func (p pipeStream) CloseWrite() error        { return nil }
func (p pipeStream) Buffered() int64          { return 0 }
func (p pipeStream) Context() context.Context { return context.Background() }
func (p pipeStream) Reset() error             { return p.Close() }
func (p pipeStream) ID() uint64               { return 0 }

// relayStep is what the scripted relay does with one stream after reading
// the whole request.
type relayStep int

const (
	breakBeforeDispatch relayStep = iota // the tunnel dies: the provider never saw it
	refuseGoingAway                      // a draining relay refuses it
	breakAfterDispatch                   // dispatched upstream, then the tunnel dies
	answer                               // dispatched, 200, body, End
	refuseDuplicate                      // the relay took this ID upstream before
	stall                                // nothing comes back until the edge closes the stream
	answerStream                         // dispatched, 200 with an SSE body, End
	answerUnsized                        // dispatched, 200 JSON of no declared length in two pieces, End
	answerFlood                          // dispatched, 200 SSE, events until the edge stops reading (at most 1 MiB)
)

// scriptedRelay hands out one in-memory stream per OpenStream and plays the
// next step on it; it counts what reached the "provider".
type scriptedRelay struct {
	steps      []relayStep
	opened     atomic.Int32
	dispatched atomic.Int32
	// stalledClosed counts stall steps whose stream the edge closed.
	stalledClosed atomic.Int32
	bodyBytes     atomic.Int64 // request body bytes read, all streams
	wg            sync.WaitGroup
}

func (s *scriptedRelay) OpenStream(ctx context.Context) (tunnel.Stream, error) {
	i := int(s.opened.Add(1)) - 1
	if i >= len(s.steps) {
		return nil, io.ErrClosedPipe
	}
	edge, relay := net.Pipe()
	s.wg.Go(func() { s.play(relay, s.steps[i]) })
	return pipeStream{edge}, nil
}

func (s *scriptedRelay) play(c net.Conn, step relayStep) {
	defer c.Close()
	if step == stall {
		// Whether the edge closed it before or after the whole request
		// arrived, a stalled stream ends here only by the edge's close.
		defer s.stalledClosed.Add(1)
	}
	r := proto.NewReader(c)
	defer r.Release()
	if _, _, err := r.Next(); err != nil { // the request header
		return
	}
	n, err := io.Copy(io.Discard, r.Body())
	s.bodyBytes.Add(n)
	if err != nil {
		return
	}
	w := proto.NewWriter(c)
	switch step {
	case stall:
		_, _ = c.Read(make([]byte, 1)) // until the edge closes its end
	case breakBeforeDispatch:
	case refuseGoingAway:
		_ = w.WriteEnd(proto.End{Code: proto.CodeGoingAway, Message: "draining"})
	case refuseDuplicate:
		_ = w.WriteEnd(proto.End{Code: proto.CodeDuplicate, Message: "already taken; not retried"})
	case breakAfterDispatch:
		s.dispatched.Add(1)
		_ = w.WriteDispatched()
	case answer:
		s.dispatched.Add(1)
		_ = w.WriteDispatched()
		_ = w.WriteResponse(&proto.ResponseHeader{Status: 200, Header: http.Header{"Content-Type": {"application/json"}, "Content-Length": {"2"}}})
		_, _ = w.Write([]byte("{}"))
		_ = w.WriteEnd(proto.End{})
	case answerUnsized:
		s.dispatched.Add(1)
		_ = w.WriteDispatched()
		_ = w.WriteResponse(&proto.ResponseHeader{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}})
		_, _ = w.Write([]byte(`{"a":`))
		_, _ = w.Write([]byte(`1}`))
		_ = w.WriteEnd(proto.End{})
	case answerFlood:
		s.dispatched.Add(1)
		_ = w.WriteDispatched()
		_ = w.WriteResponse(&proto.ResponseHeader{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}})
		event := []byte("data: " + strings.Repeat("x", 1<<10) + "\n\n")
		for sent := 0; sent < 1<<20; sent += len(event) {
			if _, err := w.Write(event); err != nil {
				return
			}
		}
	case answerStream:
		s.dispatched.Add(1)
		_ = w.WriteDispatched()
		_ = w.WriteResponse(&proto.ResponseHeader{Status: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}})
		_, _ = w.Write([]byte("data: {}\n\n"))
		_ = w.WriteEnd(proto.End{})
	}
}

// TestResendOnlyBeforeDispatch proves both halves of the resend rule: a
// request whose stream failed, or was refused, before the relay said
// Dispatched is sent again on a new stream and reaches the provider once;
// after Dispatched it is never sent again and the client gets a 502 that
// says so, with X-Should-Retry: false so that the SDKs do not send it again
// either.
func TestResendOnlyBeforeDispatch(t *testing.T) {
	for _, tc := range []struct {
		name         string
		steps        []relayStep
		status       int
		attempts     int
		dispatched   int32
		wantInBody   string
		wantOpenings int32
		noRetry      bool // X-Should-Retry: false
	}{
		{"broken before dispatch, then answered", []relayStep{breakBeforeDispatch, answer}, 200, 2, 1, "{}", 2, false},
		{"refused by a draining relay twice", []relayStep{refuseGoingAway, refuseGoingAway, answer}, 200, 3, 1, "{}", 3, false},
		{"broken after dispatch", []relayStep{breakAfterDispatch, answer}, 502, 1, 1, "not retried", 1, true},
		// The first Dispatched was lost with the session; the relay knows.
		{"resend refused as a duplicate", []relayStep{breakBeforeDispatch, refuseDuplicate, answer}, 502, 2, 0, "not retried", 2, true},
		{"never dispatched, attempts exhausted", []relayStep{breakBeforeDispatch, breakBeforeDispatch, breakBeforeDispatch,
			breakBeforeDispatch, breakBeforeDispatch, answer}, 502, maxAttempts, 0, "before the request reached the provider", maxAttempts, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := &scriptedRelay{steps: tc.steps}
			defer relay.wg.Wait()
			f := New(relay, time.Second, zap.NewNop())
			r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
			w := httptest.NewRecorder()
			res := f.Forward(w, r, &Request{ID: "req_1", Family: llmapi.OpenAI, Method: "POST",
				Path: "/v1/chat/completions", Body: []byte(`{"model":"m"}`)})
			relay.check(t, w, res, outcome{tc.status, tc.attempts, tc.dispatched, tc.wantInBody, tc.wantOpenings})
			if got := w.Header().Get("X-Should-Retry") == "false"; got != tc.noRetry {
				t.Errorf("X-Should-Retry: false is %v; want %v", got, tc.noRetry)
			}
		})
	}
}

// outcome is what a scripted exchange should end with.
type outcome struct {
	status, attempts int
	dispatched       int32 // times the provider got the request
	inBody           string
	openings         int32 // streams opened
}

func (s *scriptedRelay) check(t *testing.T, w *httptest.ResponseRecorder, res Result, want outcome) {
	t.Helper()
	if w.Code != want.status || res.Attempts != want.attempts {
		t.Errorf("status %d after %d attempts; want %d after %d", w.Code, res.Attempts, want.status, want.attempts)
	}
	if !strings.Contains(w.Body.String(), want.inBody) {
		t.Errorf("body %q does not contain %q", w.Body.String(), want.inBody)
	}
	if n := s.dispatched.Load(); n != want.dispatched {
		t.Errorf("the provider got the request %d times; want %d", n, want.dispatched)
	}
	if n := s.opened.Load(); n != want.openings {
		t.Errorf("%d streams opened; want %d", n, want.openings)
	}
}

// lateSender is a stream on which the request's sender, failing, is slow to
// report: its SetReadDeadline (which wakes the reader) returns only once
// the reader has given up on the stream (SetDeadline), the order a loaded
// machine may run the two goroutines in.
type lateSender struct {
	pipeStream
	gaveUp chan struct{}
	once   sync.Once
}

func (s *lateSender) SetReadDeadline(t time.Time) error {
	err := s.pipeStream.SetReadDeadline(t)
	select {
	case <-s.gaveUp:
	case <-time.After(5 * time.Second): // only a bound on a broken test
	}
	return err
}

func (s *lateSender) SetDeadline(t time.Time) error {
	s.once.Do(func() { close(s.gaveUp) })
	return s.pipeStream.SetDeadline(t)
}

// lateOpener hands out lateSender streams whose relay end reads nothing.
type lateOpener struct {
	opened atomic.Int32
	relays []net.Conn
	mu     sync.Mutex
}

func (o *lateOpener) OpenStream(context.Context) (tunnel.Stream, error) {
	o.opened.Add(1)
	edge, relay := net.Pipe()
	o.mu.Lock()
	o.relays = append(o.relays, relay)
	o.mu.Unlock()
	return &lateSender{pipeStream: pipeStream{edge}, gaveUp: make(chan struct{})}, nil
}

// TestHeaderTooLargeAnsweredOnce: a request whose header cannot be framed
// is answered 431 on its first stream, however late its sender reports the
// failure after waking the reader. The sender's error used to be dropped
// when the reader got there first, and the request was resent as if the
// tunnel had broken (up to five times, then a 502).
func TestHeaderTooLargeAnsweredOnce(t *testing.T) {
	o := &lateOpener{}
	defer func() {
		for _, c := range o.relays {
			c.Close()
		}
	}()
	f := New(o, time.Second, zap.NewNop())
	r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	w := httptest.NewRecorder()
	res := f.Forward(w, r, &Request{ID: "req_1", Family: llmapi.OpenAI, Method: "POST", Path: "/v1/chat/completions",
		Header: http.Header{"X-Padding": {strings.Repeat("p", proto.MaxHeaderFrame)}}, Body: []byte(`{"model":"m"}`)})
	if w.Code != http.StatusRequestHeaderFieldsTooLarge || res.Attempts != 1 || o.opened.Load() != 1 {
		t.Errorf("status %d after %d attempts on %d streams; want 431 after 1 on 1", w.Code, res.Attempts, o.opened.Load())
	}
}

// goroutineID is the calling goroutine's number, from its stack header.
func goroutineID() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	return string(bytes.Fields(b)[1])
}

// goroutineRecorder notes which goroutine sent the header and which wrote
// the body; panicOnHeader makes WriteHeader panic.
type goroutineRecorder struct {
	*httptest.ResponseRecorder
	header, body  string
	panicOnHeader bool
}

func (g *goroutineRecorder) WriteHeader(code int) {
	if g.panicOnHeader {
		panic("header")
	}
	g.ResponseRecorder.WriteHeader(code)
}

func (g *goroutineRecorder) FlushError() error {
	if g.header == "" {
		g.header = goroutineID()
	}
	g.ResponseRecorder.Flush()
	return nil
}

func (g *goroutineRecorder) Write(p []byte) (int, error) {
	g.body = goroutineID()
	return g.ResponseRecorder.Write(p)
}

// TestStreamHeaderApart: a stream's header is sent on a goroutine other
// than the handler's, which writes the body (see sendHeader: a deep header
// write would leave the handler a 16 KiB stack for the stream's life), and
// a panic while sending it is still the handler's.
func TestStreamHeaderApart(t *testing.T) {
	relay := &scriptedRelay{steps: []relayStep{answerStream, answerStream}}
	defer relay.wg.Wait()
	f := New(relay, time.Second, zap.NewNop())
	req := &Request{ID: "req_1", Family: llmapi.OpenAI, Method: http.MethodPost, Path: "/v1/chat/completions", Body: []byte("{}")}
	rec := &goroutineRecorder{ResponseRecorder: httptest.NewRecorder()}
	res := f.Forward(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil), req)
	if res.Status != 200 || rec.Body.String() != "data: {}\n\n" {
		t.Fatalf("status %d, body %q", res.Status, rec.Body.String())
	}
	if rec.header == "" || rec.body == "" || rec.header == rec.body {
		t.Fatalf("header sent on goroutine %q, body written on %q; want two different ones", rec.header, rec.body)
	}
	if rec.body != goroutineID() {
		t.Fatalf("body written on goroutine %s, not the handler's", rec.body)
	}
	// net/http ends a panicking handler's request context, which closes its
	// tunnel stream.
	ctx, cancel := context.WithCancel(context.Background())
	func() {
		defer func() {
			cancel()
			if p := recover(); p != "header" {
				t.Fatalf("recovered %v; want the header's panic on the handler's goroutine", p)
			}
		}()
		f.Forward(&goroutineRecorder{ResponseRecorder: httptest.NewRecorder(), panicOnHeader: true},
			httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/chat/completions", nil), req)
	}()
}

// TestBodyDoneOnceAnswered: Forward lets go of the request body once the
// relay's response has begun, and not before: a request resent before
// dispatch goes out whole again, and BodyDone comes once, after which
// nothing holds the body (a weak pointer to it is cleared by a GC).
func TestBodyDoneOnceAnswered(t *testing.T) {
	relay := &scriptedRelay{steps: []relayStep{breakBeforeDispatch, answerStream}}
	defer relay.wg.Wait()
	f := New(relay, time.Second, zap.NewNop())
	const size = 1 << 20
	body := make([]byte, size)
	held := weak.Make(&body[0])
	rec := httptest.NewRecorder()
	var calls int
	var freed bool
	req := &Request{ID: "req_1", Family: llmapi.OpenAI, Method: http.MethodPost, Path: "/v1/chat/completions", Body: body}
	req.BodyDone = func() {
		calls++
		if rec.Body.Len() != 0 {
			t.Error("BodyDone after the response body began")
		}
		runtime.GC()
		freed = held.Value() == nil
	}
	body = nil
	res := f.Forward(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil), req)
	if res.Status != 200 || res.Attempts != 2 || rec.Body.String() != "data: {}\n\n" {
		t.Fatalf("status %d after %d attempts, body %q", res.Status, res.Attempts, rec.Body.String())
	}
	if got := relay.bodyBytes.Load(); got != 2*size {
		t.Fatalf("the relay read %d body bytes over two attempts; want %d", got, 2*size)
	}
	if calls != 1 || req.Body != nil {
		t.Fatalf("BodyDone called %d times, Body still set: %v; want once, and Body dropped", calls, req.Body != nil)
	}
	if !freed {
		t.Fatal("the body was still reachable when BodyDone was called")
	}
}

// writeCounter counts the writes on the connections its listener accepts.
type writeCounter struct {
	net.Listener
	writes atomic.Int32
}

func (l *writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return tunneltest.WriteCountingConn{Conn: c, Writes: &l.writes}, err
}

// TestUnsizedAnswer: an answer of no declared length (the relay
// decompressed it) to a request that asked for no stream reaches an
// HTTP/1.1 client in one write, with a Content-Length; asked for a stream,
// it is flushed as it comes, chunked. The client gets the same bytes.
func TestUnsizedAnswer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stream   bool
		length   int64
		chunked  bool
		maxWrite int32
	}{
		{"whole answer", false, 7, false, 1},
		{"asked for a stream", true, -1, true, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := &scriptedRelay{steps: []relayStep{answerUnsized}}
			defer relay.wg.Wait()
			f := New(relay, time.Second, zap.NewNop())
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				f.Forward(w, r, &Request{ID: "req_1", Family: llmapi.OpenAI, Method: "POST", Path: "/v1/chat/completions",
					Body: []byte(`{}`), Stream: tc.stream})
			}))
			ln := &writeCounter{Listener: srv.Listener}
			srv.Listener = ln
			srv.Start()
			defer srv.Close()
			resp, err := http.Post(srv.URL, "application/json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(body) != `{"a":1}` {
				t.Fatalf("body %q, err %v", body, err)
			}
			if resp.ContentLength != tc.length || (len(resp.TransferEncoding) > 0) != tc.chunked {
				t.Errorf("Content-Length %d, Transfer-Encoding %q; want %d, chunked %v", resp.ContentLength, resp.TransferEncoding, tc.length, tc.chunked)
			}
			if n := ln.writes.Load(); n < 1 || n > tc.maxWrite {
				t.Errorf("%d writes to the client, want 1 to %d", n, tc.maxWrite)
			}
		})
	}
}

// panickingWriter panics on the first body write, as a bug under the
// client writer would.
type panickingWriter struct{ *httptest.ResponseRecorder }

func (panickingWriter) Write([]byte) (int, error) { panic("write") }

// TestDetachedAnswer: an answer Request.Detach takes streams on without
// the handler: Forward returns at once with Result.Detached, and the final
// Result reaches done once. A panic while it streams is logged and ends it
// aborted, still once.
func TestDetachedAnswer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		w         func(*httptest.ResponseRecorder) http.ResponseWriter
		hedged    bool // the second copy's sender stays stuck until its stream gets a deadline
		body      string
		aborted   bool
		panicLogs int
	}{
		{"complete", func(r *httptest.ResponseRecorder) http.ResponseWriter { return r }, false, "data: {}\n\n", false, 0},
		{"panic", func(r *httptest.ResponseRecorder) http.ResponseWriter { return panickingWriter{r} }, false, "", true, 1},
		// After a panic the legs still end as after an answer: the stuck
		// copy's send is cut (else relay.wg.Wait and goleak hang or fail),
		// and the body the edge then reuses is no longer read (-race).
		{"hedged, panic", func(r *httptest.ResponseRecorder) http.ResponseWriter { return panickingWriter{r} }, true, "", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			relay := &scriptedRelay{steps: []relayStep{answerStream, stall}}
			defer relay.wg.Wait()
			core, logs := observer.New(zap.ErrorLevel)
			var tr Opener = relay
			if tc.hedged {
				tr = stuckHedge{relay}
			}
			f := New(tr, time.Second, zap.New(core))
			if tc.hedged {
				f.SetHedge(HedgeOn, 0)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rec := httptest.NewRecorder()
			done := make(chan Result, 2)
			body := []byte("{}")
			req := &Request{ID: "req_1", Family: llmapi.OpenAI, Method: http.MethodPost, Path: "/v1/chat/completions",
				Body: body, Stream: true,
				Detach: func(int) (http.ResponseWriter, context.Context, func(Result)) {
					return tc.w(rec), ctx, func(r Result) { done <- r }
				}}
			if res := f.Forward(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil), req); !res.Detached {
				t.Fatalf("Forward returned %+v; want a detached answer", res)
			}
			var res Result
			select {
			case res = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the detached answer never ended")
			}
			for i := range body { // what the edge's next request does to a reused buffer
				body[i] = 0
			}
			relay.wg.Wait()
			if len(done) != 0 {
				t.Fatal("done was called twice")
			}
			if res.Detached || res.Aborted != tc.aborted || res.Status != 200 || res.Attempts != 1 || rec.Body.String() != tc.body {
				t.Fatalf("final %+v, body %q; want aborted %v, status 200, 1 attempt, body %q", res, rec.Body.String(), tc.aborted, tc.body)
			}
			if n := logs.FilterMessageSnippet("panic").Len(); n != tc.panicLogs {
				t.Fatalf("%d panic log lines; want %d", n, tc.panicLogs)
			}
		})
	}
}
