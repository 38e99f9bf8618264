// Package edge is the domestic half of Strait: an HTTPS server that accepts
// unmodified official SDKs, authenticates them by client key, and carries
// each request over a pooled mutual-TLS tunnel to a relay.
package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/strait/strait/edge/apierr"
	"github.com/strait/strait/edge/audit"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/detach"
	"github.com/strait/strait/edge/forward"
	"github.com/strait/strait/edge/guard"
	"github.com/strait/strait/edge/ingress"
	"github.com/strait/strait/edge/quota"
	"github.com/strait/strait/edge/ratelimit"
	"github.com/strait/strait/edge/store"
	"github.com/strait/strait/edge/usage"
	"github.com/strait/strait/edge/usagedb"
	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/pool"
)

// Config configures an Edge.
type Config struct {
	// Keys are the client keys; required. SetKeys replaces them later.
	Keys *auth.Keys
	// Policy is what the edge enforces beyond the keys themselves.
	Policy Policy
	// Usage, when set, persists usage per client, model and day, and
	// quotas count from it across restarts. The edge does not close it.
	Usage *usagedb.DB
	// Shared, when set, holds rate limits, quotas and usage for several
	// edges (Redis) instead of this process and Usage. The edge does not
	// close it.
	Shared store.Shared
	// Cache configures the response cache; nil caches model listings only
	// (see CacheConfig).
	Cache *CacheConfig
	// Audit, when set, receives one record per request. The edge does not
	// close it.
	Audit *audit.Log
	// Relays are the tunnel dialers, one per relay. Required.
	Relays []tunnel.Dialer
	// DomesticRelays are the relay group marked domestic: relays inside
	// the country, where the border guard sends requests it keeps at home
	// (keep_home). They get their own pool of the same kind.
	DomesticRelays []tunnel.Dialer
	// Guard is the border guard; nil means none. SetGuard replaces it.
	Guard *guard.Set
	// SessionsPerRelay is the number of tunnel sessions per relay; zero means 2.
	SessionsPerRelay int
	// ReconnectMin and ReconnectMax bound reconnect backoff; zero means
	// 100ms and 30s.
	ReconnectMin, ReconnectMax time.Duration
	// Pool tunes the rest of the tunnel pool (probes, breaker, backoff
	// reset, MaxSessionsPerRelay and Scale for sessions that follow the
	// load); its Dialers, SessionsPerRelay, backoff bounds and Logger are
	// taken from the fields above.
	Pool pool.Config
	// MaxBodyBytes caps request bodies, and the JSON answers the border
	// guard holds whole to restore them; zero means 32 MiB.
	MaxBodyBytes int64
	// ReadHeaderTimeout bounds reading a request's headers; zero means 10s.
	ReadHeaderTimeout time.Duration
	// BodyIdleTimeout bounds the wait for each next piece of a request
	// body; zero means 30s. BodyTimeout bounds reading the whole body;
	// zero means 2m (a full 32 MiB body at 280 KB/s). A client that
	// trickles or stalls its body cannot hold a connection longer.
	BodyIdleTimeout, BodyTimeout time.Duration
	// ClientWriteTimeout cuts a response whose client has taken no byte of
	// it for this long, which frees its tunnel stream; zero means 60s.
	ClientWriteTimeout time.Duration
	// ClientBufferBudget bounds, in bytes, what responses blocked on
	// clients that do not read may hold at the edge in total (each what
	// its tunnel stream has received and the client not taken, at most the
	// stream window): past it, the response blocked the longest is cut.
	// Zero means 256 MiB.
	ClientBufferBudget int64
	// Hedge says which requests with a small body
	// (forward.DefaultHedgeMaxBody) go on two sessions to one relay at
	// once, when two are up; the first copy to reach the relay goes
	// upstream, and the relay sends its answer on both (see
	// forward.Forwarder.SetHedge). The zero value is forward.HedgeAuto.
	Hedge forward.HedgeMode
	// SessionWait is how long a request waits for a tunnel session when none
	// is up; zero means 10s.
	SessionWait time.Duration
	// DrainTimeout bounds how long Serve lets in-flight requests finish after
	// its context ends; zero means 30s.
	DrainTimeout time.Duration
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
	// Metrics receives the edge's Prometheus collectors; nil means a
	// private registry, served by MetricsHandler.
	Metrics prometheus.Registerer
}

