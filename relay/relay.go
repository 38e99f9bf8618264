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

	"github.com/strait/strait/proto"
	"github.com/strait/strait/relay/convstore"
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
	// Endpoints are the endpoint classes served beyond inference (see
	// upstream.Config.Endpoints).
	Endpoints []string
	// Keys tunes the per-key state machine (cooldowns, probes).
	Keys upstream.KeyPolicy
	// Timeouts are the default upstream timeouts (first byte, idle, ping).
	Timeouts upstream.Timeouts
	// Retry bounds attempts before the first byte.
	Retry dispatch.RetryPolicy
	// MaxBodyBytes caps request bodies; zero means 64 MiB.
	MaxBodyBytes int64
	// MaxChoices bounds the calls a Chat Completions request for n > 1
	// choices fans out to on a provider that makes one per call (see
	// dispatch.Config.MaxChoices); zero means 8, 1 refuses n > 1 there.
	MaxChoices int
	// Transport tunes the shared upstream HTTP transport.
	Transport upstream.TransportConfig
	// DrainTimeout bounds how long Serve waits for in-flight streams after its
	// context ends; zero means 30s.
	DrainTimeout time.Duration
	// RenewAfter is the least age at which an idle QUIC session whose
	// congestion window moved, or an idle WebSocket session whose TCP
	// window a loss cut, is renewed (renew.go): nil means 10s, zero or
	// less never renews (the relay's renew_after).
	RenewAfter *time.Duration
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
	// Metrics, when set, receives the relay's Prometheus collectors; other
	// relay layers register theirs on it too. Nil means no metrics.
	Metrics prometheus.Registerer
	// Conversations keeps the conversations of Responses clients routed to
	// a provider of another API (previous_response_id, GET/DELETE
	// /v1/responses/{id}); an empty Path keeps none.
	Conversations ConversationsConfig
}

// ConversationsConfig places the conversation store: a bbolt file at Path,
// records kept TTL (zero: 30 days) within MaxBytes (zero: 1 GiB), oldest
// first out; or, with Redis set instead, a Redis server that several relays
// share, where records expire after TTL, MaxBytes caps one record (zero: 64
// MiB) and Redis's maxmemory is the budget.
type ConversationsConfig struct {
	Path     string
	TTL      time.Duration
	MaxBytes int64
	// Redis is a redis:// or rediss:// URL; RedisPrefix starts its keys
	// (empty: "strait:conv:").
	Redis, RedisPrefix string
}

// openConversations opens the configured store; nil when none is.
func openConversations(c ConversationsConfig) (convstore.Backend, error) {
	switch {
	case c.Path != "" && c.Redis != "":
		return nil, errors.New("set path or redis, not both")
	case c.Path != "":
		return convstore.Open(c.Path, c.TTL, c.MaxBytes)
	case c.Redis != "":
		return convstore.OpenRedis(convstore.RedisConfig{URL: c.Redis, Prefix: c.RedisPrefix, TTL: c.TTL, MaxRecordBytes: c.MaxBytes})
	}
	return nil, nil
}

