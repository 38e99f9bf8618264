package edgecmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/admin"
	"github.com/strait/strait/edge"
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
	Metrics *prometheus.Registry

	file              *File          // as last loaded, to tell what a reload cannot change
	front, tunnelCert *certs.KeyPair // swapped by Reload
	log               *zap.Logger
}

// Build loads certificates and keys, binds the HTTPS listener and starts the
// tunnel pool. ln may be nil, in which case f.Listen is bound. Close the
// Edge when done.
func Build(f *File, ln net.Listener, log *zap.Logger) (*Server, error) {
	keys, err := f.Keys()
	if err != nil {
		return nil, err
	}
	dialers, tunnelCert, err := f.dialers(log)
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
	reg := admin.NewRegistry()
	e, err := edge.New(edge.Config{Metrics: reg,
		Keys: keys, Relays: dialers, SessionsPerRelay: f.Tunnel.SessionsPerRelay,
		ReconnectMin: f.Tunnel.ReconnectMin, ReconnectMax: f.Tunnel.ReconnectMax,
		Pool: pool.Config{HealthyAfter: f.Tunnel.HealthyAfter, ProbeInterval: f.Tunnel.ProbeInterval,
			ProbeTimeout: f.Tunnel.ProbeTimeout},
		MaxBodyBytes: f.MaxBody, SessionWait: f.SessionWait, DrainTimeout: f.DrainTimeout, Logger: log,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv := &Server{Edge: e, Listener: ln, TLS: certs.FrontConfig(front), Metrics: reg,
		file: f, front: front, tunnelCert: tunnelCert, log: log}
	if addr := f.adminListen(); addr != "" {
		if srv.Admin, err = net.Listen("tcp", addr); err != nil {
			ln.Close()
			e.Close()
			return nil, fmt.Errorf("admin_listen: %w", err)
		}
	}
	return srv, nil
}

// dialers builds one dialer per relay, all presenting the returned client
// certificate.
func (f *File) dialers(log *zap.Logger) ([]tunnel.Dialer, *certs.KeyPair, error) {
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
		d, err := f.relayDialer(r, certs.ClientConfig(kp, roots, r.serverName()), log)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, d)
	}
	return out, kp, nil
}

// relayDialer builds the dialer for one relay's configured transport.
func (f *File) relayDialer(r RelayFile, tc *tls.Config, log *zap.Logger) (tunnel.Dialer, error) {
	t := f.Tunnel
	ws := func() (tunnel.Dialer, error) {
		return wstun.NewDialer(r.Address, tc, wstun.Config{Heartbeat: t.Heartbeat, HeartbeatTimeout: t.HeartbeatTimeout,
			StreamWindow: uint32(t.StreamWindow), Logger: log})
	}
	quic := func() (tunnel.Dialer, error) {
		return quictun.NewDialer(r.quicAddress(), tc, quictun.Config{Heartbeat: t.Heartbeat, HeartbeatTimeout: t.HeartbeatTimeout,
			StreamWindow: t.StreamWindow, SessionWindow: t.SessionWindow, Logger: log})
	}
	switch r.transport() {
	case "ws":
		return ws()
	case "quic":
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
	return autodial.New(autodial.Config{Preferred: q, Fallback: w, PreferredTransport: "quic",
		PreferredTimeout: t.QUICFallbackAfter, RetryPreferred: t.QUICRetry, Logger: log})
}

// Serve runs until ctx ends, drains, and closes the tunnel pool.
func (s *Server) Serve(ctx context.Context) error {
	defer s.Edge.Close()
	stop := admin.Run(s.Admin, admin.Handler(admin.Config{Metrics: s.Metrics, Ready: s.Edge.Ready}))
	defer stop()
	return s.Edge.Serve(ctx, s.Listener, s.TLS)
}

// Addr is the address the edge listens on.
func (s *Server) Addr() net.Addr { return s.Listener.Addr() }

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
	old := s.file
	if f.Listen != old.Listen || f.Tunnel.CA != old.Tunnel.CA || !slices.Equal(f.Tunnel.Relays, old.Tunnel.Relays) {
		s.log.Warn("listen, tunnel.ca and tunnel.relays changed in the file; they take effect on restart")
	}
	s.file = f
	return nil
}
