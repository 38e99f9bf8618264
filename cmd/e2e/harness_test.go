package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/admin"
	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/edge"
	"github.com/strait/strait/edge/usagedb"
	"github.com/strait/strait/scripts/fakeprovider"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/wstun"
)

func TestMain(m *testing.M) {
	code := m.Run()
	removeBinaries()
	if code == 0 && !scanForSecrets(os.Stderr) {
		code = 1
	}
	if code != 0 {
		os.Exit(code)
	}
	goleak.VerifyTestMain(noRun{},
		// The SDKs' and net/http's idle keep-alive connections are closed
		// in cleanup, but their reader goroutines exit asynchronously.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		// genai pulls in opencensus, whose view worker starts in init().
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
		// lumberjack starts one mill goroutine per log file and never stops
		// it (natefinch/lumberjack#56): one per audit log, per process.
		goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"),
	)
}

// noRun lets goleak.VerifyTestMain check for leaks after the tests (and the
// secret scan) have run already.
type noRun struct{}

func (noRun) Run() int { return 0 }

// Keys the fake provider accepts: the relay must inject exactly these.
var providerKeys = fakeprovider.Keys{
	OpenAI: "sk-upstream-openai-0123456789", Anthropic: "sk-ant-upstream-0123456789", Gemini: "AIza-upstream-0123456789",
}

// clientKey is the key SDKs present to the edge; it must never go upstream.
const clientKey = "strait-client-key-abcdef0123456789"

// stack is one edge, one relay and one fake provider on loopback.
type stack struct {
	t         testing.TB
	dir       string
	fake      *fakeprovider.Server
	fakeSrv   *httptest.Server
	fakeURL   string
	proxy     *cutProxy // between edge and relay, when stackOptions.viaProxy
	gate      *udpGate  // before the QUIC listener, when stackOptions.quicGate
	relayAddr string    // TCP (WebSocket)
	quicAddr  string    // UDP (QUIC)
	transport string    // what the edge uses: ws, quic or auto
	edgeURL   string
	client    *http.Client // trusts the edge's front certificate

	relayAdmin string // base URL of the relay's admin listener
	edgeAdmin  string // base URL of the edge's admin listener
	// relayMetrics and edgeMetrics are the binaries' registries.
	relayMetrics, edgeMetrics *admin.Registry

	relayLogs *observer.ObservedLogs
	edgeLogs  *observer.ObservedLogs

	upstreamCA     string   // set when the fake serves TLS
	upstreamProtos sync.Map // protocols the fake saw, with upstreamH2
	upstreamConns  atomic.Int64

	relayStop func()
	edgeStop  func()
	edgeReady func(context.Context) error
	edge      *edge.Edge
	usage     *usagedb.DB // the edge's usage store
	opts      stackOptions
}

type stackOptions struct {
	fake         fakeprovider.Config
	edgeMaxBody  int64
	sessionWait  time.Duration
	relayTLSEdit func(*relaycmd.File)
	// viaProxy puts a cutProxy between edge and relay (TCP only).
	viaProxy bool
	// transport is the edge's transport: ws (default), quic or auto.
	transport string
	// quicGate puts a udpGate (closed at first) in front of the relay's
	// QUIC listener; quicRetry is the edge's quic_retry then.
	quicGate     bool
	quicGateOpen bool // the gate starts open
	quicRetry    time.Duration
	// upstreamH2 serves the fake provider over TLS with HTTP/2, trusted by
	// the relay through upstream_ca; upstream connections are counted.
	upstreamH2 bool
	// edgeEdit changes the edge's config before it starts.
	edgeEdit func(*edgecmd.File)
	// quiet runs both binaries without logs, as benchmarks want: the
	// recorded logs would grow with every request.
	quiet bool
	// upstream, when set, wraps the fake provider (plain HTTP only).
	upstream func(http.Handler) http.Handler
}

func newStack(t testing.TB, opts stackOptions) *stack {
	t.Helper()
	s := &stack{t: t, dir: t.TempDir(), opts: opts}
	_, err := certs.Generate(certs.GenerateOptions{Dir: s.dir, FrontDNS: []string{"localhost"}, FrontIPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	watchSecrets(t, s.dir)
	if opts.fake.Keys == (fakeprovider.Keys{}) {
		opts.fake.Keys = providerKeys
	}
	s.fake = fakeprovider.New(opts.fake)
	s.startFake(opts.upstreamH2, opts.upstream)

	s.transport = opts.transport
	if s.transport == "" {
		s.transport = "ws"
	}
	s.startRelay(relaycmd.Sockets{}, opts.relayTLSEdit)
	if opts.viaProxy {
		s.proxy = newCutProxy(t, s.relayAddr)
	}
	if opts.quicGate {
		s.gate = newUDPGate(t, s.quicAddr)
		s.gate.open.Store(opts.quicGateOpen)
	}
	s.startEdge(opts)
	s.client = s.httpClient()
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		s.stopEdge()
		s.stopRelay()
	})
	s.waitReady()
	return s
}

