package edgecmd

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/admin"
	"github.com/strait/strait/cmd/internal/cli"
	"github.com/strait/strait/edge"
	"github.com/strait/strait/edge/audit"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/frontcert"
	"github.com/strait/strait/edge/keystore"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/autodial"
	"github.com/strait/strait/tunnel/pool"
	"github.com/strait/strait/tunnel/quictun"
	"github.com/strait/strait/tunnel/wstun"
)

// Server is an edge assembled from a config: the edge.Server and the
// admin listener beside it.
type Server struct {
	*edge.Server
	// Admin serves metrics, health and usage; nil unless admin_listen (or
	// its former name metrics_listen) is set.
	Admin   net.Listener
	Metrics *admin.Registry
	file    *File
	log     *zap.Logger
	// registry holds the CLI-managed keys (keys file, or Redis); nil
	// without data_dir and store.redis.
	registry keystore.Registry
	// tunnelCert is renewed through the relays (see startRenewer).
	tunnelCert *certs.KeyPair
	// acme is the public certificate's source with tls.acme; nil with files.
	acme *frontcert.Manager
}

// Build loads certificates and keys, binds the HTTPS listener and starts the
// tunnel pool. ln may be nil, in which case f.Listen is bound. Serve runs it.
func Build(f *File, ln net.Listener, log *zap.Logger) (srv *Server, err error) {
	shared, registry, err := f.openShared(log)
	if err != nil {
		return nil, err
	}
	handedOver := false // from NewServer on, the edge.Server closes the shared store
	defer func() {
		if err != nil && !handedOver && shared != nil {
			shared.Close()
		}
	}()
	keys, err := f.KeysFrom(registry)
	if err != nil && shared != nil && f.Store.Redis.OnFailure != "fail_closed" {
		// Redis is away at start: serve the config's keys now; the
		// registry's watcher loads the others once Redis answers.
		log.Warn("client keys in Redis cannot be read; starting with the config's keys until Redis answers", zap.Error(err))
		keys, err = f.KeysFrom(nil)
	}
	if err != nil {
		return nil, err
	}
	guards, err := f.Guards()
	if err != nil {
		return nil, err
	}
	wsStats := new(wstun.Stats)
	congestion := new(wstun.CongestionStats)
	dialers, domestic, tunnelCert, err := f.dialers(wsStats, congestion, log)
	if err != nil {
		return nil, err
	}
	if guards.KeepsHome() && len(domestic) == 0 {
		log.Warn("the border guard keeps some requests at home (keep_home) but no relay is marked domestic: those requests will be refused")
	}
	front, err := f.frontKeyPair()
	if err != nil {
		return nil, err
	}
	acme, err := f.frontACME()
	if err != nil {
		return nil, err
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", f.Listen); err != nil {
			return nil, err
		}
	}
	srv = &Server{Metrics: admin.NewRegistry(), file: f, log: log, registry: registry, tunnelCert: tunnelCert, acme: acme}
	admin.TunnelBytes(srv.Metrics, wsStats)
	admin.TCPCongestion(srv.Metrics, congestion)
	certMetrics(srv.Metrics, f, front, tunnelCert)
	scfg := f.serverConfig(srv, ln, keys, dialers, front, tunnelCert, log)
	scfg.Edge.DomesticRelays, scfg.Edge.Guard = domestic, guards
	if acme != nil {
		scfg.FrontTLS = acme.TLSConfig()
	}
	if shared != nil { // not a typed nil in the interface
		scfg.Edge.Shared, scfg.Registry = shared, registry
	}
	handedOver = true
	if srv.Server, err = edge.NewServer(scfg); err != nil {
		return nil, err
	}
	if addr := f.adminListen(); addr != "" {
		if srv.Admin, err = net.Listen("tcp", addr); err != nil {
			srv.Close()
			return nil, fmt.Errorf("admin_listen: %w", err)
		}
	}
	return srv, nil
}