// Edge serves clients.
type Edge struct {
	cfg      Config
	log      *zap.Logger
	pool     *pool.Pool
	fwd      *forward.Forwarder
	home     *pool.Pool         // the domestic relay group; nil without one
	homeFwd  *forward.Forwarder // through home
	gatherer prometheus.Gatherer
	metrics  *edgeMetrics
	labels   *modelLabels

	keys atomic.Pointer[auth.Keys]
	// keysApplied is the key set labels and ledger follow (see applyKeys,
	// its only user after New); keysPending counts SetKeys calls whose set
	// it may not follow yet.
	keysApplied *auth.Keys
	keysPending atomic.Int64
	guard       atomic.Pointer[guard.Set]
	policy      Policy
	limits      *ratelimit.Limiter // per client key name
	ipLimit     *ratelimit.Limiter // per source IP, for requests without a valid key
	ledger      *quota.Ledger
	store       *usagedb.DB // the embedded usage store, nil with Shared
	// admitter decides admission (store.Local over limits and ledger, or
	// Shared); usage keeps usage (store or Shared; nil: not kept).
	admitter store.Admitter
	usage    store.Usage
	shared   store.Shared
	audit    *audit.Log
	cache    *respCache // nil: nothing cached
	// streams are the answers streaming on connections taken from
	// net/http (see detached.go); nil outside Serve.
	streams atomic.Pointer[detach.Registry]
}

// New builds the edge and starts connecting to the relays in the background.
// Close releases the tunnel sessions.
func New(cfg Config) (*Edge, error) {
	if cfg.Keys == nil {
		return nil, errors.New("edge: no client keys")
	}
	cfg = withDefaults(cfg)
	pc := cfg.Pool
	pc.Dialers, pc.SessionsPerRelay, pc.Logger = cfg.Relays, cfg.SessionsPerRelay, cfg.Logger
	pc.MinBackoff, pc.MaxBackoff = cfg.ReconnectMin, cfg.ReconnectMax
	p, err := pool.New(pc)
	if err != nil {
		return nil, err
	}
	home, err := newHomePool(pc, cfg.DomesticRelays)
	if err != nil {
		p.Close()
		return nil, err
	}
	e := &Edge{home: home, cfg: cfg, log: cfg.Logger, pool: p, fwd: forward.New(viaOpener{p}, cfg.SessionWait, cfg.Logger),
		policy: cfg.Policy, store: cfg.Usage, audit: cfg.Audit}
	e.fwd.ClientWriteTimeout = cfg.ClientWriteTimeout
	e.fwd.SetClientBufferBudget(cfg.ClientBufferBudget)
	e.fwd.SetHedge(cfg.Hedge, 0)
	if home != nil {
		e.homeFwd = forward.New(viaOpener{home}, cfg.SessionWait, cfg.Logger)
		e.homeFwd.ClientWriteTimeout = cfg.ClientWriteTimeout
		e.homeFwd.SetClientBufferBudget(cfg.ClientBufferBudget)
		e.homeFwd.SetHedge(cfg.Hedge, 0)
	}
	e.keys.Store(cfg.Keys)
	e.keysApplied = cfg.Keys
	e.guard.Store(cfg.Guard)
	cc := CacheConfig{}
	if cfg.Cache != nil {
		cc = *cfg.Cache
	}
	if len(cc.Keys) > 0 || len(cc.Paths) > 0 || cc.ModelsTTL >= 0 {
		e.cache = newRespCache(cc)
		if sc, ok := cfg.Shared.(SharedCache); ok {
			e.cache.shared = sc
		}
	}
	e.labels = newModelLabels(cfg.Keys, e.policy.Prices)
	e.limits, e.ipLimit = ratelimit.New(e.policy.Now), ratelimit.New(e.policy.Now)
	e.ledger = quota.NewLedger(e.policy.Now)
	e.admitter = store.Local{Limits: e.limits, Ledger: e.ledger}
	if e.store != nil {
		e.usage = e.store
	}
	if cfg.Shared != nil {
		e.shared, e.admitter, e.usage, e.store = cfg.Shared, cfg.Shared, cfg.Shared, nil
	}
	if err := e.loadUsage(nil); err != nil {
		e.Close()
		return nil, err
	}
	if err := e.registerMetrics(cfg.Metrics); err != nil {
		e.Close()
		return nil, fmt.Errorf("edge metrics: %w", err)
	}
	return e, nil
}

