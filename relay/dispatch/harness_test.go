package dispatch

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/scripts/fakeprovider"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
	)
}

// tcpStream is a tunnel.Stream over one loopback TCP connection: the
// dispatcher under test gets a real socket with real deadlines.
type tcpStream struct {
	*net.TCPConn
	peer *peerWatch
}

func newTCPStream(c *net.TCPConn) tcpStream { return tcpStream{c, new(peerWatch)} }

func (s tcpStream) Reset() error    { return s.Close() }
func (s tcpStream) ID() uint64      { return 1 }
func (s tcpStream) Buffered() int64 { return 0 }

// peerWatch is a tcpStream's Context: a socket learns of the peer's FIN
// only by reading, so the first call (after the request: the dispatcher
// reads nothing more) starts a reader that cancels it on any result.
type peerWatch struct {
	once sync.Once
	ctx  context.Context
}

func (s tcpStream) Context() context.Context {
	s.peer.once.Do(func() {
		var cancel context.CancelFunc
		s.peer.ctx, cancel = context.WithCancel(context.Background())
		go func() {
			var one [1]byte
			_, _ = s.TCPConn.Read(one[:])
			cancel()
		}()
	})
	return s.peer.ctx
}

// rig is a dispatcher in front of a fake provider.
type rig struct {
	t    testing.TB
	fake *fakeprovider.Server
	srv  *httptest.Server
	reg  *upstream.Registry
	d    *Dispatcher
	logs *observer.ObservedLogs
	wg   sync.WaitGroup
	// writes has the frame types of each Write the dispatcher made on the
	// stream of the last do.
	writes writeLog
}

// writeLog records the frame types in each Write on a stream.
type writeLog struct {
	mu     sync.Mutex
	writes [][]proto.FrameType
}

func (l *writeLog) get() [][]proto.FrameType {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes
}

// recordingStream logs the frames in each Write; the dispatcher writes
// whole frames only.
type recordingStream struct {
	tcpStream
	log *writeLog
}

func (s *recordingStream) Write(p []byte) (int, error) {
	var types []proto.FrameType
	rd := proto.NewReader(bytes.NewReader(p))
	for {
		typ, _, err := rd.Next()
		if err != nil {
			break
		}
		types = append(types, typ)
	}
	rd.Release()
	s.log.mu.Lock()
	s.log.writes = append(s.log.writes, types)
	s.log.mu.Unlock()
	return s.tcpStream.Write(p)
}

type rigOptions struct {
	keys     []string
	weights  []int
	policy   upstream.KeyPolicy
	timeouts upstream.Timeouts
	retry    RetryPolicy
	// quiet records only errors, as a relay logs at its default level
	// (benchmarks: recorded debug logs would grow with every request).
	quiet bool
	// upstream, when set, wraps the fake provider.
	upstream func(http.Handler) http.Handler
	// http2 serves the fake provider over TLS and HTTP/2, as the real
	// providers answer (HTTP/1.1 without TLS otherwise).
	http2 bool
}

