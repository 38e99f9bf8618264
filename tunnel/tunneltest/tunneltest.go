// Package tunneltest holds helpers for testing tunnel transports on real
// loopback sockets: a throwaway PKI that yields a mutually authenticated TLS
// pair (relay server, edge client) from the certs package, and the
// conformance suite every transport runs (Run) with its benchmarks
// (RunBenchmarks). Each property the suite checks states its bound in the
// doc comment of its test function.
//
// It is imported only from _test.go files.
package tunneltest

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/strait/strait/certs"
)

// RelayName is the DNS name (and common name) of the relay certificate; the
// client configs verify the server against it.
const RelayName = "relay.test"

// EdgeName is the common name of the default edge client certificate.
const EdgeName = "edge-test"

// PKI is a fresh CA with one relay server certificate and one edge client
// certificate. Each NewPKI is a separate trust domain, so certificates from
// one are refused by the other.
type PKI struct {
	CA    *certs.CA
	Relay tls.Certificate // ServerLeaf for RelayName and 127.0.0.1
	Edge  tls.Certificate // ClientLeaf with common name EdgeName
}

// NewPKI generates a CA and issues the relay and edge certificates. caName
// names the CA (empty picks a random one).
func NewPKI(tb testing.TB, caName string) *PKI {
	tb.Helper()
	ca, err := certs.NewCA(certs.ECDSAP256, caName)
	if err != nil {
		tb.Fatalf("tunneltest: new CA: %v", err)
	}
	p := &PKI{CA: ca}
	p.Relay = p.Issue(tb, certs.LeafOptions{Kind: certs.ServerLeaf, DNSNames: []string{RelayName},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	p.Edge = p.IssueEdge(tb, EdgeName)
	return p
}

// Issue signs a leaf with the PKI's CA.
func (p *PKI) Issue(tb testing.TB, opts certs.LeafOptions) tls.Certificate {
	tb.Helper()
	c, err := p.CA.Issue(opts)
	if err != nil {
		tb.Fatalf("tunneltest: issue %q: %v", opts.CommonName, err)
	}
	return c
}

// IssueEdge signs a client certificate with common name cn.
func (p *PKI) IssueEdge(tb testing.TB, cn string) tls.Certificate {
	tb.Helper()
	return p.Issue(tb, certs.LeafOptions{Kind: certs.ClientLeaf, CommonName: cn})
}

// ServerConfig is the relay's config: the relay certificate, client
// certificates required and verified against this PKI's CA.
func (p *PKI) ServerConfig() *tls.Config {
	return certs.ServerConfig(certs.StaticKeyPair(p.Relay), p.CA.Pool())
}

// ClientConfig is the edge's config presenting the default edge certificate.
func (p *PKI) ClientConfig() *tls.Config { return p.ClientConfigWith(&p.Edge) }

// ClientConfigWith trusts this PKI's CA for the relay and presents cert,
// which may come from another PKI; nil presents no client certificate.
func (p *PKI) ClientConfigWith(cert *tls.Certificate) *tls.Config {
	var kp *certs.KeyPair
	if cert != nil {
		kp = certs.StaticKeyPair(*cert)
	}
	return certs.ClientConfig(kp, p.CA.Pool(), RelayName)
}

// Listen binds a TCP listener on 127.0.0.1 with an ephemeral port and closes
// it when the test ends (closing twice is harmless for the caller).
func Listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("tunneltest: listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}