// SetKeys swaps in a new key set (keys file changed, SIGHUP); requests
// already past authentication keep the client they had. When another
// SetKeys is still updating the metric labels and the quota ledger, that
// one finishes the work for k too and this one returns at once.
func (e *Edge) SetKeys(k *auth.Keys) {
	if k != nil {
		e.keys.Store(k)
		e.applyKeys()
	}
}

// loadUsage primes the quota ledger with this month's usage from the store,
// so quotas hold across restarts: of every client, or only of those in
// clients when it is not nil.
func (e *Edge) loadUsage(clients map[string]bool) error {
	if e.store == nil {
		return nil
	}
	now := e.policy.Now().UTC()
	rows, err := e.store.Query(usagedb.Filter{From: time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).Format("2006-01-02")})
	if err != nil {
		return fmt.Errorf("loading usage: %w", err)
	}
	for _, r := range rows {
		if clients != nil && !clients[r.Client] {
			continue
		}
		t := quota.Totals{Tokens: r.Usage.Total(), Cost: r.Cost}
		e.ledger.Load(r.Client, r.Day, t)
		e.ledger.Load(r.Client, r.Day[:7], t)
	}
	return nil
}

func withDefaults(cfg Config) Config {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.SessionWait <= 0 {
		cfg.SessionWait = 10 * time.Second
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 10 * time.Second
	}
	if cfg.BodyIdleTimeout <= 0 {
		cfg.BodyIdleTimeout = 30 * time.Second
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 2 * time.Minute
	}
	if cfg.ClientWriteTimeout <= 0 {
		cfg.ClientWriteTimeout = time.Minute
	}
	if cfg.ClientBufferBudget <= 0 {
		cfg.ClientBufferBudget = 256 << 20
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.Policy = cfg.Policy.withDefaults()
	return cfg
}

// WaitReady blocks until at least one tunnel session is up or ctx ends.
func (e *Edge) WaitReady(ctx context.Context) error { return e.pool.WaitLive(ctx, 1) }

// Ready reports, without waiting, whether at least one tunnel session is up
// and the usage store writes.
func (e *Edge) Ready(context.Context) error {
	if e.pool.Live() == 0 {
		return errors.New("no tunnel session is up")
	}
	if err := e.storeReady(); err != nil {
		return err
	}
	if e.shared != nil {
		return e.shared.Ready(context.Background())
	}
	return nil
}

// Close closes the tunnel sessions. Call it after Serve has returned.
func (e *Edge) Close() error {
	err := e.pool.Close()
	if e.home != nil {
		err = errors.Join(err, e.home.Close())
	}
	return err
}

// Serve serves HTTPS on ln until ctx ends, then stops accepting and lets
// in-flight requests finish for up to DrainTimeout.
func (e *Edge) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	tlsConfig = serverTLS(tlsConfig)
	arr := newArrivals(e.pool) // new clients count as streams on their way to the tunnel
	srv := &http.Server{
		Handler:           e.Handler(),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: e.cfg.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ConnState:         arr.connState,
	}
	httpLog := e.log.Named("http")
	if stdLog, err := zap.NewStdLogAt(httpLog, zap.DebugLevel); err == nil {
		srv.ErrorLog = stdLog // TLS probes and broken clients are noise at info
	}
	// The handshakes run before http.Server sees a connection, as
	// net/http would time them (ReadHeaderTimeout): see acceptClients.
	hl := acceptClients(ln, tlsConfig, e.cfg.ReadHeaderTimeout, arr, httpLog)
	defer func() { _ = hl.Close(); hl.Wait() }()
	streams := detach.New(hl.Return, clientSweep, srv.IdleTimeout)
	e.streams.Store(streams)
	defer func() {
		// Every detached answer has ended (drainStreams), or none began.
		e.streams.Store(nil)
		streams.Close()
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(hl) }()
	select {
	case err := <-errc: // the listener failed: cut what streams on
		streams.Refuse()
		cut, cancel := context.WithCancel(context.Background())
		cancel()
		e.drainStreams(cut, streams)
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), e.cfg.DrainTimeout)
	defer cancel()
	// Before Shutdown: an answer that begins during the drain stays with
	// net/http, which waits for it, and one detached already closes its
	// connection at its end.
	streams.Refuse()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		e.log.Warn("drain timeout: closing remaining client connections")
		err = srv.Close()
	}
	e.drainStreams(sctx, streams)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// Handler returns the HTTP handler for client requests.