func newRig(t testing.TB, o rigOptions) *rig {
	t.Helper()
	r := &rig{t: t, fake: fakeprovider.New(fakeprovider.Config{})}
	var h http.Handler = r.fake
	if o.upstream != nil {
		h = o.upstream(h)
	}
	var roots *x509.CertPool
	if o.http2 {
		r.srv = httptest.NewUnstartedServer(h)
		r.srv.EnableHTTP2 = true
		r.srv.StartTLS()
		roots = x509.NewCertPool()
		roots.AddCert(r.srv.Certificate())
	} else {
		r.srv = httptest.NewServer(h)
	}
	t.Cleanup(r.srv.Close)
	var ks []upstream.Key
	for _, k := range o.keys {
		ks = append(ks, upstream.NewKey(k))
	}
	reg, err := upstream.New(upstream.Config{Keys: o.policy, Timeouts: o.timeouts, Providers: []upstream.ProviderConfig{
		{Name: "openai", Kind: upstream.OpenAI, BaseURL: r.srv.URL, Keys: ks, Weights: o.weights, AllowHeaders: []string{"X-Fake-*"}},
		{Name: "anthropic", Kind: upstream.Anthropic, BaseURL: r.srv.URL, Keys: ks, AllowHeaders: []string{"X-Fake-*"}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.reg = reg
	level := zap.DebugLevel
	if o.quiet {
		level = zap.ErrorLevel
	}
	core, logs := observer.New(level)
	r.logs = logs
	client := &http.Client{Transport: upstream.NewTransport(upstream.TransportConfig{RootCAs: roots})}
	t.Cleanup(client.CloseIdleConnections)
	if o.retry.Backoff == 0 {
		o.retry.Backoff = time.Millisecond
	}
	r.d = New(Config{Registry: reg, Client: client, Retry: o.retry, Logger: zap.New(core)})
	t.Cleanup(r.wg.Wait)
	return r
}

// fakeClock is a clock for the key state machine that moves only when
// Advance is called.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

// Now is the clock's time.
func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// result is what the edge side of the stream saw.
type result struct {
	dispatched bool
	status     int
	header     http.Header
	body       []byte
	end        proto.End
	elapsed    time.Duration
}

// do sends one request through a real loopback TCP stream to the
// dispatcher and reads everything the dispatcher answers.
func (r *rig) do(family, path string, header http.Header, body string) result {
	r.t.Helper()
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Type", "application/json")
	// The model, as the edge reads it and sends it along.
	m, _ := llmapi.Parse(llmapi.Family(family), path, []byte(body), nil)
	return r.send(&proto.RequestHeader{ID: "t", Family: family, Method: "POST", Path: path,
		Header: header, BodyLen: int64(len(body)), Model: m.Model}, body)
}

// send sends h and body as they are (the edge's part) and reads the answer.
func (r *rig) send(h *proto.RequestHeader, body string) result {
	r.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	defer ln.Close()
	r.writes = writeLog{}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		r.d.Serve(context.Background(), &recordingStream{tcpStream: newTCPStream(c.(*net.TCPConn)), log: &r.writes})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	w := proto.NewWriter(c)
	if err := w.WriteRequest(h); err != nil {
		r.t.Fatal(err)
	}
	_, _ = w.Write([]byte(body))
	_ = w.WriteEnd(proto.End{})
	return r.read(c, start)
}

func (r *rig) read(c net.Conn, start time.Time) result {
	r.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	rd := proto.NewReader(c)
	defer rd.Release()
	var res result
	for {
		typ, p, err := rd.Next()
		if err != nil {
			r.t.Fatalf("reading the dispatcher's answer: %v", err)
		}
		switch typ {
		case proto.FrameDispatched:
			res.dispatched = true
			continue
		case proto.FrameEnd:
			e, _ := proto.ParseEnd(p)
			res.end, res.elapsed = *e, time.Since(start)
			return res
		case proto.FrameResponse:
			h, _ := proto.ParseResponseHeader(p)
			res.status, res.header = h.Status, h.Header
		}
		body, err := io.ReadAll(rd.Body())
		res.body, res.elapsed = body, time.Since(start)
		var end *proto.End
		if errors.As(err, &end) {
			res.end = *end
		} else if err != nil {
			r.t.Fatalf("reading the body: %v", err)
		}
		return res
	}
}

// chat is an OpenAI chat request body.
func chat(model string, stream bool) string {
	s := `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]`
	if stream {
		s += `,"stream":true`
	}
	return s + "}"
}

// keysSeen lists the provider key of each request the fake received.
func (r *rig) keysSeen() []string {
	var out []string
	for _, q := range r.fake.Requests() {
		out = append(out, fakeprovider.PresentedKey(&http.Request{Header: q.Header}))
	}
	return out
}

func (r *rig) state(key string) upstream.KeyState {
	fp := upstream.NewKey(key).Fingerprint()
	for _, s := range r.reg.KeyStatuses() {
		if s.Provider == "openai" && s.Fingerprint == fp {
			return s.State
		}
	}
	r.t.Fatalf("no key %s", key)
	return 0
}