func (s *stack) startFake(h2 bool, wrap func(http.Handler) http.Handler) {
	if !h2 {
		var h http.Handler = s.fake
		if wrap != nil {
			h = wrap(h)
		}
		s.fakeSrv = httptest.NewServer(h)
	} else {
		s.fakeSrv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.upstreamProtos.Store(r.Proto, true)
			s.fake.ServeHTTP(w, r)
		}))
		s.fakeSrv.EnableHTTP2 = true
		s.fakeSrv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.upstreamConns.Add(1)
			}
		}
		s.fakeSrv.StartTLS()
		der := s.fakeSrv.Certificate().Raw
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := os.WriteFile(s.path("upstream-ca.pem"), pemBytes, 0o644); err != nil {
			s.t.Fatal(err)
		}
		s.upstreamCA = s.path("upstream-ca.pem")
	}
	s.t.Cleanup(s.fakeSrv.Close)
	s.fakeURL = s.fakeSrv.URL
}

func (s *stack) path(name string) string { return filepath.Join(s.dir, name) }

// fakeControls lets the tests' X-Fake-* headers (pace, faults) through the
// relay, which drops unknown X-* headers by default.
var fakeControls = []string{"X-Fake-*"}

// relayFile is the relay's config as a user would write it.
func (s *stack) relayFile(listen string) *relaycmd.File {
	return &relaycmd.File{
		Listen:           listen,
		TLS:              relaycmd.TLSFile{Cert: s.path("relay.pem"), Key: s.path("relay-key.pem"), ClientCA: s.path("ca.pem")},
		Heartbeat:        time.Second,
		HeartbeatTimeout: 2 * time.Second,
		DrainTimeout:     2 * time.Second,
		// Short cooldowns and backoffs keep retried errors (fail-429) quick.
		Keys:  relaycmd.KeysFile{MaxCooldown: 200 * time.Millisecond},
		Retry: relaycmd.RetryFile{Backoff: 10 * time.Millisecond},
		Providers: []relaycmd.ProviderFile{
			{Kind: "openai", BaseURL: s.fakeURL, APIKeys: []string{providerKeys.OpenAI}, AllowHeaders: fakeControls},
			{Kind: "anthropic", BaseURL: s.fakeURL, APIKeys: []string{providerKeys.Anthropic}, AllowHeaders: fakeControls},
			{Kind: "gemini", BaseURL: s.fakeURL, APIKeys: []string{providerKeys.Gemini}, AllowHeaders: fakeControls},
			{Name: "deepseek", Kind: "openai-compatible", BaseURL: s.fakeURL, APIKeys: []string{providerKeys.OpenAI}, AllowHeaders: fakeControls},
		},
	}
}

// serveRelay builds a relay from f on new loopback TCP and UDP sockets,
// serves it until the test ends, and returns it with those sockets.
func serveRelay(t *testing.T, f *relaycmd.File, log *zap.Logger) (*relaycmd.Server, relaycmd.Sockets) {
	t.Helper()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	socks := relaycmd.Sockets{TCP: tcp, UDP: udp}
	srv, err := relaycmd.Build(f, socks, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv, socks
}

// startRelay starts the relay on both transports, on the given sockets or
// on new loopback ports.
func (s *stack) startRelay(socks relaycmd.Sockets, edit func(*relaycmd.File)) {
	s.t.Helper()
	var err error
	if socks.TCP == nil {
		if socks.TCP, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			s.t.Fatal(err)
		}
	}
	if socks.UDP == nil {
		if socks.UDP, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
			s.t.Fatal(err)
		}
	}
	if socks.Admin == nil {
		if socks.Admin, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			s.t.Fatal(err)
		}
	}
	s.relayAddr, s.quicAddr = socks.TCP.Addr().String(), socks.UDP.LocalAddr().String()
	s.relayAdmin = "http://" + socks.Admin.Addr().String()
	f := s.relayFile(s.relayAddr)
	f.UpstreamCA = s.upstreamCA
	if edit != nil {
		edit(f)
	}
	core, logs := observer.New(zap.DebugLevel)
	s.relayLogs = logs
	srv, err := relaycmd.Build(f, socks, s.logger(core))
	if err != nil {
		s.t.Fatal(err)
	}
	s.relayMetrics = srv.Metrics
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	s.relayStop = func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("relay: %v", err)
		}
	}
}