// Relay serves tunnel sessions.
type Relay struct {
	cfg      Config
	log      *zap.Logger
	client   *http.Client
	disp     *dispatch.Dispatcher
	sessions *sessionSet
	seen     idSet    // request IDs taken upstream, to refuse a resend of one
	mirrors  mirrors  // hedged answers a second copy may follow (mirror.go)
	metrics  *metrics // nil without Config.Metrics
	// conversations is the Responses conversation store, closed when Serve
	// returns; nil without Config.Conversations.Path or Redis.
	conversations convstore.Backend
	ready         readiness
	// renewal, senderState and needlessWatch decide when a session is
	// renewed (renew.go); tests replace them.
	renewal       renewPolicy
	senderState   func(tunnel.Session) (tunnel.SenderState, bool)
	needlessWatch func(tunnel.Session) bool
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
	reg, err := upstream.New(registryConfig(cfg), nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{
		Transport: upstream.NewTransport(cfg.Transport),
		// Never follow redirects: a provider's redirect must not steer the
		// relay to a host that is not configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	r := &Relay{cfg: cfg, log: cfg.Logger, client: client, sessions: newSessionSet(),
		renewal: renewalAfter(cfg.RenewAfter), senderState: tunnel.SenderStateOf,
		needlessWatch: tunnel.NeedlessWatch}
	dcfg := dispatch.Config{Registry: reg, Client: client, Retry: cfg.Retry, MaxBodyBytes: cfg.MaxBodyBytes,
		MaxChoices: cfg.MaxChoices, Logger: cfg.Logger}
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
	if r.conversations, err = openConversations(cfg.Conversations); err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	if r.conversations != nil {
		dcfg.Conversations = r.conversations
	}
	r.disp = dispatch.New(dcfg)
	return r, nil
}

func registryConfig(cfg Config) upstream.Config {
	return upstream.Config{Providers: cfg.Providers, Routes: cfg.Routes,
		StrictModels: cfg.StrictModels, Endpoints: cfg.Endpoints, Keys: cfg.Keys, Timeouts: cfg.Timeouts}
}

// Reload builds a new provider registry (providers, keys, routes, key
// policy, timeouts) from cfg and swaps it in: streams already dispatched
// finish on the old one, new streams use the new one, and key state
// carries over for keys that stay. If cfg is invalid nothing changes.
// The other fields of cfg take effect only on restart.
func (r *Relay) Reload(cfg Config) error {
	if len(cfg.Providers) == 0 {
		return errors.New("relay: no providers configured")
	}
	reg, err := upstream.New(registryConfig(cfg), r.Registry())
	if err != nil {
		return err
	}
	r.disp.SetRegistry(reg)
	return nil
}

// Registry exposes the current provider registry (for `check` output and
// tests).
func (r *Relay) Registry() *upstream.Registry { return r.disp.Registry() }

// Serve accepts sessions from every listener (e.g. WebSocket on TCP and QUIC
// on UDP) until ctx ends. Then it drains, within DrainTimeout: it stops
// accepting sessions and sends GoAway{Accepting} on every session's control
// stream, so edges move new requests to any other session they have. Until
// the streams that were in flight have finished (at most half of
// DrainTimeout) it still serves new streams on its sessions: an edge whose
// only relay this is keeps working while the relay restarts. Then it sends
// a final GoAway, answers streams that still arrive with
// End{CodeGoingAway} (the edge resends them once a session is up, since
// they were never dispatched), lets in-flight streams finish, closes every
// session and returns once all of its goroutines have ended. It closes the
// listeners.
func (r *Relay) Serve(ctx context.Context, lns ...tunnel.Listener) error {
	if len(lns) == 0 {
		return errors.New("relay: no listeners")
	}
	streamCtx, cancelStreams := context.WithCancel(context.Background())
	defer cancelStreams()
	var acceptors, sessions sync.WaitGroup
	tracker := r.sessions
	gate := &inflight{}
	workers := newWorkers(workerIdle)
	for _, ln := range lns {
		acceptors.Add(1)
		go func() {
			defer acceptors.Done()
			defer ln.Close()
			r.acceptLoop(ctx, ln, func(sess tunnel.Session) {
				s, _ := r.senderState(sess)
				l := tracker.add(sess, s.Window)
				sessions.Add(1)
				go func() {
					defer sessions.Done()
					r.serveSession(streamCtx, l, gate, workers)
					tracker.remove(sess)
				}()
			})
		}()
	}
	<-ctx.Done()
	// Accept loops end with ctx: no new session can arrive. Streams on the
	// existing ones are still accepted during the hand-over.
	acceptors.Wait()
	start := time.Now()
	gate.handOver()
	tracker.goAway(proto.GoAway{Drain: r.cfg.DrainTimeout, Message: "relay shutting down", Accepting: true})
	r.handOver(gate, start.Add(r.cfg.DrainTimeout/2))
	// The final GoAway first, so that edges stop opening streams before
	// any is refused; streams that got in before the gate closed are
	// drained.
	tracker.goAway(proto.GoAway{Drain: time.Until(start.Add(r.cfg.DrainTimeout)), Message: "relay shutting down"})
	gate.close()
	r.drain(gate, cancelStreams, start.Add(r.cfg.DrainTimeout))
	// The last responses may still be in flight to the edges: closing a
	// session now would drop them. Each edge closes a drained session once
	// its streams are done; wait for that, briefly.
	tracker.waitEmpty(closeGrace)
	tracker.closeAll()
	sessions.Wait()
	workers.close()
	r.client.CloseIdleConnections()
	if r.conversations != nil {
		return r.conversations.Close()
	}
	return nil
}

// closeGrace bounds how long a drained relay waits for edges to close
// their sessions before it closes them itself.
const closeGrace = 2 * time.Second

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

// handOver serves new streams until the streams that were in flight when
// the drain began have finished, or until deadline: the relay has to stay
// up for them anyway, and an edge without another session needs it.
func (r *Relay) handOver(gate *inflight, deadline time.Time) {
	r.log.Info("draining: still taking new streams until those in flight finish",
		zap.Int("in_flight", gate.count()), zap.Time("until", deadline))
	gate.waitUntil(func(n [2]int) bool { return n[phaseServing] == 0 }, deadline)
}

// drain waits for in-flight streams until deadline, then cancels them.
func (r *Relay) drain(gate *inflight, cancel context.CancelFunc, deadline time.Time) {
	n := gate.count()
	r.log.Info("draining", zap.Int("in_flight", n), zap.Duration("timeout", time.Until(deadline)))
	idle := func(n [2]int) bool { return n[phaseServing]+n[phaseHandOver] == 0 }
	if !gate.waitUntil(idle, deadline) {
		r.log.Warn("drain timeout: canceling in-flight streams", zap.Int("in_flight", gate.count()))
		cancel()
		gate.waitUntil(idle, time.Now().Add(time.Hour))
	}
}

// serveSession accepts streams until the session dies or is closed at the
// end of the drain; each stream runs under streamCtx, on one of workers.
func (r *Relay) serveSession(streamCtx context.Context, l *link, gate *inflight, workers *streamWorkers) {
	info := l.sess.Info()
	log := r.log.With(zap.String("edge", info.PeerName), zap.Stringer("remote", info.RemoteAddr),
		zap.String("transport", string(info.Transport)))
	log.Info("tunnel session accepted")
	var handlers sync.WaitGroup
	defer handlers.Wait()
	for {
		st, err := l.sess.AcceptStream(streamCtx)
		if err != nil {
			if streamCtx.Err() == nil {
				log.Info("tunnel session ended", zap.Error(l.sess.Err()))
			}
			return
		}
		handlers.Add(1)
		workers.run(func() {
			handoff := dispatch.NewHandoff()
			handoff.Defer(handlers.Done)
			r.serveStream(streamCtx, l, st, gate, log, handoff)
			handoff.Done()
		})
	}
}
