package edgecmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/admin"
	"github.com/strait/strait/edge"
	"github.com/strait/strait/edge/audit"
	"github.com/strait/strait/edge/keystore"
	"github.com/strait/strait/edge/usagedb"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/autodial"
	"github.com/strait/strait/tunnel/pool"
	"github.com/strait/strait/tunnel/quictun"
	"github.com/strait/strait/tunnel/wstun"
)

// Server is an edge assembled from a config.
type Server struct {
	Edge     *edge.Edge
	Listener net.Listener
	TLS      *tls.Config
	// Admin serves metrics, health and usage; nil unless admin_listen (or
	// its former name metrics_listen) is set.
	Admin   net.Listener
	Metrics *admin.Registry
	// Usage and Audit are open when data_dir and audit.path are set; Serve
	// closes them after the edge.
	Usage *usagedb.DB
	Audit *audit.Log
	file  *File
	log   *zap.Logger

	front, tunnelCert *certs.KeyPair // swapped by Reload
}

// Build loads certificates and keys, binds the HTTPS listener and starts the
// tunnel pool. ln may be nil, in which case f.Listen is bound. Close the
// Edge when done.
func Build(f *File, ln net.Listener, log *zap.Logger) (*Server, error) {
	keys, err := f.Keys()
	if err != nil {
		return nil, err
	}
	wsStats := new(wstun.Stats)
	congestion := new(wstun.CongestionStats)
	dialers, tunnelCert, err := f.dialers(wsStats, congestion, log)
	if err != nil {
		return nil, err
	}
	front, err := certs.LoadKeyPair(f.TLS.Cert, f.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", f.Listen); err != nil {
			return nil, err
		}
	}
	srv := &Server{Listener: ln, TLS: certs.FrontConfig(front), Metrics: admin.NewRegistry(), file: f, log: log,
		front: front, tunnelCert: tunnelCert}
	admin.TunnelBytes(srv.Metrics, wsStats)
	admin.TCPCongestion(srv.Metrics, congestion)
	if err := srv.openStores(f); err != nil {
		srv.closeAll()
		return nil, err
	}
	srv.Edge, err = edge.New(edge.Config{Metrics: srv.Metrics,
		Keys: keys, Relays: dialers, SessionsPerRelay: f.Tunnel.Sessions.min(f.Tunnel.SessionsPerRelay),
		ReconnectMin: f.Tunnel.ReconnectMin, ReconnectMax: f.Tunnel.ReconnectMax,
		Pool: pool.Config{HealthyAfter: f.Tunnel.HealthyAfter, ProbeInterval: f.Tunnel.ProbeInterval,
			ProbeTimeout: f.Tunnel.ProbeTimeout, MaxSessionsPerRelay: f.Tunnel.Sessions.Max,
			Scale: pool.ScaleConfig{TargetStreams: f.Tunnel.Sessions.TargetStreams,
				MaxStreams: f.Tunnel.Sessions.MaxStreams, ShrinkAfter: f.Tunnel.Sessions.ShrinkAfter}},
		MaxBodyBytes: f.MaxBody, SessionWait: f.SessionWait, DrainTimeout: f.DrainTimeout, Logger: log,
		ReadHeaderTimeout: f.ReadHeaderTimeout, BodyIdleTimeout: f.BodyIdleTimeout, BodyTimeout: f.BodyTimeout,
		ClientWriteTimeout: f.ClientWriteTimeout, ClientBufferBudget: f.ClientBufferBudget, StreamWindow: int64(f.Tunnel.StreamWindow),
		Policy: edge.Policy{Prices: f.Prices, UnauthRPM: f.Limits.UnauthenticatedRPM, OutputEstimate: f.Limits.OutputEstimate},
		Usage:  srv.Usage, Audit: srv.Audit,
	})
	if err != nil {
		srv.closeAll()
		return nil, err
	}
	if addr := f.adminListen(); addr != "" {
		if srv.Admin, err = net.Listen("tcp", addr); err != nil {
			srv.closeAll()
			return nil, fmt.Errorf("admin_listen: %w", err)
		}
	}
	return srv, nil
}

// dialers builds one dialer per relay, all presenting the returned client
// certificate.
func (f *File) dialers(stats *wstun.Stats, congestion *wstun.CongestionStats, log *zap.Logger) ([]tunnel.Dialer, *certs.KeyPair, error) {
	kp, err := certs.LoadKeyPair(f.Tunnel.Cert, f.Tunnel.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("tunnel: %w", err)
	}
	roots, err := certs.LoadPool(f.Tunnel.CA)
	if err != nil {
		return nil, nil, fmt.Errorf("tunnel.ca: %w", err)
	}
	out := make([]tunnel.Dialer, 0, len(f.Tunnel.Relays))
	for _, r := range f.Tunnel.Relays {
		d, err := f.relayDialer(r, certs.ClientConfig(kp, roots, r.serverName()), stats, congestion, log)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, d)
	}
	return out, kp, nil
}

