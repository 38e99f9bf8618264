// Package edge is the domestic half of Strait: an HTTPS server that accepts
// unmodified official SDKs, authenticates them by client key, and carries
// each request over a pooled mutual-TLS tunnel to a relay.
package edge

import (
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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/strait/strait/edge/apierr"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/forward"
	"github.com/strait/strait/edge/ingress"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/pool"
)

// Config configures an Edge.
type Config struct {
	Keys *auth.Keys // required
	// Relays are the tunnel dialers, one per relay. Required.
	Relays []tunnel.Dialer
	// SessionsPerRelay is the number of tunnel sessions per relay; zero means 2.
	SessionsPerRelay int
	// ReconnectMin and ReconnectMax bound reconnect backoff; zero means
	// 100ms and 30s.
	ReconnectMin, ReconnectMax time.Duration
	// Pool tunes the rest of the tunnel pool (probes, breaker, backoff
	// reset); its Dialers, SessionsPerRelay, backoff bounds and Logger are
	// taken from the fields above.
	Pool pool.Config
	// MaxBodyBytes caps request bodies; zero means 32 MiB.
	MaxBodyBytes int64
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
	gatherer prometheus.Gatherer
	keys     atomic.Pointer[auth.Keys] // swapped whole by SetKeys (config reload)
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
	e := &Edge{cfg: cfg, log: cfg.Logger, pool: p, fwd: forward.New(p, cfg.SessionWait, cfg.Logger)}
	e.keys.Store(cfg.Keys)
	if err := e.registerMetrics(cfg.Metrics); err != nil {
		p.Close()
		return nil, fmt.Errorf("edge metrics: %w", err)
	}
	return e, nil
}

func withDefaults(cfg Config) Config {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.SessionWait <= 0 {
		cfg.SessionWait = 10 * time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg
}

// SetKeys replaces the accepted client keys (a config reload); requests
// already past the key check are not affected.
func (e *Edge) SetKeys(k *auth.Keys) {
	if k != nil {
		e.keys.Store(k)
	}
}

// WaitReady blocks until at least one tunnel session is up or ctx ends.
func (e *Edge) WaitReady(ctx context.Context) error { return e.pool.WaitLive(ctx, 1) }

// Ready reports, without waiting, whether at least one tunnel session is up.
func (e *Edge) Ready(context.Context) error {
	if e.pool.Live() == 0 {
		return errors.New("no tunnel session is up")
	}
	return nil
}

// Close closes the tunnel sessions. Call it after Serve has returned.
func (e *Edge) Close() error { return e.pool.Close() }

// Serve serves HTTPS on ln until ctx ends, then stops accepting and lets
// in-flight requests finish for up to DrainTimeout.
func (e *Edge) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	srv := &http.Server{
		Handler:           e.Handler(),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	if stdLog, err := zap.NewStdLogAt(e.log.Named("http"), zap.DebugLevel); err == nil {
		srv.ErrorLog = stdLog // TLS probes and broken clients are noise at info
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), e.cfg.DrainTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		e.log.Warn("drain timeout: closing remaining client connections")
		err = srv.Close()
	}
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

func (e *Edge) health(w http.ResponseWriter, _ *http.Request) {
	live := e.pool.Live()
	w.Header().Set("Content-Type", "application/json")
	if live == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"tunnel_sessions": live})
}

func (e *Edge) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := newRequestID()
	route, ok := ingress.Classify(r.URL.Path, r.Header)
	if !ok {
		e.reject(w, r, id, ingress.FamilyGuess(r.Header, r.URL.RawQuery), &apierr.Error{Kind: apierr.NotFound,
			Message: "Strait does not serve " + r.Method + " " + r.URL.Path + " (OpenAI /v1/..., Anthropic /v1/messages, Gemini /v1beta/...)"})
		return
	}
	key, query := ingress.TakeClientKey(r.Header, r.URL.RawQuery)
	client, ok := e.keys.Load().Lookup(key)
	if !ok {
		msg := "Invalid Strait client key"
		if key == "" {
			msg = "Missing Strait client key (send it as the SDK's API key)"
		}
		e.reject(w, r, id, route.Family, &apierr.Error{Kind: apierr.Unauthenticated, Code: "invalid_api_key", Message: msg})
		return
	}
	body, aerr := e.readBody(w, r)
	if aerr != nil {
		e.reject(w, r, id, route.Family, aerr)
		return
	}
	res := e.fwd.Forward(w, r, &forward.Request{ID: id, Family: route.Family, Provider: route.Provider,
		Method: r.Method, Path: route.Path, RawQuery: query, Header: ingress.ForwardHeader(r.Header), Body: body})
	e.logRequest(id, client.Name, route, r, res, time.Since(start))
}

// readBody reads the whole body under the size limit, so a connection is
// never reused with unread bytes in it, and checks that a JSON body is JSON.
func (e *Edge) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *apierr.Error) {
	limit := e.cfg.MaxBodyBytes
	tooLarge := &apierr.Error{Kind: apierr.TooLarge,
		Message: "request body exceeds Strait's limit of " + humanBytes(limit)}
	if r.ContentLength > limit {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, &apierr.Error{Kind: apierr.InvalidRequest, Message: "could not read request body: " + err.Error()}
	}
	if len(body) > 0 && isJSON(r.Header.Get("Content-Type")) && !json.Valid(body) {
		return nil, &apierr.Error{Kind: apierr.InvalidRequest, Message: "request body is not valid JSON"}
	}
	return body, nil
}

func isJSON(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "application/json"
}

func (e *Edge) reject(w http.ResponseWriter, r *http.Request, id string, fam apierr.Family, aerr *apierr.Error) {
	w.Header().Set("X-Strait-Request-Id", id)
	apierr.Write(w, fam, aerr)
	e.log.Info("request rejected", zap.String("request_id", id), zap.String("family", string(fam)),
		zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", aerr.Kind.Status()),
		zap.String("reason", aerr.Message), zap.String("remote", r.RemoteAddr))
}

func (e *Edge) logRequest(id, client string, route ingress.Route, r *http.Request, res forward.Result, d time.Duration) {
	fields := []zap.Field{zap.String("request_id", id), zap.String("client", client),
		zap.String("family", string(route.Family)), zap.String("method", r.Method), zap.String("path", route.Path),
		zap.Int("status", res.Status), zap.Int64("bytes", res.Bytes), zap.Bool("dispatched", res.Dispatched), zap.Int("attempts", res.Attempts),
		zap.Duration("duration", d)}
	if res.Err != nil {
		e.log.Warn("request failed", append(fields, zap.Error(res.Err))...)
		return
	}
	e.log.Info("request", fields...)
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
