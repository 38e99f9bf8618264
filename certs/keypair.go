package certs

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"sync/atomic"
)

// KeyPair holds a certificate loaded from files and swaps it atomically on
// Reload, so certificates can be renewed without restarting listeners or
// dropping connections: each new handshake picks up the current pair.
type KeyPair struct {
	certFile, keyFile string
	static            bool
	// mu serialises Reload so two concurrent reloads cannot publish their
	// results out of order; readers never take it.
	mu  sync.Mutex
	cur atomic.Pointer[tls.Certificate]
}

// LoadKeyPair loads a PEM certificate and private key and remembers the
// paths for Reload.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// StaticKeyPair wraps an in-memory certificate, mainly for tests. Its
// Reload is a no-op returning nil. Leaf is filled in if missing.
func StaticKeyPair(c tls.Certificate) *KeyPair {
	if c.Leaf == nil && len(c.Certificate) > 0 {
		c.Leaf, _ = x509.ParseCertificate(c.Certificate[0])
	}
	k := &KeyPair{static: true}
	k.cur.Store(&c)
	return k
}

// Reload re-reads the files. On error the old pair stays in use, so a
// half-finished renewal (say, a new cert with the old key) never takes the
// listener down.
func (k *KeyPair) Reload() error {
	if k.static {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	c, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("certs: load key pair %s, %s: %w", k.certFile, k.keyFile, err)
	}
	if c.Leaf == nil { // GODEBUG=x509keypairleaf=0 leaves it unset
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return fmt.Errorf("certs: parse %s: %w", k.certFile, err)
		}
	}
	k.cur.Store(&c)
	return nil
}

// Adopt makes k serve n's certificate from now on, and reload from n's
// files: a config reload that names new files loads and checks them into
// a fresh KeyPair first, and only then swaps them into the listeners and
// dialers that hold k.
func (k *KeyPair) Adopt(n *KeyPair) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.certFile, k.keyFile, k.static = n.certFile, n.keyFile, n.static
	k.cur.Store(n.cur.Load())
}

// Certificate returns the current certificate, with Leaf set. Callers must
// not modify it.
func (k *KeyPair) Certificate() *tls.Certificate {
	return k.cur.Load()
}

// GetCertificate returns the current certificate; it has the signature of
// tls.Config.GetCertificate.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.cur.Load(), nil
}

// GetClientCertificate returns the current certificate; it has the
// signature of tls.Config.GetClientCertificate. It always offers the pair,
// even if the server's acceptable-CA list does not match, so a mismatch
// shows up as a clear rejection on the server rather than as "no cert".
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.cur.Load(), nil
}