// serverConfig turns the file into an edge.ServerConfig.
func (f *File) serverConfig(srv *Server, ln net.Listener, keys *auth.Keys, dialers []tunnel.Dialer,
	front, tunnelCert *certs.KeyPair, log *zap.Logger) edge.ServerConfig {
	cfg := edge.ServerConfig{Listener: ln, Front: front, TunnelCert: tunnelCert, DataDir: f.DataDir, Admin: srv.runAdmin,
		LoadKeys: f.reloadKeys(srv.registry),
		Edge: edge.Config{Metrics: srv.Metrics,
			Keys: keys, Relays: dialers, SessionsPerRelay: f.Tunnel.minSessions(),
			ReconnectMin: f.Tunnel.ReconnectMin, ReconnectMax: f.Tunnel.ReconnectMax,
			Pool: pool.Config{HealthyAfter: f.Tunnel.HealthyAfter, ProbeInterval: f.Tunnel.ProbeInterval,
				ProbeTimeout: f.Tunnel.ProbeTimeout, MaxSessionsPerRelay: f.Tunnel.maxSessions(),
				Scale: pool.ScaleConfig{TargetStreams: f.Tunnel.Sessions.TargetStreams,
					MaxStreams: f.Tunnel.Sessions.MaxStreams, MaxDials: f.Tunnel.Sessions.MaxDials,
					ShrinkAfter: f.Tunnel.Sessions.ShrinkAfter, MinWebSocket: f.Tunnel.webSocketFloor()}},
			MaxBodyBytes: f.MaxBody, SessionWait: f.SessionWait, DrainTimeout: f.DrainTimeout, Logger: log,
			ReadHeaderTimeout: f.ReadHeaderTimeout, BodyIdleTimeout: f.BodyIdleTimeout, BodyTimeout: f.BodyTimeout,
			ClientWriteTimeout: f.ClientWriteTimeout, ClientBufferBudget: f.ClientBufferBudget, Hedge: f.Tunnel.hedgeMode(),
			Policy: edge.Policy{Prices: f.Prices, UnauthRPM: f.Limits.UnauthenticatedRPM, OutputEstimate: f.Limits.OutputEstimate},
			Cache:  f.ResponseCache,
		},
	}
	if f.Audit.Path != "" {
		cfg.Audit = &audit.Config{Path: f.Audit.Path, MaxSizeMB: f.Audit.MaxSizeMB, MaxBackups: f.Audit.MaxBackups,
			MaxAgeDays: f.Audit.MaxAgeDays, Compress: f.Audit.Compress, Bodies: f.Audit.Bodies}
	}
	return cfg
}

// runAdmin serves the admin endpoints on the admin listener, if any, and
// renews the tunnel certificate, for as long as edge.Server.Serve runs.
func (s *Server) runAdmin(es *edge.Server) (stop func()) {
	stopAdmin := admin.Run(s.Admin, admin.Handler(admin.Config{Metrics: s.Metrics, Ready: es.Edge.Ready,
		Routes: map[string]http.Handler{"GET /usage": es.Edge.UsageHandler(), "GET " + doctorPath: s.doctorHandler()},
		Pprof:  s.file.AdminPprof}))
	stopRenewer := s.startRenewer()
	stopHTTP01, err := s.serveHTTP01()
	if err != nil { // TLS-ALPN-01 still works: say so and go on
		s.log.Error("ACME HTTP-01 listener not started", zap.Error(err))
		stopHTTP01 = func() {}
	}
	return func() { stopHTTP01(); stopRenewer(); stopAdmin() }
}

// reloadKeys re-reads the client keys (config file's and reg's) for the
// key registry's watcher. It re-reads the config too: a change of the keys
// file may come with an edit of client_keys.
func (f *File) reloadKeys(reg keystore.Registry) func() (*auth.Keys, error) {
	return func() (*auth.Keys, error) {
		f := f
		if f.path != "" {
			var err error
			if f, err = Load(f.path); err != nil {
				return nil, err
			}
		}
		return f.KeysFrom(reg)
	}
}

// Close releases what Build opened; for a Server that never served.
func (s *Server) Close() {
	if s.Admin != nil {
		s.Admin.Close()
	}
	s.Server.Close()
}

