package relay

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/tunnel"
)

// ServerConfig is what NewServer puts around a relay. It is already
// resolved (certificates loaded), so that reading files and flags stays
// with the command line; the tunnel listeners, whose transport the binary
// chooses, are given to Serve.
type ServerConfig struct {
	// TunnelCert is the certificate the tunnel listeners present; Reload
	// swaps it in place.
	TunnelCert *certs.KeyPair
	// Revoked is the edge revocation list the listeners' handshakes check;
	// Reload replaces its contents. Nil: no list.
	Revoked *certs.Revocations
	// Admin, when set, starts what runs beside the relay for its whole
	// serving life (the admin listener) and returns its stop: Serve calls
	// it before accepting sessions and stops it after the drain, so the
	// drain is visible in the metrics.
	Admin func(*Server) (stop func())
}

// Server is a Relay with what a running process keeps around it: the
// admin listener beside it, and the certificate and revocation list that
// Reload swaps while it runs.
type Server struct {
	Relay *Relay
	cfg   ServerConfig
	log   *zap.Logger
}

// NewServer puts cfg around r, which New built.
func NewServer(r *Relay, cfg ServerConfig) *Server {
	return &Server{Relay: r, cfg: cfg, log: r.log}
}

// Serve starts the admin listener, serves tunnel sessions from lns until
// ctx ends, drains (see Relay.Serve, which closes lns) and then stops the
// admin listener.
func (s *Server) Serve(ctx context.Context, lns ...tunnel.Listener) error {
	if s.cfg.Admin != nil {
		defer s.cfg.Admin(s)()
	}
	return s.Relay.Serve(ctx, lns...)
}

// Update is what Reload applies to a running relay: everything in it is
// loaded and checked by the caller first.
type Update struct {
	// Relay carries the providers, keys, routes and their policies; its
	// other fields take effect on restart (see Relay.Reload).
	Relay      Config
	TunnelCert *certs.KeyPair
	// RevokedEdges replaces the revocation list (fingerprints, as
	// certs.Revocations.Set takes them).
	RevokedEdges []string
}

// Reload applies what can change while the relay runs: a new provider
// registry (swapped in whole; streams already dispatched finish on the old
// one), the tunnel certificate and the edge revocation list, which applies
// to the next handshake (sessions already up stay until they reconnect).
// If the registry or the list is refused nothing changes.
func (s *Server) Reload(u Update) error {
	if _, err := certs.ParseFingerprints(u.RevokedEdges); err != nil {
		return fmt.Errorf("revoked edges: %w", err)
	}
	if err := s.Relay.Reload(u.Relay); err != nil {
		return err
	}
	s.cfg.TunnelCert.Adopt(u.TunnelCert)
	if s.cfg.Revoked != nil {
		_ = s.cfg.Revoked.Set(u.RevokedEdges) // parsed above
		s.log.Info("edge revocation list applied", zap.Int("revoked_edges", s.cfg.Revoked.Len()))
	}
	return nil
}
