// Package certs implements CA and leaf generation, PEM loading, reloadable
// key pairs and tls.Config builders for the Strait mutual-TLS tunnel.
//
// Both ends pin the project CA: nothing in this package ever consults the
// system roots, because a publicly trusted certificate must not be enough to
// join the tunnel. Only the standard library is used.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// Algorithm selects the key type of generated keys.
type Algorithm string

const (
	// ECDSAP256 is ECDSA on NIST P-256, the default: it is accepted by every
	// TLS stack the front listener may meet.
	ECDSAP256 Algorithm = "ecdsa-p256"
	// Ed25519 gives smaller, faster keys; fine for the tunnel, where both
	// ends are Go, but some older HTTPS clients cannot use it on the front.
	Ed25519 Algorithm = "ed25519"
)

const (
	// defaultLeafValidity is 825 days, the longest lifetime Apple platforms
	// accept for TLS server certificates; it matters for the front cert.
	defaultLeafValidity = 825 * 24 * time.Hour
	// caValidity is ten years: the CA is rotated rarely and by hand.
	caValidity = 10 * 365 * 24 * time.Hour
	// clockSkew back-dates NotBefore so a peer whose clock runs a little
	// behind does not reject a freshly issued certificate.
	clockSkew = time.Hour
)

// CA is a loaded or generated certificate authority able to sign leaves.
type CA struct {
	Cert    *x509.Certificate // the CA certificate
	Key     crypto.Signer     // the CA private key
	CertPEM []byte            // Cert PEM-encoded, ready to write or to pin
}

// LeafKind says which side of a TLS connection a leaf authenticates.
type LeafKind int

const (
	// ServerLeaf certificates carry ExtKeyUsageServerAuth only.
	ServerLeaf LeafKind = iota
	// ClientLeaf certificates carry ExtKeyUsageClientAuth only, so an edge
	// certificate can never impersonate the relay (and vice versa).
	ClientLeaf
)

// LeafOptions describes a leaf certificate for CA.Issue and CA.IssuePEM.
type LeafOptions struct {
	Kind       LeafKind      // ServerLeaf (zero) or ClientLeaf
	CommonName string        // zero = first DNS name, else first IP, else "strait"
	DNSNames   []string      // DNS SANs; zero = none
	IPs        []net.IP      // IP SANs; zero = none
	Validity   time.Duration // zero = 825 days; clamped to the CA's NotAfter
	Algorithm  Algorithm     // key type; zero = ECDSAP256
	// NotAfter, if non-zero, overrides Validity (and is not clamped); it
	// lets tests make expired certificates.
	NotAfter time.Time
}

// NewCA generates a self-signed CA valid for ten years. An empty name
// becomes "Strait CA <short random>", so CAs from different installs are
// distinguishable in logs and certificate viewers.
func NewCA(alg Algorithm, name string) (*CA, error) {
	key, err := generateKey(alg)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = "Strait CA " + shortRandom()
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Strait"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true, // encode 0 explicitly: no intermediates may be minted
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("certs: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certs: parse CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: pemEncode("CERTIFICATE", der)}, nil
}

// Issue signs a new leaf with a fresh key. The returned certificate has Leaf
// set and its chain is just the leaf: peers pin the CA, so there is nothing
// in between to send.
func (ca *CA) Issue(opts LeafOptions) (tls.Certificate, error) {
	der, key, err := ca.sign(opts)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certs: parse leaf: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// IssuePEM is Issue returning the certificate PEM and the PKCS#8 key PEM.
func (ca *CA) IssuePEM(opts LeafOptions) (certPEM, keyPEM []byte, err error) {
	der, key, err := ca.sign(opts)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = marshalKeyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return pemEncode("CERTIFICATE", der), keyPEM, nil
}

// Pool returns a new pool holding only this CA, for RootCAs or ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

func (ca *CA) sign(opts LeafOptions) ([]byte, crypto.Signer, error) {
	tmpl, err := leafTemplate(opts, ca.Cert.NotAfter)
	if err != nil {
		return nil, nil, err
	}
	key, err := generateKey(opts.Algorithm)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: sign leaf %q: %w", tmpl.Subject.CommonName, err)
	}
	return der, key, nil
}

func leafTemplate(opts LeafOptions, caNotAfter time.Time) (*x509.Certificate, error) {
	var eku x509.ExtKeyUsage
	switch opts.Kind {
	case ServerLeaf:
		eku = x509.ExtKeyUsageServerAuth
	case ClientLeaf:
		eku = x509.ExtKeyUsageClientAuth
	default:
		return nil, fmt.Errorf("certs: unknown leaf kind %d", opts.Kind)
	}
	notBefore, notAfter := leafValidity(opts, caNotAfter)
	return &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: leafName(opts)},
		DNSNames:              opts.DNSNames,
		IPAddresses:           opts.IPs,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true, // says "not a CA" explicitly
		// ECDSA and Ed25519 only sign during the handshake, so
		// KeyEncipherment (an RSA key-transport relic) is not needed.
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{eku},
	}, nil
}

