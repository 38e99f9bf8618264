package relaycmd

import (
	"context"
	"fmt"
	"net"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/relay"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/tunnel/wstun"
)

// Server is a relay assembled from a config: ready to Serve.
type Server struct {
	Relay    *relay.Relay
	Listener *wstun.Listener
}

// Build loads certificates, binds the tunnel listener and builds the relay.
// ln may be nil, in which case f.Listen is bound.
func Build(f *File, ln net.Listener, log *zap.Logger) (*Server, error) {
	providers, err := f.ProviderConfigs()
	if err != nil {
		return nil, err
	}
	transport := upstream.TransportConfig{ResponseHeaderTimeout: f.ResponseHeaderTimeout}
	if f.UpstreamCA != "" {
		if transport.RootCAs, err = certs.LoadPool(f.UpstreamCA); err != nil {
			return nil, fmt.Errorf("upstream_ca: %w", err)
		}
	}
	r, err := relay.New(relay.Config{
		Providers: providers, MaxBodyBytes: f.MaxBodyBytes, DrainTimeout: f.DrainTimeout,
		Transport: transport,
		Logger:    log,
	})
	if err != nil {
		return nil, err
	}
	kp, err := certs.LoadKeyPair(f.TLS.Cert, f.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	pool, err := certs.LoadPool(f.TLS.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("tls.client_ca: %w", err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", f.Listen); err != nil {
			return nil, err
		}
	}
	wl, err := wstun.Listen(ln, certs.ServerConfig(kp, pool), wstun.Config{
		Heartbeat: f.Heartbeat, HeartbeatTimeout: f.HeartbeatTimeout, Logger: log,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &Server{Relay: r, Listener: wl}, nil
}

// Serve runs until ctx ends, then drains.
func (s *Server) Serve(ctx context.Context) error {
	return s.Relay.Serve(ctx, s.Listener)
}

// Addr is the address the relay listens on.
func (s *Server) Addr() net.Addr { return s.Listener.Addr() }
