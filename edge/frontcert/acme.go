// Package frontcert obtains and renews the edge's public HTTPS certificate
// by ACME (RFC 8555) with golang.org/x/crypto/acme/autocert: TLS-ALPN-01 on
// the front listener itself, and HTTP-01 when a port 80 listener serves
// HTTPHandler. Certificates and the account key are cached on disk and
// renewed before they expire, with no restart.
package frontcert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// LetsEncrypt is the default ACME directory.
const LetsEncrypt = acme.LetsEncryptURL

// Config configures ACME.
type Config struct {
	// Domains are the names the certificate is for; requests for any
	// other name get no certificate (autocert's host policy).
	Domains []string
	// Email is the ACME account's contact, for expiry warnings; optional.
	Email string
	// DirectoryURL is the ACME directory; zero means Let's Encrypt.
	DirectoryURL string
	// DirectoryCAs, when set, are the roots the directory's HTTPS
	// certificate must chain to instead of the system's (a private ACME
	// server such as step-ca, or pebble in tests).
	DirectoryCAs *x509.CertPool
	// CacheDir keeps the account key and certificates (0700).
	CacheDir string
	// RenewBefore renews a certificate this long before it expires; zero
	// means autocert's 30 days.
	RenewBefore time.Duration
}

// Manager is an ACME certificate source for the front listener.
type Manager struct {
	m *autocert.Manager
}

// New validates cfg and returns a Manager. Nothing is requested until the
// first TLS handshake for one of the domains (or Warm).
func New(cfg Config) (*Manager, error) {
	if len(cfg.Domains) == 0 {
		return nil, errors.New("acme: at least one domain is required")
	}
	if cfg.CacheDir == "" {
		return nil, errors.New("acme: a cache directory is required (the account key and certificates live there)")
	}
	client := &acme.Client{DirectoryURL: cfg.DirectoryURL}
	if client.DirectoryURL == "" {
		client.DirectoryURL = LetsEncrypt
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.DirectoryCAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.DirectoryCAs, MinVersion: tls.VersionTLS12}
	}
	client.HTTPClient = &http.Client{Timeout: time.Minute, Transport: &orderLocation{base: tr}}
	return &Manager{m: &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       autocert.DirCache(cfg.CacheDir),
		HostPolicy:  autocert.HostWhitelist(cfg.Domains...),
		RenewBefore: cfg.RenewBefore,
		Email:       cfg.Email,
		Client:      client,
	}}, nil
}

// TLSConfig is the front listener's config: certificates from ACME, and
// the acme-tls/1 protocol for TLS-ALPN-01 challenges beside h2 and
// HTTP/1.1. TLS 1.2 stays allowed for older SDK clients, as with files.
func (m *Manager) TLSConfig() *tls.Config {
	tc := m.m.TLSConfig()
	tc.MinVersion = tls.VersionTLS12
	return tc
}

// HTTPHandler answers HTTP-01 challenges on port 80 and redirects
// everything else to HTTPS. The port is dropped from the Host header
// before autocert's host policy sees it: the policy compares names, and a
// validator reaching a mapped or non-default port (pebble in tests, a
// container's published port) still asks for the same name.
func (m *Manager) HTTPHandler() http.Handler {
	h := m.m.HTTPHandler(nil)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, err := net.SplitHostPort(r.Host); err == nil {
			r.Host = host
		}
		h.ServeHTTP(w, r)
	})
}

// Warm obtains (or loads from the cache) the ECDSA certificate for domain
// now, instead of on the first client's handshake. autocert bounds it
// (about five minutes); the challenge is answered by the front listener,
// which must be serving TLSConfig already.
func (m *Manager) Warm(domain string) (*tls.Certificate, error) {
	c, err := m.m.GetCertificate(&tls.ClientHelloInfo{ServerName: domain, SupportedProtos: []string{"http/1.1"},
		SupportedCurves:  []tls.CurveID{tls.CurveP256},
		CipherSuites:     []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}})
	if err != nil {
		return nil, fmt.Errorf("acme: certificate for %s: %w", domain, err)
	}
	return c, nil
}