// dialers builds one dialer per relay, all presenting the returned client
// certificate: the relays across the border, and the domestic group.
func (f *File) dialers(stats *wstun.Stats, congestion *wstun.CongestionStats, log *zap.Logger) (abroad, domestic []tunnel.Dialer, _ *certs.KeyPair, _ error) {
	kp, err := certs.LoadKeyPair(f.Tunnel.Cert, f.Tunnel.Key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tunnel: %w", err)
	}
	roots, err := certs.LoadPool(f.Tunnel.CA)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tunnel.ca: %w", err)
	}
	for _, r := range f.Tunnel.Relays {
		d, err := f.relayDialer(r, certs.ClientConfig(kp, roots, r.serverName()), stats, congestion, log)
		if err != nil {
			return nil, nil, nil, err
		}
		if r.Domestic {
			domestic = append(domestic, d)
		} else {
			abroad = append(abroad, d)
		}
	}
	return abroad, domestic, kp, nil
}

// relayDialer builds the dialer for one relay's configured transport.
func (f *File) relayDialer(r RelayFile, tc *tls.Config, stats *wstun.Stats, congestion *wstun.CongestionStats, log *zap.Logger) (tunnel.Dialer, error) {
	t := f.Tunnel
	ws := func() (tunnel.Dialer, error) {
		return wstun.NewDialer(r.Address, tc, wstun.Config{Heartbeat: t.Heartbeat, HeartbeatTimeout: t.HeartbeatTimeout,
			StreamWindow: uint32(t.StreamWindow), Compression: t.Compression, Stats: stats,
			CompressMinRTT: tunnel.CompressMinRTTSetting(t.CompressMinRTT),
			TCPCongestion:  t.TCPCongestion, TCPNotSentLowat: t.TCPNotSentLowat, Congestion: congestion, Logger: log})
	}
	quic := func() (tunnel.Dialer, error) {
		return quictun.NewDialer(r.quicAddress(), tc, quictun.Config{Heartbeat: t.Heartbeat, HeartbeatTimeout: t.HeartbeatTimeout,
			StreamWindow: t.StreamWindow, SessionWindow: t.SessionWindow, Compression: quictun.CompressionSetting(t.Compression),
			CompressMinRTT: tunnel.CompressMinRTTSetting(t.CompressMinRTT), FEC: t.QUICFEC.shape(), FECMinRTT: t.fecMinRTT(), Logger: log})
	}
	switch r.transport() {
	case tunnel.TransportWS:
		return ws()
	case tunnel.TransportQUIC:
		return quic()
	}
	q, err := quic()
	if err != nil {
		return nil, err
	}
	w, err := ws()
	if err != nil {
		return nil, err
	}
	return autodial.New(autodial.Config{Preferred: q, Fallback: w, PreferredTransport: tunnel.TransportQUIC,
		PreferredTimeout: t.QUICFallbackAfter, RetryPreferred: t.QUICRetry, Logger: log})
}

// Addr is the address the edge listens on.
func (s *Server) Addr() net.Addr { return s.Listener.Addr() }

// Addrs describes the other listeners, for the start log line.
func (s *Server) Addrs() []zap.Field {
	if s.Admin == nil {
		return nil
	}
	return []zap.Field{zap.Stringer("admin_addr", s.Admin.Addr())}
}

// Reload re-reads the config at path and applies what can change while
// running (see edge.Server.Reload): client keys, both certificates (from
// the files named) and the border guard.
// Everything is loaded and checked before anything is swapped, so a broken
// file changes nothing. Every other setting (listen addresses, relays,
// tunnel tuning, limits, prices, the certificate's source, ...) takes
// effect on restart, and the log names those that changed.
func (s *Server) Reload(path string) error {
	f, err := Load(path)
	if err != nil {
		return err
	}
	keys, err := f.KeysFrom(s.registry)
	if err != nil {
		return err
	}
	guards, err := f.Guards()
	if err != nil {
		return err
	}
	front, err := f.frontKeyPair()
	if err != nil {
		return err
	}
	tunnelCert, err := certs.LoadKeyPair(f.Tunnel.Cert, f.Tunnel.Key)
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	s.Server.Reload(edge.Update{Keys: keys, Front: front, TunnelCert: tunnelCert, Guard: guards})
	cli.WarnUnapplied(s.log, "edge", restartOnly(*s.file), restartOnly(*f))
	return nil
}

// restartOnly is f without what Reload applies: the client keys, the
// guard and the certificate and key files (read again from the paths
// given). What is left takes effect on restart.
func restartOnly(f File) File {
	f.ClientKeys, f.Guard = nil, nil
	f.TLS.Cert, f.TLS.Key = "", ""
	f.Tunnel.Cert, f.Tunnel.Key = "", ""
	return f
}