func (e *Edge) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", e.health)
	mux.HandleFunc("/", e.serveAPI)
	return mux
}

// health answers 503 without a session abroad. The domestic group's
// sessions are reported, not required: without them only keep_home
// requests fail, and the edge should not leave a load balancer for that.
func (e *Edge) health(w http.ResponseWriter, _ *http.Request) {
	live := e.pool.Live()
	w.Header().Set("Content-Type", "application/json")
	if live == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	body := map[string]any{"tunnel_sessions": live}
	if e.home != nil {
		body["domestic_sessions"] = e.home.Live()
	}
	_ = json.NewEncoder(w).Encode(body)
}

// pools are the edge's relay groups: abroad, then domestic when there is one.
func (e *Edge) pools() []*pool.Pool {
	if e.home == nil {
		return []*pool.Pool{e.pool}
	}
	return []*pool.Pool{e.pool, e.home}
}

// call is the state of one client request, from arrival to the last log
// line.
type call struct {
	e     *Edge
	r     *http.Request
	tap   *tap
	id    string
	start time.Time
	route ingress.Route

	client      auth.Client // zero until authenticated
	body        []byte
	bodyLen     int  // len(body) before dropBody let it go
	bodyRead    bool // the whole body arrived; until then a refusal closes the connection
	req         usage.Request
	estimate    int64 // tokens taken from the buckets and reserved
	reservation store.Hold
	hideUsage   bool          // the edge added include_usage; the client must not see it
	cacheKey    string        // set: record the response for the cache under this key
	cacheTTL    time.Duration // how long the recorded response is served
	cacheHit    bool          // answered from the cache

	forwarded bool
	forwardAt time.Time
	headerAt  time.Time
	timing    proto.RelayTiming
	via       via // the relay and session that carried it
	status    int
	reason    string // why the edge refused it, for metrics and logs
	detail    string
	res       forward.Result
	guard     guardRecord // what the border guard found and did
}

func (e *Edge) serveAPI(w http.ResponseWriter, r *http.Request) {
	c := &call{e: e, r: r, id: newRequestID(), start: time.Now()}
	c.tap = &tap{ResponseWriter: w, c: c}
	detached := false
	defer func() {
		if !detached { // a detached answer's own goroutine finishes it
			c.finish()
		}
	}()
	var req forward.Request
	fwd := e.prepare(c, &req)
	if fwd == nil {
		return
	}
	c.forwarded, c.forwardAt = true, time.Now()
	c.guard.forwarding = true
	res := fwd.Forward(c.tap, r.WithContext(withVia(r.Context(), &c.via)), &req)
	if res.Detached { // c is no longer this goroutine's
		detached = true
		return
	}
	c.res = res
	c.guard.forwarding = false
}

