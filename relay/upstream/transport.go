package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"time"
)

// TransportConfig tunes the shared upstream transport.
type TransportConfig struct {
	// ResponseHeaderTimeout bounds the wait for the provider's status line.
	// Non-streaming calls to reasoning models answer only when done, so the
	// default is generous. Zero means 10 minutes.
	ResponseHeaderTimeout time.Duration
	// DialTimeout bounds TCP connect; zero means 10s.
	DialTimeout time.Duration
	// RootCAs verifies providers' certificates; nil means the system roots.
	// Set it for self-hosted providers behind a private CA.
	RootCAs *x509.CertPool
}

// NewTransport returns the one transport all providers share: keep-alive,
// HTTP/2 where the provider offers it, and enough idle connections per host
// that a burst of requests finds warm connections.
func NewTransport(cfg TransportConfig) *http.Transport {
	if cfg.ResponseHeaderTimeout <= 0 {
		cfg.ResponseHeaderTimeout = 10 * time.Minute
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	return &http.Transport{
		// Proxy is deliberately nil: the relay dials providers directly.
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       5 * time.Minute,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		// The relay owns the encoding of its provider connections: the
		// client's Accept-Encoding never goes upstream (HeaderFilter drops
		// it), the transport offers gzip itself and hands on the decoded
		// body, so the edge always meters plain JSON and SSE and decides
		// alone what the client gets.
		DisableCompression: false,
		TLSClientConfig:    &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
	}
}