// logger is a binary's logger: recorded in core and the shared sink, or
// none for a quiet stack.
func (s *stack) logger(core zapcore.Core) *zap.Logger {
	if s.opts.quiet {
		return zap.NewNop()
	}
	return zap.New(teeToSink(core))
}

func (s *stack) stopRelay() {
	if s.relayStop != nil {
		s.relayStop()
		s.relayStop = nil
	}
}

func (s *stack) edgeFile(opts stackOptions) *edgecmd.File {
	return &edgecmd.File{
		Listen: "127.0.0.1:0",
		TLS:    edgecmd.CertFile{Cert: s.path("front.pem"), Key: s.path("front-key.pem")},
		Tunnel: edgecmd.TunnelFile{
			Relays: []edgecmd.RelayFile{{Address: s.tunnelAddr(), QUICAddress: s.quicDialAddr(),
				Transport: tunnel.Transport(s.transport), ServerName: "localhost"}},
			Cert: s.path("edge.pem"), Key: s.path("edge-key.pem"), CA: s.path("ca.pem"),
			Heartbeat: time.Second, HeartbeatTimeout: 2 * time.Second,
			ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
			QUICFallbackAfter: 500 * time.Millisecond, QUICRetry: opts.quicRetry,
		},
		ClientKeys:   []edgecmd.ClientKey{{Name: "test-app", Key: clientKey}},
		MaxBody:      opts.edgeMaxBody,
		SessionWait:  opts.sessionWait,
		DrainTimeout: 2 * time.Second,
	}
}

// quicDialAddr is where the edge dials QUIC: the relay, or the gate.
func (s *stack) quicDialAddr() string {
	if s.gate != nil {
		return s.gate.addr()
	}
	return s.quicAddr
}

// tunnelAddr is where the edge dials: the relay, or the proxy before it.
func (s *stack) tunnelAddr() string {
	if s.proxy != nil {
		return s.proxy.addr()
	}
	return s.relayAddr
}

func (s *stack) startEdge(opts stackOptions) {
	s.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	s.edgeLogs = logs
	f := s.edgeFile(opts)
	// Only the stack's own edge has the store (it is locked while open)
	// and the admin listener.
	f.DataDir, f.Audit = s.path("edge-data"), edgecmd.AuditFile{Path: s.path("audit.jsonl")}
	f.AdminListen = "127.0.0.1:0"
	if opts.edgeEdit != nil {
		opts.edgeEdit(f)
	}
	s.opts = opts
	srv, err := edgecmd.Build(f, ln, s.logger(core))
	if err != nil {
		s.t.Fatal(err)
	}
	s.edgeURL = "https://" + ln.Addr().String()
	s.edgeAdmin = "http://" + srv.Admin.Addr().String()
	s.edgeMetrics = srv.Metrics
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	// Once: a test may stop the edge from its own goroutine while the
	// cleanup stops it too.
	s.edgeStop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			s.t.Errorf("edge: %v", err)
		}
	})
	s.edgeReady = srv.Edge.WaitReady
	s.edge, s.usage = srv.Edge, srv.Usage
}

func (s *stack) stopEdge() {
	if stop := s.edgeStop; stop != nil {
		stop()
	}
}

func (s *stack) waitReady() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.edgeReady(ctx); err != nil {
		s.t.Fatalf("edge never connected to the relay: %v", err)
	}
}

// httpClient trusts the test CA, as a user's SDK would trust a real
// certificate on the edge. It speaks HTTP/1.1, as the Python and Node
// SDKs do (and the edge's streamed answers then leave net/http, see
// edge/detach); http2Client is the Go SDKs' default.
func (s *stack) httpClient() *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: frontRoots(s.t, s.dir)}, MaxIdleConnsPerHost: 256}
	return &http.Client{Transport: tr}
}

// http2Client is httpClient over HTTP/2, as http.DefaultTransport has it.
func (s *stack) http2Client() *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: frontRoots(s.t, s.dir)}, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 256}
	return &http.Client{Transport: tr}
}

// frontRoots trusts the CA that `certs --front-dns` signed the edge's
// public certificate with.
func frontRoots(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, "front-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return pool
}

// ctx returns a context bounded for one test step.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// transports are the edge transports every end-to-end behaviour runs over.
var transports = []string{"ws", "quic"}

// eachTransport runs body once per transport as subtests.
func eachTransport(t *testing.T, body func(t *testing.T, transport string)) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { body(t, tr) })
	}
}

func (s *stack) String() string {
	return fmt.Sprintf("edge %s relay %s fake %s", s.edgeURL, s.relayAddr, s.fakeURL)
}

func newDialer(t *testing.T, addr string, tc *tls.Config) *wstun.Dialer {
	t.Helper()
	d, err := wstun.NewDialer(addr, tc, wstun.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
