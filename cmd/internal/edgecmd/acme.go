package edgecmd

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/edge/frontcert"
)

// ACMEFile gets the public certificate by ACME instead of from files.
type ACMEFile struct {
	// Domains are the edge's public names; clients must use one of them.
	Domains []string `yaml:"domains"`
	// Email is the ACME account contact (expiry warnings); optional.
	Email string `yaml:"email"`
	// Directory is the ACME directory URL; empty means Let's Encrypt.
	Directory string `yaml:"directory"`
	// DirectoryCA is a PEM file of roots for a private ACME server's HTTPS
	// (step-ca, pebble); empty means the system roots.
	DirectoryCA string `yaml:"directory_ca"`
	// CacheDir keeps the account key and certificates; empty means
	// data_dir/acme.
	CacheDir string `yaml:"cache_dir"`
	// HTTPListen, e.g. ":80", also answers HTTP-01 challenges there (and
	// redirects other requests to HTTPS); TLS-ALPN-01 on listen works
	// without it.
	HTTPListen string `yaml:"http_listen"`
}

func (a ACMEFile) enabled() bool { return len(a.Domains) > 0 }

// validateFront checks that exactly one certificate source is configured.
func (f *File) validateFront() error {
	files := f.TLS.Cert != "" || f.TLS.Key != ""
	switch {
	case f.TLS.ACME.enabled() && files:
		return errors.New("tls: cert/key and acme are exclusive: choose one")
	case f.TLS.ACME.enabled():
		if f.TLS.ACME.CacheDir == "" && f.DataDir == "" {
			return errors.New("tls.acme: cache_dir is required without a data_dir")
		}
		return nil
	case f.TLS.Cert == "" || f.TLS.Key == "":
		return errors.New("tls: cert and key are required (or acme.domains)")
	}
	return nil
}

// frontACME is the ACME certificate source (TLS-ALPN-01 on the listener
// itself, so it must be reachable on port 443 under the domains, and
// HTTP-01 with http_listen), or nil when the certificate comes from files.
func (f *File) frontACME() (*frontcert.Manager, error) {
	a := f.TLS.ACME
	if !a.enabled() {
		return nil, nil
	}
	cfg := frontcert.Config{Domains: a.Domains, Email: a.Email, DirectoryURL: a.Directory, CacheDir: a.CacheDir}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(f.DataDir, "acme")
	}
	if a.DirectoryCA != "" {
		pool, err := certs.LoadPool(a.DirectoryCA)
		if err != nil {
			return nil, fmt.Errorf("tls.acme.directory_ca: %w", err)
		}
		cfg.DirectoryCAs = pool
	}
	m, err := frontcert.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("tls.acme: %w", err)
	}
	return m, nil
}

// serveHTTP01 answers HTTP-01 challenges on tls.acme.http_listen, if set,
// until the returned stop.
func (s *Server) serveHTTP01() (stop func(), err error) {
	addr := s.file.TLS.ACME.HTTPListen
	if s.acme == nil || addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tls.acme.http_listen: %w", err)
	}
	srv := &http.Server{Handler: s.acme.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	return func() { _ = srv.Close(); <-done }, nil
}

// frontKeyPair loads the public certificate from files; nil with ACME.
func (f *File) frontKeyPair() (*certs.KeyPair, error) {
	if f.TLS.ACME.enabled() {
		return nil, nil
	}
	kp, err := certs.LoadKeyPair(f.TLS.Cert, f.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return kp, nil
}
