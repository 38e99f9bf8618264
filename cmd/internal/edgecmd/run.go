package edgecmd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/admin"
	"github.com/strait/strait/edge"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/autodial"
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
}

// Build loads certificates and keys, binds the HTTPS listener and starts the
// tunnel pool. ln may be nil, in which case f.Listen is bound. Close the
// Edge when done.
func Build(f *File, ln net.Listener, log *zap.Logger) (*Server, error) {
	keys, err := f.Keys()
	if err != nil {
		return nil, err
	}
	dialers, err := f.dialers(log)
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
		MaxBodyBytes: f.MaxBody, SessionWait: f.SessionWait, DrainTimeout: f.DrainTimeout, Logger: log,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	srv := &Server{Edge: e, Listener: ln, TLS: certs.FrontConfig(front), Metrics: reg}
	if addr := f.adminListen(); addr != "" {
		if srv.Admin, err = net.Listen("tcp", addr); err != nil {
			ln.Close()
			e.Close()
			return nil, fmt.Errorf("admin_listen: %w", err)
		}
	}
	return srv, nil
}

func (f *File) dialers(log *zap.Logger) ([]tunnel.Dialer, error) {
	kp, err := certs.LoadKeyPair(f.Tunnel.Cert, f.Tunnel.Key)
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	pool, err := certs.LoadPool(f.Tunnel.CA)
	if err != nil {
		return nil, fmt.Errorf("tunnel.ca: %w", err)
	}
	out := make([]tunnel.Dialer, 0, len(f.Tunnel.Relays))
	for _, r := range f.Tunnel.Relays {
		d, err := f.relayDialer(r, certs.ClientConfig(kp, pool, r.serverName()), log)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
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
