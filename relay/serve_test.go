package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/scripts/fakeprovider"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

const providerKey = "sk-relay-test-provider-key"

// relayRig is a Relay serving a real WebSocket tunnel listener on
// loopback, in front of the fake provider, and an edge-side session to it.
type relayRig struct {
	t      *testing.T
	relay  *Relay
	ln     tunnel.Listener
	sess   tunnel.Session
	dialer tunnel.Dialer // for more sessions from the same edge
	cancel context.CancelFunc
	served chan error    // Serve's result
	logged chan string   // every message the relay logs, for waiting on events
	hold   chan struct{} // closed by release to let requests sent with X-Test-Hold go on
	held   chan struct{} // receives when a held request reached the provider
	fake   *httptest.Server

	releaseOnce sync.Once
}

// newRelayRig starts the rig; each of set may adjust the relay before it
// serves.
func newRelayRig(t *testing.T, set ...func(*Relay)) *relayRig {
	t.Helper()
	r := &relayRig{t: t, served: make(chan error, 1), logged: make(chan string, 256),
		hold: make(chan struct{}), held: make(chan struct{}, 8)}
	fake := fakeprovider.New(fakeprovider.Config{Keys: fakeprovider.Keys{OpenAI: providerKey}})
	// X-Test-Hold keeps a request at the provider until the test releases
	// it: a stream in flight for exactly as long as the test needs one.
	r.fake = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("X-Test-Hold") != "" {
			r.held <- struct{}{}
			<-r.hold
		}
		// X-Test-Hold-Body (its value the Content-Type) answers with one
		// event, then holds the rest of the body: an answer being pumped.
		if ct := req.Header.Get("X-Test-Hold-Body"); ct != "" {
			w.Header().Set("Content-Type", ct)
			_, _ = io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			r.held <- struct{}{}
			<-r.hold
			_, _ = io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		fake.ServeHTTP(w, req)
	}))
	t.Cleanup(r.fake.Close)
	core, _ := observer.New(zap.DebugLevel)
	log := zap.New(core, zap.Hooks(func(e zapcore.Entry) error {
		select {
		case r.logged <- e.Message:
		default:
		}
		return nil
	}))
	var err error
	r.relay, err = New(Config{Logger: log, DrainTimeout: 20 * time.Second,
		Providers: []upstream.ProviderConfig{{Name: "openai", Kind: upstream.OpenAI, BaseURL: r.fake.URL,
			Keys: []upstream.Key{upstream.NewKey(providerKey)}, AllowHeaders: []string{"X-Test-*"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range set {
		f(r.relay)
	}
	pki := tunneltest.NewPKI(t, "")
	cfg := wstun.Config{HandshakeTimeout: 5 * time.Second}
	if r.ln, err = wstun.Listen(tunneltest.Listen(t), pki.ServerConfig(), cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.served <- r.relay.Serve(ctx, r.ln) }()
	d, err := wstun.NewDialer(r.ln.Addr().String(), pki.ClientConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.dialer = d
	if r.sess, err = d.Dial(testContext(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	t.Cleanup(r.release) // runs before stop: a held request must not keep the drain waiting
	return r
}

// release lets held requests go on to the provider.
func (r *relayRig) release() { r.releaseOnce.Do(func() { close(r.hold) }) }

// stop ends Serve (if the test has not) and waits for it.
func (r *relayRig) stop() {
	r.cancel()
	r.sess.Close()
	select {
	case err := <-r.served:
		if err != nil {
			r.t.Errorf("Serve: %v", err)
		}
		r.served <- err // for a second stop
	case <-time.After(30 * time.Second):
		r.t.Error("Serve did not return 30s after its context ended")
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitLogged waits until the relay logs msg.
func (r *relayRig) waitLogged(msg string) {
	r.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-r.logged:
			if m == msg {
				return
			}
		case <-timeout:
			r.t.Fatalf("the relay never logged %q", msg)
		}
	}
}

// answer is what the edge side of a request stream read.
type answer struct {
	dispatched bool
	status     int
	body       string
	end        proto.End
}

// open opens a stream and sends a chat completion request on it, with
// header h added; the body is a small non-streaming request.
func (r *relayRig) open(id string, h http.Header) tunnel.Stream {
	r.t.Helper()
	return r.openBody(id, h, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`)
}

// openBody is open with a request body of the test's.
func (r *relayRig) openBody(id string, h http.Header, body string) tunnel.Stream {
	r.t.Helper()
	st, err := r.sess.OpenStream(testContext(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	hdr := http.Header{"Content-Type": {"application/json"}}
	for k, v := range h {
		hdr[k] = v
	}
	w := proto.NewWriter(st)
	if err := w.WriteRequest(&proto.RequestHeader{ID: id, Family: "openai", Method: "POST", Path: "/v1/chat/completions",
		Header: hdr, BodyLen: int64(len(body)), Model: "gpt-4o-mini"}); err != nil {
		r.t.Fatal(err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		r.t.Fatal(err)
	}
	if err := w.WriteEnd(proto.End{}); err != nil {
		r.t.Fatal(err)
	}
	return st
}

// read reads a request stream's answer to its End.
func (r *relayRig) read(st tunnel.Stream) answer {
	r.t.Helper()
	defer st.Close()
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	rd := proto.NewReader(st)
	defer rd.Release()
	var a answer
	var body strings.Builder
	for {
		typ, p, err := rd.Next()
		if err != nil {
			r.t.Fatalf("reading the relay's answer: %v", err)
		}
		switch typ {
		case proto.FrameDispatched:
			a.dispatched = true
		case proto.FrameResponse:
			h, err := proto.ParseResponseHeader(p)
			if err != nil {
				r.t.Fatal(err)
			}
			a.status = h.Status
		case proto.FrameData:
			body.Write(p)
		case proto.FrameEnd:
			end, err := proto.ParseEnd(p)
			if err != nil {
				r.t.Fatal(err)
			}
			a.end, a.body = *end, body.String()
			return a
		}
	}
}

// control opens the session's control stream as the edge's pool does, with
// a Ping (which is how the relay tells it from a request stream), and
// checks the relay's Pong.
func (r *relayRig) control() (*proto.Writer, *proto.Reader) {
	r.t.Helper()
	return r.controlOn(r.sess)
}

// controlOn is control on another session of the rig's edge.
func (r *relayRig) controlOn(sess tunnel.Session) (*proto.Writer, *proto.Reader) {
	r.t.Helper()
	st, err := sess.OpenStream(testContext(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { st.Close() })
	// A frame the test waits for in vain fails it instead of hanging it.
	_ = st.SetReadDeadline(time.Now().Add(20 * time.Second))
	rd := proto.NewReader(st)
	r.t.Cleanup(rd.Release)
	w := proto.NewWriter(st)
	r.ping(w, rd, 1)
	return w, rd
}

// ping sends a probe on the control stream and reads its answer.
func (r *relayRig) ping(w *proto.Writer, rd *proto.Reader, seq uint64) {
	r.t.Helper()
	if err := w.WritePing(seq); err != nil {
		r.t.Fatal(err)
	}
	if typ, p := next(r.t, rd); typ != proto.FramePong {
		r.t.Fatalf("answer to a ping: %s frame", typ)
	} else if got, _ := proto.ParseSeq(p); got != seq {
		r.t.Fatalf("pong %d, want %d", got, seq)
	}
}

// next reads the next control frame.
func next(t *testing.T, rd *proto.Reader) (proto.FrameType, []byte) {
	t.Helper()
	typ, p, err := rd.Next()
	if err != nil {
		t.Fatalf("control stream: %v", err)
	}
	return typ, p
}

// TestServeStreams: on a live session the relay answers probes on the
// control stream, serves request streams through the provider, and refuses
// a request ID it has already taken upstream.
func TestServeStreams(t *testing.T) {
	r := newRelayRig(t)
	w, rd := r.control()
	r.ping(w, rd, 7)

	for _, tc := range []struct {
		name, id   string
		dispatched bool
		status     int
		code       proto.Code
	}{
		{"first", "req-1", true, http.StatusOK, 0},
		{"another", "req-2", true, http.StatusOK, 0},
		{"resent", "req-1", false, 0, proto.CodeDuplicate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := r.read(r.open(tc.id, nil))
			if a.dispatched != tc.dispatched || a.status != tc.status || a.end.Code != tc.code {
				t.Fatalf("dispatched %v, status %d, end %v; want %v, %d, %v", a.dispatched, a.status, a.end.Code,
					tc.dispatched, tc.status, tc.code)
			}
			if tc.status == http.StatusOK && !strings.Contains(a.body, "chat.completion") {
				t.Errorf("body %q is not a chat completion", a.body)
			}
		})
	}
}

// TestResendOfALiveDispatchedExchange: a resend whose first copy already
// reached the provider, its Dispatched lost with a session that died on the
// edge's side only, is refused as a duplicate, and the first copy, whose
// answer no one reads, is cut rather than left streaming.
func TestResendOfALiveDispatchedExchange(t *testing.T) {
	r := newRelayRig(t)
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	first := r.openBody("live-1", http.Header{"X-Test-Hold-Body": {"text/event-stream"}}, body)
	<-r.held // upstream, its first event on the way
	defer r.sess.Close()
	sess, err := r.dialer.Dial(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	r.sess = sess
	if a := r.read(r.open("live-1", nil)); a.end.Code != proto.CodeDuplicate {
		t.Fatalf("resend of a dispatched request: dispatched %v, status %d, end %v; want refused as a duplicate",
			a.dispatched, a.status, a.end.Code)
	}
	_ = first.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, first)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the first copy still streams after its resend came (%v)", err)
	}
}

// TestServePumpsOnAGoroutineOfItsOwn: while a stream streams, the
// goroutine that read and routed its request is gone, its stack with it
// (dispatch.Handoff); the pump's goroutine alone holds the stream, and the
// answer still arrives whole. A whole answer is pumped in place.
func TestServePumpsOnAGoroutineOfItsOwn(t *testing.T) {
	for _, tc := range []struct {
		name, contentType string
		stream            bool // the request asks for a stream
		ownGoroutine      bool
	}{
		{"event stream", "text/event-stream", true, true},
		// A whole answer's body follows its header at once: the serving
		// goroutine pumps it, sparing a goroutine per request.
		{"whole answer", "application/json", false, false},
		// A stream that is not made of events (Gemini's
		// streamGenerateContent without alt=sse is one JSON array) waits
		// on the provider like any stream.
		{"JSON stream", "application/json", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRelayRig(t)
			body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":%v,"messages":[{"role":"user","content":"hi"}]}`, tc.stream)
			st := r.openBody("pumped", http.Header{"X-Test-Hold-Body": {tc.contentType}}, body)
			<-r.held
			ctx := testContext(t)
			for {
				pumping, setUp := pumpStacks()
				if pumping && setUp != tc.ownGoroutine {
					break
				}
				if ctx.Err() != nil {
					t.Fatalf("the answer is held mid-body, yet pumping %v, on the serving goroutine %v:\n%s", pumping, setUp, goroutineStacks())
				}
				runtime.Gosched()
			}
			r.release()
			a := r.read(st)
			if a.status != http.StatusOK || a.end.Code != proto.CodeOK || a.body != "data: first\n\ndata: [DONE]\n\n" {
				t.Fatalf("status %d, end %v, body %q; want the whole answer", a.status, a.end, a.body)
			}
		})
	}
}

// pumpStacks reports whether a goroutine pumps an answer's body, and
// whether that goroutine is the one that set the exchange up.
func pumpStacks() (pumping, onServing bool) {
	for g := range strings.SplitSeq(goroutineStacks(), "\n\n") {
		if strings.Contains(g, "dispatch.(*caller).pumpBody") {
			pumping = true
			onServing = onServing || strings.Contains(g, "relay.(*Relay).serveStream") || strings.Contains(g, "dispatch.(*Dispatcher).Start")
		}
	}
	return pumping, onServing
}

// goroutineStacks is every goroutine's stack, as text.
func goroutineStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// TestServeDrains walks the drain: when Serve's context ends, the relay
// announces GoAway{Accepting} and still serves new streams while a stream
// is in flight; once that one finishes, a final GoAway, after which new
// streams get End{CodeGoingAway} (never dispatched, so the edge may send
// them elsewhere); Serve returns once the edge closes the session, and
// closes its listener.
func TestServeDrains(t *testing.T) {
	r := newRelayRig(t)
	_, rd := r.control()
	inFlight := r.open("held", http.Header{"X-Test-Hold": {"1"}})
	<-r.held

	r.cancel()
	typ, p := next(t, rd)
	g, err := proto.ParseGoAway(p)
	if typ != proto.FrameGoAway || err != nil || !g.Accepting || g.Renewal {
		t.Fatalf("first frame of the drain: %s %+v %v; want GoAway{Accepting}", typ, g, err)
	}
	if a := r.read(r.open("during-hand-over", nil)); a.status != http.StatusOK {
		t.Fatalf("stream during the hand-over: status %d, end %v; want 200", a.status, a.end)
	}

	r.release()
	if a := r.read(inFlight); a.status != http.StatusOK {
		t.Fatalf("stream in flight when the drain began: status %d, end %v; want 200", a.status, a.end)
	}
	typ, p = next(t, rd)
	if g, err = proto.ParseGoAway(p); typ != proto.FrameGoAway || err != nil || g.Accepting || g.Renewal {
		t.Fatalf("after the hand-over: %s %+v %v; want a final GoAway", typ, g, err)
	}
	r.waitLogged("draining") // logged once the gate is closed
	if a := r.read(r.open("after-final-goaway", nil)); a.dispatched || a.end.Code != proto.CodeGoingAway {
		t.Fatalf("stream after the final GoAway: dispatched %v, end %v; want End{CodeGoingAway}", a.dispatched, a.end)
	}

	r.sess.Close()
	select {
	case err := <-r.served:
		r.served <- err
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the edge closed its drained session")
	}
	if _, err := r.ln.Accept(testContext(t)); err == nil {
		t.Error("the listener still accepts after Serve returned")
	}
}

// TestServeNeedsAListener: Serve refuses to run with nothing to serve.
func TestServeNeedsAListener(t *testing.T) {
	r, err := New(Config{Providers: []upstream.ProviderConfig{{Name: "openai", Kind: upstream.OpenAI, BaseURL: "http://127.0.0.1:1",
		Keys: []upstream.Key{upstream.NewKey(providerKey)}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Serve(context.Background()); err == nil {
		t.Fatalf("Serve without listeners: %v; want an error", err)
	}
}

// TestResendAfterBreakBeforeDispatch: a request whose session died while
// the relay still read its body never reached the provider (no
// Dispatched), so the edge's resend on another session is served, not
// refused as a duplicate: whether the relay saw the session end first, or
// the session died on the edge's side only and the relay still waits for
// the rest of the body there (the resend then cuts that first copy).
func TestResendAfterBreakBeforeDispatch(t *testing.T) {
	for _, tc := range []struct {
		name        string
		relaySeesIt bool // the first session ends at the relay before the resend
	}{
		{"session closed", true},
		{"session silent", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRelayRig(t)
			body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
			st, err := r.sess.OpenStream(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			w := proto.NewWriter(st)
			if err := w.WriteRequest(&proto.RequestHeader{ID: "resend-1", Family: "openai", Method: "POST", Path: "/v1/chat/completions",
				Header: http.Header{"Content-Type": {"application/json"}}, BodyLen: int64(len(body)), Model: "gpt-4o-mini"}); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(body[:10])); err != nil { // the rest is lost with the session
				t.Fatal(err)
			}
			ctx := testContext(t)
			for !r.relay.seen.has("resend-1") { // the relay read the header and took the ID
				if ctx.Err() != nil {
					t.Fatal("the relay never read the request header")
				}
				runtime.Gosched()
			}
			first := r.sess
			if tc.relaySeesIt {
				first.Close()
			} else {
				defer first.Close()
			}
			sess, err := r.dialer.Dial(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			r.sess = sess
			a := r.read(r.open("resend-1", nil))
			if !a.dispatched || a.status != http.StatusOK {
				t.Fatalf("resend of a request never dispatched: dispatched %v, status %d, end %v (%s); want it served",
					a.dispatched, a.status, a.end.Code, a.end.Message)
			}
		})
	}
}