// relayDialer builds the dialer for one relay's configured transport.
func (f *File) relayDialer(r RelayFile, tc *tls.Config, stats *wstun.Stats, congestion *wstun.CongestionStats, log *zap.Logger) (tunnel.Dialer, error) {
	t := f.Tunnel
	ws := func() (tunnel.Dialer, error) {
		return wstun.NewDialer(r.Address, tc, wstun.Config{Heartbeat: t.Heartbeat, HeartbeatTimeout: t.HeartbeatTimeout,
			StreamWindow: uint32(t.StreamWindow), Compression: t.Compression, Stats: stats,
			TCPCongestion: t.TCPCongestion, TCPNotSentLowat: t.TCPNotSentLowat, Congestion: congestion, Logger: log})
	}
	quic := func() (tunnel.Dialer, error) {
		return quictun.NewDialer(r.quicAddress(), tc, quictun.Config{Heartbeat: t.Heartbeat, HeartbeatTimeout: t.HeartbeatTimeout,
			StreamWindow: t.StreamWindow, SessionWindow: t.SessionWindow, Compression: quictun.CompressionSetting(t.Compression),
			Logger: log})
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

// openStores opens the usage store and the audit log the config asks for.
func (s *Server) openStores(f *File) error {
	if f.DataDir != "" {
		if err := os.MkdirAll(f.DataDir, 0o700); err != nil {
			return fmt.Errorf("data_dir: %w", err)
		}
		db, err := usagedb.Open(f.UsagePath(), 5*time.Second, s.log)
		if err != nil {
			return err
		}
		s.Usage = db
	}
	if f.Audit.Path != "" {
		s.Audit = audit.Open(audit.Config{Path: f.Audit.Path, MaxSizeMB: f.Audit.MaxSizeMB, MaxBackups: f.Audit.MaxBackups,
			MaxAgeDays: f.Audit.MaxAgeDays, Compress: f.Audit.Compress, Bodies: f.Audit.Bodies})
	}
	return nil
}

// closeAll releases what Build opened, in reverse order.
func (s *Server) closeAll() {
	if s.Admin != nil {
		s.Admin.Close()
	}
	s.Listener.Close() // Serve's shutdown closed it already; harmless twice
	if s.Edge != nil {
		s.Edge.Close()
	}
	if s.Usage != nil {
		if err := s.Usage.Close(); err != nil {
			s.log.Error("closing the usage store", zap.Error(err))
		}
	}
	if err := s.Audit.Close(); err != nil {
		s.log.Error("closing the audit log", zap.Error(err))
	}
}

// ReloadKeys re-reads the client keys (config file's and keys file's) and
// swaps them in; on error the edge keeps the keys it has.
func (s *Server) ReloadKeys() error {
	f := s.file
	if f.path != "" { // re-read the config too: SIGHUP may follow an edit of client_keys
		var err error
		if f, err = Load(f.path); err != nil {
			return err
		}
	}
	keys, err := f.Keys()
	if err != nil {
		return err
	}
	s.Edge.SetKeys(keys)
	s.log.Info("client keys reloaded", zap.Int("keys", keys.Len()))
	return nil
}

// Serve runs until ctx ends, drains, and closes the tunnel pool, then the
// usage store (which writes its last second) and the audit log.
func (s *Server) Serve(ctx context.Context) error {
	defer s.closeAll()
	stop := admin.Run(s.Admin, admin.Handler(admin.Config{Metrics: s.Metrics, Ready: s.Edge.Ready,
		Routes: map[string]http.Handler{"GET /usage": s.Edge.UsageHandler()}, Pprof: s.file.AdminPprof}))
	defer stop()
	if s.file.DataDir != "" {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			keystore.Watch(wctx, s.file.KeysPath(), keysPoll, func() {
				if err := s.ReloadKeys(); err != nil {
					s.log.Error("client keys changed but could not be loaded; keeping the previous ones", zap.Error(err))
				}
			})
		}()
		defer func() { cancel(); <-done }()
	}
	return s.Edge.Serve(ctx, s.Listener, s.TLS)
}

// keysPoll is how often the keys file is checked for changes: a disabled
// key stops working within this.
const keysPoll = 500 * time.Millisecond

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
// running: client keys and both certificates (public HTTPS and tunnel
// client). Everything is loaded and checked before anything is swapped,
// so a broken file changes nothing; sessions and in-flight requests are
// untouched. Listen addresses, relays and tunnel tuning take effect on
// restart, which the log says.
func (s *Server) Reload(path string) error {
	f, err := Load(path)
	if err != nil {
		return err
	}
	keys, err := f.Keys()
	if err != nil {
		return err
	}
	front, err := certs.LoadKeyPair(f.TLS.Cert, f.TLS.Key)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	tunnelCert, err := certs.LoadKeyPair(f.Tunnel.Cert, f.Tunnel.Key)
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	s.Edge.SetKeys(keys)
	s.front.Adopt(front)
	s.tunnelCert.Adopt(tunnelCert)
	started := s.file
	if f.Listen != started.Listen || f.Tunnel.CA != started.Tunnel.CA || !slices.Equal(f.Tunnel.Relays, started.Tunnel.Relays) {
		s.log.Warn("listen, tunnel.ca or tunnel.relays differ from the config the edge started with; they take effect on restart")
	}
	return nil
}
