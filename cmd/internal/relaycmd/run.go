package relaycmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/admin"
	"github.com/strait/strait/cmd/internal/cli"
	"github.com/strait/strait/relay"
	"github.com/strait/strait/relay/dispatch"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/quictun"
	"github.com/strait/strait/tunnel/wstun"
)

// Server is a relay assembled from a config: the relay.Server, its tunnel
// listeners and the admin listener, ready to Serve.
type Server struct {
	*relay.Server
	WS   *wstun.Listener   // nil when listen is empty
	QUIC *quictun.Listener // nil when listen_quic is off
	// Admin serves metrics and health; nil when admin_listen is empty.
	Admin   net.Listener
	Metrics *admin.Registry
	pprof   bool
	log     *zap.Logger
	file    *File        // the config the relay started with
	enrol   http.Handler // the enrolment endpoint, nil when off
}

// Sockets are pre-bound sockets for Build; nil fields are bound from the
// config's addresses. Tests pass their own to avoid port races.
type Sockets struct {
	TCP   net.Listener
	UDP   *net.UDPConn
	Admin net.Listener
}

// close closes the sockets that are bound.
func (s Sockets) close() {
	if s.TCP != nil {
		s.TCP.Close()
	}
	if s.UDP != nil {
		s.UDP.Close()
	}
	if s.Admin != nil {
		s.Admin.Close()
	}
}

// Build loads certificates, builds the relay and binds the tunnel
// listeners.
func Build(f *File, socks Sockets, log *zap.Logger) (*Server, error) {
	reg := admin.NewRegistry()
	r, err := buildRelay(f, reg, log)
	if err != nil {
		return nil, err
	}
	revoked := &certs.Revocations{}
	if err := revoked.Set(f.TLS.RevokedEdges); err != nil {
		return nil, fmt.Errorf("tls.revoked_edges: %w", err)
	}
	tc, kp, err := tunnelTLS(f, revoked)
	if err != nil {
		return nil, err
	}
	srv := &Server{Metrics: reg, pprof: f.AdminPprof, log: log, file: f}
	srv.Server = relay.NewServer(r, relay.ServerConfig{TunnelCert: kp, Revoked: revoked, Admin: srv.runAdmin})
	admin.CertExpiry(reg, "relay_tunnel", kp)
	admin.CAExpiry(reg, "tunnel_ca", f.TLS.ClientCA)
	if err := srv.setupEnrol(f, tc, log); err != nil {
		return nil, err
	}
	if err := srv.listen(f, socks, tc, log); err != nil {
		srv.closeListeners()
		return nil, err
	}
	if srv.Admin = socks.Admin; srv.Admin == nil && f.AdminListen != "" {
		if srv.Admin, err = net.Listen("tcp", f.AdminListen); err != nil {
			srv.closeListeners()
			return nil, fmt.Errorf("admin_listen: %w", err)
		}
	}
	return srv, nil
}

func buildRelay(f *File, reg prometheus.Registerer, log *zap.Logger) (*relay.Relay, error) {
	cfg, err := relayConfig(f, reg, log)
	if err != nil {
		return nil, err
	}
	return relay.New(cfg)
}

