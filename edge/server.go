package edge

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/edge/audit"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/keystore"
	"github.com/strait/strait/edge/usagedb"
)

// ServerConfig is what NewServer assembles a running edge from. Everything
// in it is already resolved (keys read, certificates loaded, dialers and
// listener made), so that reading files and flags stays with the command
// line and choosing a transport stays with the binary.
type ServerConfig struct {
	// Edge configures the edge itself; NewServer sets its Usage and Audit
	// from DataDir and Audit below.
	Edge Config
	// Listener is the public HTTPS listener; the Server owns it from
	// NewServer on, also when NewServer fails.
	Listener net.Listener
	// Front is the public certificate; TunnelCert is the client
	// certificate the relay dialers present. Reload swaps both in place.
	Front, TunnelCert *certs.KeyPair
	// FrontTLS, when set, is the public listener's TLS config instead of
	// one serving Front (certificates by ACME, which renews them itself);
	// Front is then nil.
	FrontTLS *tls.Config
	// DataDir holds the keys file, watched while the edge serves, and the
	// usage store. Empty: neither (usage and quotas in memory only).
	DataDir string
	// Registry, when set, holds the CLI-managed keys instead of DataDir's
	// keys file (Redis, with Edge.Shared): it is watched while the edge
	// serves.
	Registry keystore.Registry
	// Audit configures the audit log; nil means none.
	Audit *audit.Config
	// LoadKeys reads the client keys again after the keys file (or the
	// Registry) changed (required with DataDir or Registry).
	LoadKeys func() (*auth.Keys, error)
	// Admin, when set, starts what runs beside the edge for its whole
	// serving life (the admin listener) and returns its stop: Serve calls
	// it before taking traffic and stops it after the drain, before the
	// stores close, so the drain is visible in the metrics.
	Admin func(*Server) (stop func())
}

// Server is an Edge with what a running process keeps around it: the
// public listener, the usage store and the audit log, the keys-file
// watcher and the admin listener. NewServer opens them in order, Serve runs
// and drains them and closes them in reverse order, Reload swaps what may
// change while running.
type Server struct {
	Edge     *Edge
	Listener net.Listener
	TLS      *tls.Config
	// Usage and Audit are open when DataDir and Audit are set; Serve
	// closes them after the edge.
	Usage *usagedb.DB
	Audit *audit.Log

	cfg ServerConfig
	log *zap.Logger
}

// keysPoll is how often the keys file is checked for changes: a disabled
// key stops working within this.
const keysPoll = 500 * time.Millisecond

// NewServer opens the usage store and the audit log and builds the edge,
// which starts connecting to the relays. On error everything it was given
// or opened is closed.
func NewServer(cfg ServerConfig) (*Server, error) {
	log := cfg.Edge.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{Listener: cfg.Listener, TLS: cfg.FrontTLS, cfg: cfg, log: log}
	if s.TLS == nil {
		s.TLS = certs.FrontConfig(cfg.Front)
	}
	if err := s.openStores(); err != nil {
		s.Close()
		return nil, err
	}
	ecfg := cfg.Edge
	ecfg.Usage, ecfg.Audit = s.Usage, s.Audit
	var err error
	if s.Edge, err = New(ecfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// KeysPath is the keys file in a data directory.
func KeysPath(dataDir string) string { return filepath.Join(dataDir, keystore.FileName) }

// UsagePath is the usage store in a data directory.
func UsagePath(dataDir string) string { return filepath.Join(dataDir, usagedb.FileName) }

// openStores opens the usage store and the audit log the config asks for.
// With a shared store (Edge.Shared), usage lives there: no usage file.
func (s *Server) openStores() error {
	if dir := s.cfg.DataDir; dir != "" && s.cfg.Edge.Shared == nil {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("data_dir: %w", err)
		}
		db, err := usagedb.Open(UsagePath(dir), 5*time.Second, s.log)
		if err != nil {
			return err
		}
		s.Usage = db
	}
	if s.cfg.Audit != nil {
		s.Audit = audit.Open(*s.cfg.Audit)
	}
	return nil
}

// Close releases what NewServer was given or opened, in reverse order:
// the tunnel pool, then the usage store (which writes its last second),
// the shared store (Edge.Shared, when it is an io.Closer) and the audit
// log. Serve calls it; call it yourself only if Serve never ran.
func (s *Server) Close() {
	s.Listener.Close() // Serve's shutdown closed it already; harmless twice
	if s.Edge != nil {
		s.Edge.Close()
	}
	if s.Usage != nil {
		if err := s.Usage.Close(); err != nil {
			s.log.Error("closing the usage store", zap.Error(err))
		}
	}
	if c, ok := s.cfg.Edge.Shared.(io.Closer); ok { // writes its last usage and settlements
		if err := c.Close(); err != nil {
			s.log.Error("closing the shared store", zap.Error(err))
		}
	}
	if err := s.Audit.Close(); err != nil {
		s.log.Error("closing the audit log", zap.Error(err))
	}
}

// Serve starts the admin listener and the keys-file watcher, serves until
// ctx ends, drains (see Edge.Serve), stops the watcher and the admin
// listener, and closes everything (see Close).
func (s *Server) Serve(ctx context.Context) error {
	defer s.Close()
	if s.cfg.Admin != nil {
		defer s.cfg.Admin(s)()
	}
	if s.registry() != nil {
		defer s.watchKeys(ctx)()
	}
	return s.Edge.Serve(ctx, s.Listener, s.TLS)
}

// watchKeys reloads the client keys whenever the keys file changes (the
// `strait-edge keys` commands rewrite it), until the returned stop is
// called; stop waits for the watcher to end.
func (s *Server) watchKeys(ctx context.Context) (stop func()) {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.registry().Watch(wctx, func() {
			if err := s.reloadKeys(); err != nil {
				s.log.Error("client keys changed but could not be loaded; keeping the previous ones", zap.Error(err))
			}
		})
	}()
	return func() { cancel(); <-done }
}

// registry is where the CLI-managed keys live: Registry, else the keys
// file in DataDir; nil without either.
func (s *Server) registry() keystore.Registry {
	switch {
	case s.cfg.Registry != nil:
		return s.cfg.Registry
	case s.cfg.DataDir != "":
		return keystore.FileRegistry{Path: KeysPath(s.cfg.DataDir), Poll: keysPoll}
	}
	return nil
}

// reloadKeys reads the client keys again and swaps them in; on error the
// edge keeps the keys it has.
func (s *Server) reloadKeys() error {
	keys, err := s.cfg.LoadKeys()
	if err != nil {
		return err
	}
	s.Edge.SetKeys(keys)
	s.log.Info("client keys reloaded", zap.Int("keys", keys.Len()))
	return nil
}

// Update is what Reload applies to a running edge: everything in it is
// loaded and checked by the caller before Reload swaps anything in.
type Update struct {
	Keys              *auth.Keys
	Front, TunnelCert *certs.KeyPair
}

// Reload applies what can change while the edge runs: the client keys and
// both certificates (public HTTPS and tunnel client). Sessions and
// in-flight requests are untouched; new handshakes use the new
// certificates.
func (s *Server) Reload(u Update) {
	s.Edge.SetKeys(u.Keys)
	if u.Front != nil && s.cfg.Front != nil { // nil with ACME
		s.cfg.Front.Adopt(u.Front)
	}
	s.cfg.TunnelCert.Adopt(u.TunnelCert)
}