// prepare runs the checks before a request may cross (route, key,
// endpoint, body, border guard, cache, limits) and fills req with what
// crosses. It returns the forwarder to send it with, or nil when the
// request was answered here.
//
// It is apart from serveAPI to keep its frame off the stack while the
// response streams: the handler parks there for the stream's life, and
// every KiB of frames under it is stack the goroutine keeps (see
// forward's sendHeader).
func (e *Edge) prepare(c *call, req *forward.Request) *forward.Forwarder {
	r := c.r
	route, ok := ingress.Classify(r.URL.Path, r.Header)
	if !ok {
		c.route.Family = llmapi.Guess(r.Header, r.URL.RawQuery)
		c.refuse(&rejection{reason: "not_found", err: &apierr.Error{Kind: apierr.NotFound,
			Message: "Strait does not serve " + llmapi.Truncate(r.Method+" "+r.URL.Path) + " (OpenAI /v1/..., Anthropic /v1/messages, Gemini /v1beta/...)"}})
		return nil
	}
	c.route = route
	key, query := ingress.TakeClientKey(r.Header, r.URL.RawQuery)
	if rej := e.authenticate(c, key); rej != nil {
		c.refuse(rej)
		return nil
	}
	if rej := e.permitEndpoint(c); rej != nil {
		c.refuse(rej)
		return nil
	}
	body, aerr := e.readBody(c.tap, r)
	if aerr != nil {
		reason := "bad_request"
		if aerr.Kind == apierr.RequestTimeout {
			reason = "body_timeout"
		}
		c.refuse(&rejection{err: aerr, reason: reason})
		return nil
	}
	c.bodyRead = true
	c.body = body
	if rej := e.inspect(c); rej != nil {
		c.refuse(rej)
		return nil
	}
	g, rej := e.check(c)
	if rej != nil {
		c.refuse(rej)
		return nil
	}
	body = c.body // as the guard left it
	// The restorer goes in before the cache: a cached answer (recorded as
	// it crossed, placeholders and all) is restored with this request's
	// values.
	g.answer(c)
	if e.serveCached(c, query) { // a hit spends no rate limit nor quota: nothing crosses the border
		return nil
	}
	if rej := e.admit(c); rej != nil {
		c.refuse(rej)
		return nil
	}
	if route.Family == llmapi.OpenAI && c.req.Stream && !c.req.IncludeUsage && strings.HasSuffix(route.Path, "/chat/completions") {
		body, c.hideUsage = usage.ForceIncludeUsage(body)
	}
	*req = forward.Request{ID: c.id, Family: route.Family, Provider: route.Provider,
		Method: r.Method, Path: route.Path, RawQuery: query, Header: ingress.ForwardHeader(r.Header), Body: body, Model: c.req.Model,
		Stream: c.req.Stream, BodyDone: c.dropBody, Detach: c.detach}
	if g.home {
		return e.homeFwd
	}
	return e.fwd
}

// dropBody lets go of the request body once the forwarder no longer needs
// it (forward.Request.BodyDone), so an open stream does not hold its
// prompt: only its length is kept, for the metrics and the logs, and,
// when the audit log records bodies, a copy of what it records. The body
// stays when the border guard rewrote it: the guard's pooled outcome holds
// it until finish.
func (c *call) dropBody() {
	if c.guard.outcome != nil {
		return
	}
	var kept []byte
	if c.e.audit.Bodies() {
		kept = bytes.Clone(auditBody(c.body))
	}
	c.bodyLen, c.body = len(c.body), kept
}

// bodyBytes is the request body's size, also after dropBody.
func (c *call) bodyBytes() int { return max(c.bodyLen, len(c.body)) }

