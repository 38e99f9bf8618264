package enrol

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strait/strait/certs"
)

// plainConns hides each accepted *tls.Conn from net/http, as the relay's
// listener does for enrolment connections: net/http closes a connection
// whose ALPN protocol it has no handler for.
type plainConns struct{ net.Listener }

func (l plainConns) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return struct{ net.Conn }{c}, nil
}

// fakeRelay serves the enrolment endpoints with a certificate of ca for
// 127.0.0.1; GET PathCA answers caBody.
func fakeRelay(t *testing.T, ca *certs.CA, caBody []byte) string {
	t.Helper()
	leaf, err := ca.Issue(certs.LeafOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{leaf}, NextProtos: []string{ALPN}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case PathCA:
			_, _ = w.Write(caBody)
		case PathEnrol:
			_ = json.NewEncoder(w).Encode(Response{Certificate: "issued", CA: string(ca.CertPEM)})
		default:
			http.NotFound(w, r)
		}
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(plainConns{tls.NewListener(ln, tc)}) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// TestEnrolTrustsOnlyThePinnedCA: the CA answer is fetched before the
// relay is verified, so anyone on the path can add certificates after the
// pinned one. The CA Enrol returns, which the edge writes as the tunnel's
// trust anchor, is the pinned certificate alone: a relay certificate
// from an added CA does not verify against it.
func TestEnrolTrustsOnlyThePinnedCA(t *testing.T) {
	ca, err := certs.NewCA(certs.ECDSAP256, "")
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := certs.NewCA(certs.ECDSAP256, "rogue")
	if err != nil {
		t.Fatal(err)
	}
	addr := fakeRelay(t, ca, append(append([]byte(nil), ca.CertPEM...), rogue.CertPEM...))
	tok := Token{Relays: []string{addr}, CAFingerprint: certs.FullFingerprint(ca.Cert), Secret: NewSecret(),
		Expires: time.Now().Add(time.Hour)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := Enrol(ctx, tok, Request{Secret: tok.Secret, Name: "edge", CSR: "csr"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := certs.WriteFile(path, res.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	pool, err := certs.LoadPool(path) // as the edge loads tunnel.ca
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		ca   *certs.CA
		want bool
	}{{ca, true}, {rogue, false}} {
		relay, err := c.ca.Issue(certs.LeafOptions{DNSNames: []string{"relay.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = relay.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "relay.example.com"})
		if got := err == nil; got != c.want {
			t.Errorf("relay certificate of CA %q verifies against the enrolled CA: %v (%v); want %v",
				c.ca.Cert.Subject.CommonName, got, err, c.want)
		}
	}
}

// TestEnrolUppercaseFingerprint: a token's fingerprint parses in either
// case (it is hex), so the relay's CA must match it in either case too,
// not fail as someone in the middle.
func TestEnrolUppercaseFingerprint(t *testing.T) {
	ca, err := certs.NewCA(certs.ECDSAP256, "")
	if err != nil {
		t.Fatal(err)
	}
	addr := fakeRelay(t, ca, ca.CertPEM)
	tok, err := ParseToken(Token{Relays: []string{addr}, CAFingerprint: strings.ToUpper(certs.FullFingerprint(ca.Cert)),
		Secret: NewSecret(), Expires: time.Now().Add(time.Hour)}.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Enrol(ctx, tok, Request{Secret: tok.Secret, Name: "edge", CSR: "csr"}); err != nil {
		t.Fatalf("enrol with an upper-case fingerprint: %v", err)
	}
}