// relayConfig turns the file into a relay.Config, resolving provider keys
// from the environment.
func relayConfig(f *File, reg prometheus.Registerer, log *zap.Logger) (relay.Config, error) {
	providers, err := f.ProviderConfigs()
	if err != nil {
		return relay.Config{}, err
	}
	convRedis := f.Conversations.Redis
	if convRedis != "" {
		if convRedis, err = cli.ExpandSecret(convRedis); err != nil {
			return relay.Config{}, fmt.Errorf("conversations.redis: %w", err)
		}
	}
	transport := upstream.TransportConfig{ResponseHeaderTimeout: f.ResponseHeaderTimeout}
	if f.UpstreamCA != "" {
		if transport.RootCAs, err = certs.LoadPool(f.UpstreamCA); err != nil {
			return relay.Config{}, fmt.Errorf("upstream_ca: %w", err)
		}
	}
	return relay.Config{
		Providers: providers, Routes: f.RouteConfigs(), StrictModels: f.StrictModels, Endpoints: f.Endpoints,
		Keys:     upstream.KeyPolicy{MaxCooldown: f.Keys.MaxCooldown, Backoff: f.Keys.Backoff, ProbeAfter: f.Keys.ProbeAfter},
		Timeouts: f.Timeouts.timeouts(),
		Retry: dispatch.RetryPolicy{MaxAttempts: f.Retry.MaxAttempts, Budget: f.Retry.Budget,
			Backoff: f.Retry.Backoff, MaxBackoff: f.Retry.MaxBackoff},
		MaxBodyBytes: f.MaxBodyBytes, DrainTimeout: f.DrainTimeout, MaxChoices: f.MaxChoices,
		RenewAfter: f.renewAfter(),
		Transport:  transport, Logger: log, Metrics: reg,
		Conversations: relay.ConversationsConfig{Path: f.Conversations.Path, TTL: f.Conversations.TTL, MaxBytes: f.Conversations.MaxBytes,
			Redis: convRedis, RedisPrefix: f.Conversations.RedisPrefix},
	}, nil
}

// tunnelTLS loads the relay's tunnel certificate and the CA edges must
// chain to; edges on the revocation list are refused.
func tunnelTLS(f *File, revoked *certs.Revocations) (*tls.Config, *certs.KeyPair, error) {
	kp, err := certs.LoadKeyPair(f.TLS.Cert, f.TLS.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("tls: %w", err)
	}
	pool, err := certs.LoadPool(f.TLS.ClientCA)
	if err != nil {
		return nil, nil, fmt.Errorf("tls.client_ca: %w", err)
	}
	tc := certs.ServerConfig(kp, pool)
	tc.VerifyConnection = revoked.VerifyConnection
	return tc, kp, nil
}

// Reload re-reads the config at path and applies what can change while
// running (see relay.Server.Reload): provider keys, providers and routes,
// the tunnel certificate and the edge revocation list. Everything is
// loaded and checked before anything is swapped, so a broken file changes
// nothing. Every other setting (listen addresses, the client CA, tunnel
// tuning, retry, the conversation store, ...) takes effect on restart, and
// the log names those that changed.
func (s *Server) Reload(path string) error {
	f, err := Load(path)
	if err != nil {
		return err
	}
	cfg, err := relayConfig(f, nil, s.log)
	if err != nil {
		return err
	}
	kp, err := certs.LoadKeyPair(f.TLS.Cert, f.TLS.Key)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	if err := s.Server.Reload(relay.Update{Relay: cfg, TunnelCert: kp, RevokedEdges: f.TLS.RevokedEdges}); err != nil {
		return err
	}
	cli.WarnUnapplied(s.log, "relay", restartOnly(*s.file), restartOnly(*f))
	return nil
}

// restartOnly is f without what Reload applies: providers, routes and
// their policies (keys, timeouts, endpoints, strict_models), the tunnel
// certificate files and the revocation list. What is left takes effect on
// restart.
func restartOnly(f File) File {
	f.Providers, f.Routes, f.StrictModels, f.Endpoints = nil, nil, false, nil
	f.Keys, f.Timeouts = KeysFile{}, TimeoutsFile{}
	f.TLS.Cert, f.TLS.Key, f.TLS.RevokedEdges = "", "", nil
	return f
}

// runAdmin serves the admin endpoints on the admin listener, if any, for
// as long as relay.Server.Serve runs.
func (s *Server) runAdmin(rs *relay.Server) (stop func()) {
	return admin.Run(s.Admin, admin.Handler(admin.Config{Metrics: s.Metrics, Ready: rs.Relay.Ready, Pprof: s.pprof}))
}