func leafValidity(opts LeafOptions, caNotAfter time.Time) (notBefore, notAfter time.Time) {
	now := time.Now()
	notAfter = opts.NotAfter
	if notAfter.IsZero() {
		v := opts.Validity
		if v <= 0 {
			v = defaultLeafValidity
		}
		// A leaf outliving its CA would only produce confusing errors later.
		notAfter = now.Add(v)
		if notAfter.After(caNotAfter) {
			notAfter = caNotAfter
		}
	}
	notBefore = now.Add(-clockSkew)
	if !notBefore.Before(notAfter) { // deliberately expired test certificate
		notBefore = notAfter.Add(-clockSkew)
	}
	return notBefore, notAfter
}

func leafName(opts LeafOptions) string {
	switch {
	case opts.CommonName != "":
		return opts.CommonName
	case len(opts.DNSNames) > 0:
		return opts.DNSNames[0]
	case len(opts.IPs) > 0:
		return opts.IPs[0].String()
	}
	return "strait"
}

// LoadCA loads a CA certificate and its private key (PKCS#8, SEC 1 or
// PKCS#1 PEM), checking that they match and that the certificate is a CA.
func LoadCA(certFile, keyFile string) (*CA, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("certs: load CA %s, %s: %w", certFile, keyFile, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certs: parse CA %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("certs: %s is not a CA certificate", certFile)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certs: %s: key type %T cannot sign", keyFile, pair.PrivateKey)
	}
	return &CA{Cert: cert, Key: key, CertPEM: pemEncode("CERTIFICATE", cert.Raw)}, nil
}

// LoadPool reads every CERTIFICATE block of a PEM file into a new pool,
// ignoring other block types. Unlike x509.CertPool.AppendCertsFromPEM it
// reports unparsable certificates, and it fails if the file has none: an
// empty pool would silently reject every peer.
func LoadPool(caFile string) (*x509.CertPool, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("certs: read CA pool: %w", err)
	}
	pool, n := x509.NewCertPool(), 0
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certs: parse certificate in %s: %w", caFile, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("certs: %s contains no PEM certificates", caFile)
	}
	return pool, nil
}

// Fingerprint returns the first 16 hex characters of the SHA-256 of the
// certificate's DER, short enough for log lines. A nil cert gives "".
func Fingerprint(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:8])
}

func generateKey(alg Algorithm) (crypto.Signer, error) {
	switch alg {
	case "", ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case Ed25519:
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return key, nil
	}
	return nil, fmt.Errorf("certs: unknown algorithm %q (want %q or %q)", alg, ECDSAP256, Ed25519)
}

// randomSerial returns a random 128-bit serial. The top bit is forced so
// the value is always positive, non-zero and exactly 128 bits long.
func randomSerial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes instead)
	b[0] |= 0x80
	return new(big.Int).SetBytes(b)
}

func shortRandom() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func marshalKeyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("certs: marshal key: %w", err)
	}
	return pemEncode("PRIVATE KEY", der), nil
}

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