// refuse answers with the rejection's error in the caller's format.
func (c *call) refuse(rej *rejection) {
	c.reason, c.detail = rej.reason, rej.err.Message
	for k, v := range rej.header {
		c.tap.Header()[k] = v
	}
	if !c.bodyRead {
		c.settleUnreadBody()
	}
	apierr.Write(c.tap, c.route.Family, rej.err)
}

// settleUnreadBody deals with the body of a request refused before its
// body was read. Without it, net/http reads up to 256 KiB of the unread
// body before it sends the answer, and again after the handler, to reuse
// the connection: a client without a key could hold a connection (and a
// goroutine) for as long as it trickles its body. A body already on its
// way in full is read within unreadBodyGrace and the connection stays
// reusable; otherwise the answer closes it, and a read deadline in the past
// makes net/http's own reads fail at once. HTTP/2 resets the stream
// instead, and its connection may carry other streams.
func (c *call) settleUnreadBody() {
	if c.r.ProtoMajor != 1 || c.r.ContentLength == 0 {
		return
	}
	rc := http.NewResponseController(c.tap)
	if c.r.Header.Get("Expect") == "" && rc.SetReadDeadline(time.Now().Add(unreadBodyGrace)) == nil {
		n, err := io.Copy(io.Discard, io.LimitReader(c.r.Body, maxUnreadBody+1))
		if err == nil && n <= maxUnreadBody {
			_ = rc.SetReadDeadline(time.Time{})
			return
		}
	}
	c.tap.Header().Set("Connection", "close")
	_ = rc.SetReadDeadline(time.Now())
}

// unreadBodyGrace and maxUnreadBody bound how long and how much of a
// refused request's body the edge reads to keep its connection.
const (
	unreadBodyGrace = 100 * time.Millisecond
	maxUnreadBody   = 64 << 10
)

// readBody reads the whole body under the size limit and the body
// deadlines, so a connection is never reused with unread bytes in it.
// inspect checks that a JSON body is JSON, in the same pass that reads
// its model.
func (e *Edge) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apierr.Error) {
	limit := e.cfg.MaxBodyBytes
	tooLarge := &apierr.Error{Kind: apierr.TooLarge,
		Message: "request body exceeds Strait's limit of " + humanBytes(limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	rc := http.NewResponseController(w)
	db := &deadlineBody{r: http.MaxBytesReader(w, r.Body, limit), rc: rc,
		idle: e.cfg.BodyIdleTimeout, end: time.Now().Add(e.cfg.BodyTimeout)}
	body, err := io.ReadAll(db)
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return nil, tooLarge
		case errors.As(err, &ne) && ne.Timeout():
			return nil, &apierr.Error{Kind: apierr.RequestTimeout, Message: "request body did not arrive in time (Strait allows " +
				e.cfg.BodyIdleTimeout.String() + " between pieces and " + e.cfg.BodyTimeout.String() + " in all)"}
		}
		return nil, &apierr.Error{Kind: apierr.InvalidRequest, Message: "could not read request body: " + err.Error()}
	}
	// No deadline from here on: net/http keeps reading the connection in
	// the background to notice a client that goes away during a long
	// answer, and a deadline would end that answer.
	_ = rc.SetReadDeadline(time.Time{})
	return body, nil
}

// deadlineBody reads a request body under two deadlines: every Read must
// get data within idle, and the whole body must be in by end.
type deadlineBody struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	end  time.Time
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	// An error means the writer cannot set deadlines (a test recorder);
	// the server's own limits are then all there is.
	d := time.Now().Add(b.idle)
	if d.After(b.end) {
		d = b.end
	}
	_ = b.rc.SetReadDeadline(d)
	return b.r.Read(p)
}

func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json"
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

func humanBytes(n int64) string {
	const mib = 1 << 20
	if n%mib == 0 {
		return itoa(n/mib) + " MiB"
	}
	return itoa(n) + " bytes"
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