func (s *Server) listen(f *File, socks Sockets, tc *tls.Config, log *zap.Logger) error {
	var err error
	if f.Listen != "" || socks.TCP != nil {
		ln := socks.TCP
		if ln == nil {
			if ln, err = net.Listen("tcp", f.Listen); err != nil {
				return err
			}
		}
		cfg := wstun.Config{Heartbeat: f.Heartbeat, HeartbeatTimeout: f.HeartbeatTimeout,
			StreamWindow: uint32(f.StreamWindow), Compression: f.Compression, Stats: new(wstun.Stats),
			CompressMinRTT: tunnel.CompressMinRTTSetting(f.CompressMinRTT),
			TCPCongestion:  f.TCPCongestion, TCPNotSentLowat: f.TCPNotSentLowat, Congestion: new(wstun.CongestionStats), Logger: log,
			Enrol: s.enrolHandler()}
		admin.TunnelBytes(s.Metrics, cfg.Stats)
		admin.TCPCongestion(s.Metrics, cfg.Congestion)
		if s.WS, err = wstun.Listen(ln, tc, cfg); err != nil {
			ln.Close()
			return err
		}
		admin.RefusedHandshakes(s.Metrics, string(tunnel.TransportWS), s.WS.RefusedHandshakes)
	}
	if socks.UDP == nil && f.quicBesideWS() && s.WS != nil {
		socks.UDP = udpBeside(s.WS.Addr(), log)
	}
	if f.quicAddr() != "" || socks.UDP != nil {
		udp := socks.UDP
		if udp == nil {
			if udp, err = listenUDP(f.quicAddr()); err != nil {
				return err
			}
		}
		// The relay's private key is stable across restarts and secret: a
		// good seed for the stateless reset key (see quictun.Config).
		secret, err := os.ReadFile(f.TLS.Key)
		if err != nil {
			udp.Close()
			return err
		}
		cfg := quictun.Config{Heartbeat: f.Heartbeat, HeartbeatTimeout: f.HeartbeatTimeout,
			StreamWindow: f.StreamWindow, SessionWindow: f.SessionWindow, ResetSecret: secret,
			Compression: quictun.CompressionSetting(f.Compression), CompressMinRTT: tunnel.CompressMinRTTSetting(f.CompressMinRTT),
			Logger: log}
		if s.QUIC, err = quictun.Listen(udp, tc, cfg); err != nil {
			udp.Close()
			return err
		}
		admin.RefusedHandshakes(s.Metrics, string(tunnel.TransportQUIC), s.QUIC.RefusedHandshakes)
	}
	return nil
}

func listenUDP(addr string) (*net.UDPConn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	return net.ListenUDP("udp", ua)
}

func (s *Server) listeners() []tunnel.Listener {
	var out []tunnel.Listener
	if s.WS != nil {
		out = append(out, s.WS)
	}
	if s.QUIC != nil {
		out = append(out, s.QUIC)
	}
	return out
}

func (s *Server) closeListeners() {
	for _, ln := range s.listeners() {
		ln.Close()
	}
	if s.Admin != nil {
		s.Admin.Close()
	}
}

// Serve runs until ctx ends, then drains (see relay.Server.Serve).
func (s *Server) Serve(ctx context.Context) error { return s.Server.Serve(ctx, s.listeners()...) }

// Addr is the first tunnel address (TCP when both are configured).
func (s *Server) Addr() net.Addr { return s.listeners()[0].Addr() }

// Addrs describes every tunnel listener, for logs.
func (s *Server) Addrs() []zap.Field {
	var out []zap.Field
	if s.WS != nil {
		out = append(out, zap.Stringer("ws_addr", s.WS.Addr()))
	}
	if s.QUIC != nil {
		out = append(out, zap.Stringer("quic_addr", s.QUIC.Addr()))
	}
	if s.Admin != nil {
		out = append(out, zap.Stringer("admin_addr", s.Admin.Addr()))
	}
	return out
}
