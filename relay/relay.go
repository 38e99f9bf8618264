// Package relay is the overseas half of Strait: it accepts tunnel sessions
// from edges and serves each stream by calling the configured provider.
package relay

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/strait/strait/relay/dispatch"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/tunnel"
)

// Config configures a Relay.
type Config struct {
	Providers []upstream.ProviderConfig // at least one
	// Routes map model names and patterns to providers (see
	// upstream.Registry.Resolve); StrictModels refuses models outside them.
	Routes       []upstream.RouteConfig
	StrictModels bool
	// Keys tunes the per-key state machine (cooldowns, probes).
	Keys upstream.KeyPolicy
	// Timeouts are the default upstream timeouts (first byte, idle, ping).
	Timeouts upstream.Timeouts
	// Retry bounds attempts before the first byte.
	Retry dispatch.RetryPolicy
	// MaxBodyBytes caps request bodies; zero means 64 MiB.
	MaxBodyBytes int64
	// Transport tunes the shared upstream HTTP transport.
	Transport upstream.TransportConfig
	// DrainTimeout bounds how long Serve waits for in-flight streams after its
	// context ends; zero means 30s.
	DrainTimeout time.Duration
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
	// Metrics, when set, receives the relay's Prometheus collectors; other
	// relay layers register theirs on it too. Nil means no metrics.
	Metrics prometheus.Registerer
}

// Relay serves tunnel sessions.
type Relay struct {
	cfg      Config
	log      *zap.Logger
	client   *http.Client
	disp     *dispatch.Dispatcher
	sessions *sessionSet
	metrics  *metrics // nil without Config.Metrics
	ready    readiness
}

// New validates cfg and builds the relay.
func New(cfg Config) (*Relay, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if len(cfg.Providers) == 0 {
		return nil, errors.New("relay: no providers configured")
	}
	reg, err := upstream.New(upstream.Config{Providers: cfg.Providers, Routes: cfg.Routes,
		StrictModels: cfg.StrictModels, Keys: cfg.Keys, Timeouts: cfg.Timeouts}, nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{
		Transport: upstream.NewTransport(cfg.Transport),
		// Never follow redirects: a provider's redirect must not steer the
		// relay to a host that is not configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r := &Relay{cfg: cfg, log: cfg.Logger, client: client, sessions: newSessionSet()}
	dcfg := dispatch.Config{Registry: reg, Client: client, Retry: cfg.Retry, MaxBodyBytes: cfg.MaxBodyBytes, Logger: cfg.Logger}
	if cfg.Metrics != nil {
		if r.metrics, err = newMetrics(cfg.Metrics, r.sessions); err != nil {
			return nil, fmt.Errorf("relay metrics: %w", err)
		}
		dcfg.Observe = r.metrics.observe
		// Key states are read from whatever registry is current at scrape time.
		if dcfg.Metrics, err = dispatch.NewMetrics(cfg.Metrics, func() []upstream.KeyStatus { return r.Registry().KeyStatuses() }); err != nil {
			return nil, fmt.Errorf("relay upstream metrics: %w", err)
		}
	}
	r.disp = dispatch.New(dcfg)
	return r, nil
}

// Registry exposes the current provider registry (for `check` output and
// tests).
func (r *Relay) Registry() *upstream.Registry { return r.disp.Registry() }

// Serve accepts sessions from every listener (e.g. WebSocket on TCP and QUIC
// on UDP) until ctx ends, then stops accepting, gives in-flight streams up
// to DrainTimeout to finish, closes every session and returns once all of
// its goroutines have ended. It closes the listeners.
func (r *Relay) Serve(ctx context.Context, lns ...tunnel.Listener) error {
	if len(lns) == 0 {
		return errors.New("relay: no listeners")
	}
	streamCtx, cancelStreams := context.WithCancel(context.Background())
	defer cancelStreams()
	var acceptors, sessions, streams sync.WaitGroup
	tracker := r.sessions
	defer tracker.closeAll()
	for _, ln := range lns {
		acceptors.Add(1)
		go func() {
			defer acceptors.Done()
			defer ln.Close()
			r.acceptLoop(ctx, ln, func(sess tunnel.Session) {
				tracker.add(sess)
				sessions.Add(1)
				go func() {
					defer sessions.Done()
					r.serveSession(ctx, streamCtx, sess, &streams)
					select {
					case <-sess.Done():
						tracker.remove(sess) // dead already; a live one waits for the drain
					default:
					}
				}()
			})
		}()
	}
	<-ctx.Done()
	// Accept loops end with ctx, and so do the per-session stream accept
	// loops; once all are gone no new stream can start, and waiting for the
	// in-flight ones is race-free.
	acceptors.Wait()
	sessions.Wait()
	r.drain(&streams, cancelStreams)
	tracker.closeAll()
	r.client.CloseIdleConnections()
	return nil
}

// acceptLoop hands each session from ln to serve until ctx ends. A listener
// that fails on its own is logged; the relay keeps serving on the others.
func (r *Relay) acceptLoop(ctx context.Context, ln tunnel.Listener, serve func(tunnel.Session)) {
	for {
		sess, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("tunnel listener failed; no more sessions on it", zap.Stringer("addr", ln.Addr()), zap.Error(err))
			}
			return
		}
		serve(sess)
	}
}

// drain waits for in-flight streams, up to DrainTimeout, then cancels them.
func (r *Relay) drain(streams *sync.WaitGroup, cancel context.CancelFunc) {
	done := make(chan struct{})
	go func() { streams.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(r.cfg.DrainTimeout):
		r.log.Warn("drain timeout: canceling in-flight streams")
		cancel()
		<-done
	}
}

// serveSession accepts streams until acceptCtx ends or the session dies;
// each stream runs under streamCtx, which outlives acceptCtx by the drain.
func (r *Relay) serveSession(acceptCtx, streamCtx context.Context, sess tunnel.Session, streams *sync.WaitGroup) {
	info := sess.Info()
	log := r.log.With(zap.String("edge", info.PeerName), zap.Stringer("remote", info.RemoteAddr),
		zap.String("transport", info.Transport))
	log.Info("tunnel session accepted")
	for {
		st, err := sess.AcceptStream(acceptCtx)
		if err != nil {
			if acceptCtx.Err() == nil {
				log.Info("tunnel session ended", zap.Error(sess.Err()))
			}
			return
		}
		streams.Add(1)
		go func() {
			defer streams.Done()
			if r.metrics != nil {
				r.metrics.streams.Inc()
				defer r.metrics.streams.Dec()
			}
			r.disp.Serve(streamCtx, st)
		}()
	}
}

// sessionSet tracks live sessions so shutdown can close them.
type sessionSet struct {
	mu sync.Mutex
	m  map[tunnel.Session]struct{}
}

func newSessionSet() *sessionSet { return &sessionSet{m: map[tunnel.Session]struct{}{}} }

func (s *sessionSet) add(sess tunnel.Session) {
	s.mu.Lock()
	s.m[sess] = struct{}{}
	s.mu.Unlock()
}

func (s *sessionSet) remove(sess tunnel.Session) {
	s.mu.Lock()
	delete(s.m, sess)
	s.mu.Unlock()
}

func (s *sessionSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.m {
		sess.Close()
	}
}
