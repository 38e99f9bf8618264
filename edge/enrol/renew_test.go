package enrol

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/enrol"
	"github.com/strait/strait/tunnel/tunneltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeRenewal serves enrol.PathRenew with mutual TLS under pki, answering
// each request with what answer makes of its CSR.
func fakeRenewal(t *testing.T, pki *tunneltest.PKI, answer func(csr []byte) enrol.Response) string {
	t.Helper()
	tc := pki.ServerConfig()
	tc.NextProtos = []string{"http/1.1"}
	ln := tls.NewListener(tunneltest.Listen(t), tc)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req enrol.Request
		if r.URL.Path != enrol.PathRenew || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(answer([]byte(req.CSR)))
	})}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// newRenewer writes a client certificate of pki for "edge" and returns a
// Renewer for it through the relay at addr.
func newRenewer(t *testing.T, pki *tunneltest.PKI, addr string) *Renewer {
	t.Helper()
	certPEM, keyPEM, err := pki.CA.IssuePEM(certs.LeafOptions{Kind: certs.ClientLeaf, CommonName: "edge"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &Renewer{CertFile: filepath.Join(dir, "edge.pem"), KeyFile: filepath.Join(dir, "edge-key.pem"), Log: zap.NewNop()}
	if err := certs.WriteFile(r.CertFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := certs.WriteFile(r.KeyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if r.KeyPair, err = certs.LoadKeyPair(r.CertFile, r.KeyFile); err != nil {
		t.Fatal(err)
	}
	r.Relays = []Target{{Addr: addr, TLS: certs.ClientConfig(r.KeyPair, pki.CA.Pool(), tunneltest.RelayName)}}
	return r
}

// TestRenewRefusesBadAnswer: a renewal answer the edge could not use on
// the tunnel (another CA, a server certificate, already expired) is
// refused before anything is written, and the current certificate stays
// in use and on disk. The relay's fingerprint field is not trusted: a
// short one does not crash the edge.
func TestRenewRefusesBadAnswer(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	other := tunneltest.NewPKI(t, "")
	sign := func(ca *certs.CA, opts certs.LeafOptions, fingerprint string) func([]byte) enrol.Response {
		return func(csr []byte) enrol.Response {
			opts.CommonName = "edge"
			_, certPEM, err := ca.SignCSR(csr, opts)
			if err != nil {
				t.Error(err)
			}
			return enrol.Response{Certificate: string(certPEM), CA: string(pki.CA.CertPEM), Fingerprint: fingerprint}
		}
	}
	client := certs.LeafOptions{Kind: certs.ClientLeaf}
	for _, tc := range []struct {
		name   string
		answer func([]byte) enrol.Response
		want   string // in the error; empty: renewed
	}{
		{"short fingerprint", sign(pki.CA, client, "ab"), ""},
		{"another CA", sign(other.CA, client, strings.Repeat("0", 64)), "unknown authority"},
		{"server certificate", sign(pki.CA, certs.LeafOptions{Kind: certs.ServerLeaf}, strings.Repeat("0", 64)), "key usage"},
		{"expired", sign(pki.CA, certs.LeafOptions{Kind: certs.ClientLeaf, NotAfter: time.Now().Add(-time.Minute)},
			strings.Repeat("0", 64)), "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRenewer(t, pki, fakeRenewal(t, pki, tc.answer))
			before := certs.FullFingerprint(r.KeyPair.Certificate().Leaf)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := r.Renew(ctx)
			onDisk, lerr := certs.LoadKeyPair(r.CertFile, r.KeyFile)
			if lerr != nil {
				t.Fatalf("files after renewal: %v", lerr)
			}
			inUse, written := certs.FullFingerprint(r.KeyPair.Certificate().Leaf), certs.FullFingerprint(onDisk.Certificate().Leaf)
			if tc.want == "" {
				if err != nil || inUse == before || written != inUse {
					t.Fatalf("renewal: %v; certificate in use changed %v, on disk matches it %v", err, inUse != before, written == inUse)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("renewal: %v; want an error containing %q", err, tc.want)
			}
			if inUse != before || written != before {
				t.Fatalf("a refused answer replaced the certificate (in use %v, on disk %v)", inUse != before, written != before)
			}
			t.Logf("%v", err)
		})
	}
}

// TestRenewRetriesTheSameKey: when a renewal's answer is lost (the relay
// may have issued the certificate), the next attempt asks for the same
// key, which the relay answers with that certificate again; once a
// certificate is installed, the next renewal asks for a fresh key.
func TestRenewRetriesTheSameKey(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	var keys []crypto.PublicKey
	answer := func(csrPEM []byte) enrol.Response {
		block, _ := pem.Decode(csrPEM)
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			t.Error(err)
			panic(http.ErrAbortHandler)
		}
		if keys = append(keys, csr.PublicKey); len(keys) == 1 {
			panic(http.ErrAbortHandler) // the connection is cut before the answer
		}
		_, certPEM, err := pki.CA.SignCSR(csrPEM, certs.LeafOptions{Kind: certs.ClientLeaf, CommonName: "edge"})
		if err != nil {
			t.Error(err)
		}
		return enrol.Response{Certificate: string(certPEM)}
	}
	r := newRenewer(t, pki, fakeRenewal(t, pki, answer))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Renew(ctx); err == nil {
		t.Fatal("renewal with its answer lost succeeded")
	}
	for range 2 {
		if err := r.Renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	same := func(a, b crypto.PublicKey) bool { return a.(interface{ Equal(crypto.PublicKey) bool }).Equal(b) }
	if len(keys) != 3 || !same(keys[0], keys[1]) || same(keys[1], keys[2]) {
		t.Fatalf("%d requests; the retry asked for the lost key %v, the next renewal for a fresh one %v",
			len(keys), len(keys) > 1 && same(keys[0], keys[1]), len(keys) > 2 && !same(keys[1], keys[2]))
	}
	if !same(r.KeyPair.Certificate().Leaf.PublicKey, keys[2]) {
		t.Fatal("the key pair in use is not the last one renewed")
	}
}
