package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// --- helpers ---------------------------------------------------------------

func mustCA(t *testing.T, alg Algorithm) *CA {
	t.Helper()
	ca, err := NewCA(alg, "")
	if err != nil {
		t.Fatalf("NewCA(%q): %v", alg, err)
	}
	return ca
}

func mustIssue(t *testing.T, ca *CA, opts LeafOptions) tls.Certificate {
	t.Helper()
	c, err := ca.Issue(opts)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", opts, err)
	}
	return c
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no CERTIFICATE block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert
}

type hsResult struct {
	serverErr, clientErr error
	state                tls.ConnectionState // client's view, on success
}

// handshake runs one real TLS connection over loopback TCP.
func handshake(t *testing.T, srvCfg, cliCfg *tls.Config) hsResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() { srvErr <- serveOne(ln, srvCfg) }()
	var res hsResult
	res.state, res.clientErr = dialOne(ln.Addr().String(), cliCfg)
	res.serverErr = <-srvErr
	return res
}

func serveOne(ln net.Listener, cfg *tls.Config) error {
	raw, err := ln.Accept()
	if err != nil {
		return err
	}
	conn := tls.Server(raw, cfg)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := conn.Handshake(); err != nil {
		return err
	}
	_, err = conn.Write([]byte("k"))
	return err
}

func dialOne(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	conn := tls.Client(raw, cfg)
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if err := conn.Handshake(); err != nil {
		return tls.ConnectionState{}, err
	}
	// In TLS 1.3 the client's handshake completes before the server has
	// checked the client certificate; a rejection arrives on first read.
	if _, err := io.ReadFull(conn, make([]byte, 1)); err != nil {
		return tls.ConnectionState{}, err
	}
	return conn.ConnectionState(), nil
}

func fileMode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// --- Generate ----------------------------------------------------------------

func TestGenerate(t *testing.T) {
	for _, tc := range []struct {
		alg    Algorithm
		pubAlg x509.PublicKeyAlgorithm
	}{
		{"", x509.ECDSA},
		{ECDSAP256, x509.ECDSA},
		{Ed25519, x509.Ed25519},
	} {
		t.Run(orDefault(string(tc.alg), "default"), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pki") // does not exist yet
			files, err := Generate(GenerateOptions{
				Dir: dir, Algorithm: tc.alg,
				FrontDNS: []string{"api.example.com"},
				FrontIPs: []net.IP{net.ParseIP("203.0.113.7")},
			})
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			if m := fileMode(t, dir); m != 0o700 {
				t.Errorf("dir mode = %v, want 0700", m)
			}
			checkFiles(t, dir, files, true)
			for _, p := range []string{files.CACert, files.RelayCert, files.EdgeCert, files.FrontCert} {
				if got := readCert(t, p).PublicKeyAlgorithm; got != tc.pubAlg {
					t.Errorf("%s: key algorithm %v, want %v", p, got, tc.pubAlg)
				}
			}
			ca := readCert(t, files.CACert)
			checkCA(t, ca)
			checkRelay(t, ca, readCert(t, files.RelayCert), []string{"localhost", "127.0.0.1", "::1"})
			checkEdge(t, ca, readCert(t, files.EdgeCert), "strait-edge")
			checkFront(t, readCert(t, files.FrontCA), readCert(t, files.FrontCert))
			if err := verify(readCert(t, files.FrontCert), ca, "api.example.com", x509.ExtKeyUsageServerAuth); err == nil {
				t.Error("front cert chains to the tunnel CA: an edge would take it for a relay")
			}
			checkGeneratedHandshake(t, files)
		})
	}
}

// checkFiles verifies names, modes and that keys are PKCS#8.
func checkFiles(t *testing.T, dir string, f Files, front bool) {
	t.Helper()
	want := map[string]*string{
		"ca.pem": &f.CACert, "ca-key.pem": &f.CAKey,
		"relay.pem": &f.RelayCert, "relay-key.pem": &f.RelayKey,
		"edge.pem": &f.EdgeCert, "edge-key.pem": &f.EdgeKey,
		"front.pem": &f.FrontCert, "front-key.pem": &f.FrontKey, "front-ca.pem": &f.FrontCA,
	}
	for name, got := range want {
		isFront := strings.HasPrefix(name, "front")
		if isFront && !front {
			if *got != "" {
				t.Errorf("Files path for %s = %q, want empty", name, *got)
			}
			continue
		}
		if path := filepath.Join(dir, name); *got != path {
			t.Errorf("Files path for %s = %q, want %q", name, *got, path)
		}
		wantMode := fs.FileMode(0o644)
		if strings.HasSuffix(name, "-key.pem") {
			wantMode = 0o600
			checkPKCS8(t, *got)
		}
		if m := fileMode(t, *got); m != wantMode {
			t.Errorf("%s mode = %v, want %v", name, m, wantMode)
		}
	}
	wantCount := 6
	if front {
		wantCount = 9
	}
	if names := dirNames(t, dir); len(names) != wantCount {
		t.Errorf("dir holds %v, want %d files (no temp leftovers)", names, wantCount)
	}
}

func checkPKCS8(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("%s: want a PKCS#8 PRIVATE KEY block", path)
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

func checkCA(t *testing.T, ca *x509.Certificate) {
	t.Helper()
	if !ca.IsCA || !ca.BasicConstraintsValid || ca.MaxPathLen != 0 || !ca.MaxPathLenZero {
		t.Errorf("CA constraints: IsCA=%v BCV=%v MaxPathLen=%d zero=%v",
			ca.IsCA, ca.BasicConstraintsValid, ca.MaxPathLen, ca.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; ca.KeyUsage != want {
		t.Errorf("CA KeyUsage = %v, want %v", ca.KeyUsage, want)
	}
	if !strings.HasPrefix(ca.Subject.CommonName, "Strait CA ") || len(ca.Subject.CommonName) <= len("Strait CA ") {
		t.Errorf("CA CN = %q", ca.Subject.CommonName)
	}
	if n := ca.SerialNumber.BitLen(); n != 128 {
		t.Errorf("CA serial is %d bits, want 128", n)
	}
	if d := ca.NotAfter.Sub(ca.NotBefore); d < 10*365*24*time.Hour {
		t.Errorf("CA validity %v, want >= 10 years", d)
	}
}

func checkLeafCommon(t *testing.T, leaf *x509.Certificate, eku x509.ExtKeyUsage) {
	t.Helper()
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{eku}) {
		t.Errorf("%s: EKU = %v, want [%v]", leaf.Subject.CommonName, leaf.ExtKeyUsage, eku)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || leaf.IsCA {
		t.Errorf("%s: KeyUsage=%v IsCA=%v", leaf.Subject.CommonName, leaf.KeyUsage, leaf.IsCA)
	}
	if n := leaf.SerialNumber.BitLen(); n != 128 {
		t.Errorf("%s: serial is %d bits", leaf.Subject.CommonName, n)
	}
	skew := time.Since(leaf.NotBefore)
	if skew < 59*time.Minute || skew > 61*time.Minute {
		t.Errorf("%s: NotBefore is %v ago, want ~1h", leaf.Subject.CommonName, skew)
	}
	if d := time.Until(leaf.NotAfter); d < 824*24*time.Hour || d > 826*24*time.Hour {
		t.Errorf("%s: expires in %v, want ~825 days", leaf.Subject.CommonName, d)
	}
}

func verify(leaf, ca *x509.Certificate, name string, eku x509.ExtKeyUsage) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{eku}})
	return err
}

func checkRelay(t *testing.T, ca, relay *x509.Certificate, names []string) {
	t.Helper()
	checkLeafCommon(t, relay, x509.ExtKeyUsageServerAuth)
	for _, name := range names {
		if err := verify(relay, ca, name, x509.ExtKeyUsageServerAuth); err != nil {
			t.Errorf("relay cert does not verify for %q: %v", name, err)
		}
	}
	if err := verify(relay, ca, "", x509.ExtKeyUsageClientAuth); err == nil {
		t.Error("relay cert verified for client auth")
	}
}

func checkEdge(t *testing.T, ca, edge *x509.Certificate, cn string) {
	t.Helper()
	checkLeafCommon(t, edge, x509.ExtKeyUsageClientAuth)
	if edge.Subject.CommonName != cn {
		t.Errorf("edge CN = %q, want %q", edge.Subject.CommonName, cn)
	}
	if err := verify(edge, ca, "", x509.ExtKeyUsageClientAuth); err != nil {
		t.Errorf("edge cert does not verify for client auth: %v", err)
	}
	if err := verify(edge, ca, "", x509.ExtKeyUsageServerAuth); err == nil {
		t.Error("edge cert verified for server auth")
	}
}

func checkFront(t *testing.T, ca, front *x509.Certificate) {
	t.Helper()
	checkLeafCommon(t, front, x509.ExtKeyUsageServerAuth)
	if !slices.Equal(front.DNSNames, []string{"api.example.com"}) ||
		len(front.IPAddresses) != 1 || !front.IPAddresses[0].Equal(net.ParseIP("203.0.113.7")) {
		t.Errorf("front SANs = %v %v", front.DNSNames, front.IPAddresses)
	}
	for _, name := range []string{"api.example.com", "203.0.113.7"} {
		if err := verify(front, ca, name, x509.ExtKeyUsageServerAuth); err != nil {
			t.Errorf("front cert does not verify for %q: %v", name, err)
		}
	}
}

// checkGeneratedHandshake wires the generated files through the same
// loaders the binaries use and runs a real mutual-TLS handshake.
func checkGeneratedHandshake(t *testing.T, f Files) {
	t.Helper()
	pool, err := LoadPool(f.CACert)
	if err != nil {
		t.Fatal(err)
	}
	relay, err := LoadKeyPair(f.RelayCert, f.RelayKey)
	if err != nil {
		t.Fatal(err)
	}
	edge, err := LoadKeyPair(f.EdgeCert, f.EdgeKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"localhost", "127.0.0.1"} {
		res := handshake(t, ServerConfig(relay, pool), ClientConfig(edge, pool, host))
		if res.serverErr != nil || res.clientErr != nil {
			t.Fatalf("handshake to %s: server=%v client=%v", host, res.serverErr, res.clientErr)
		}
		if res.state.Version != tls.VersionTLS13 {
			t.Errorf("negotiated %x, want TLS 1.3", res.state.Version)
		}
	}
}

func TestGenerateOptions(t *testing.T) {
	dir := t.TempDir()
	files, err := Generate(GenerateOptions{
		Dir: dir, RelayDNS: []string{"relay.example.com"}, EdgeName: "edge-7", Validity: 48 * time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, files, false)
	ca, relay, edge := readCert(t, files.CACert), readCert(t, files.RelayCert), readCert(t, files.EdgeCert)
	if !slices.Equal(relay.DNSNames, []string{"relay.example.com"}) || len(relay.IPAddresses) != 0 {
		t.Errorf("relay SANs = %v %v, want exactly [relay.example.com]", relay.DNSNames, relay.IPAddresses)
	}
	if err := verify(relay, ca, "relay.example.com", x509.ExtKeyUsageServerAuth); err != nil {
		t.Error(err)
	}
	if edge.Subject.CommonName != "edge-7" {
		t.Errorf("edge CN = %q", edge.Subject.CommonName)
	}
	if d := edge.NotAfter.Sub(edge.NotBefore); d != 49*time.Hour {
		t.Errorf("edge validity window = %v, want 48h + 1h skew", d)
	}
}

func TestGenerateErrorsWriteNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   GenerateOptions
		setDir bool
		want   string
	}{
		{"no dir", GenerateOptions{}, false, "Dir is required"},
		{"bad algorithm", GenerateOptions{Algorithm: "rsa-1024"}, true, "unknown algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			if tc.setDir {
				tc.opts.Dir = dir
			}
			_, err := Generate(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want containing %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("output dir created despite error: %v", err)
			}
		})
	}
}

func TestGenerateOverwrite(t *testing.T) {
	for _, existing := range []string{"ca.pem", "edge-key.pem", "front.pem"} {
		t.Run(existing, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, existing)
			if err := os.WriteFile(path, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			opts := GenerateOptions{Dir: dir, FrontDNS: []string{"front.example"}}
			_, err := Generate(opts)
			if err == nil || !strings.Contains(err.Error(), existing) {
				t.Fatalf("Generate without Force: err = %v, want one naming %s", err, existing)
			}
			if names := dirNames(t, dir); !slices.Equal(names, []string{existing}) {
				t.Errorf("refused Generate wrote files: %v", names)
			}
			if data, _ := os.ReadFile(path); string(data) != "keep" {
				t.Errorf("refused Generate changed %s", existing)
			}

			opts.Force = true
			first, err := Generate(opts)
			if err != nil {
				t.Fatalf("Generate with Force: %v", err)
			}
			checkFiles(t, dir, first, true)
			ca1 := Fingerprint(readCert(t, first.CACert))
			second, err := Generate(opts)
			if err != nil {
				t.Fatalf("second Generate with Force: %v", err)
			}
			checkFiles(t, dir, second, true)
			if ca2 := Fingerprint(readCert(t, second.CACert)); ca2 == ca1 {
				t.Error("Force did not replace the CA")
			}
		})
	}
}

// TestFrontCertRefusedAsRelay: the edge's public certificate, which sits on
// an internet-facing host, must not pass for a relay in the tunnel
// handshake, even for a name the edge dials.
func TestFrontCertRefusedAsRelay(t *testing.T) {
	files, err := Generate(GenerateOptions{Dir: t.TempDir(), FrontDNS: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	pool, err := LoadPool(files.CACert)
	if err != nil {
		t.Fatal(err)
	}
	front, err := LoadKeyPair(files.FrontCert, files.FrontKey)
	if err != nil {
		t.Fatal(err)
	}
	edge, err := LoadKeyPair(files.EdgeCert, files.EdgeKey)
	if err != nil {
		t.Fatal(err)
	}
	res := handshake(t, ServerConfig(front, pool), ClientConfig(edge, pool, "localhost"))
	checkRefusal(t, "edge", res.clientErr, "certificate signed by unknown authority")
}

func TestGenerateWithoutFrontIgnoresStaleFront(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "front.pem")
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// front.pem is not a target when no front cert is requested.
	files, err := Generate(GenerateOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if files.FrontCert != "" || files.FrontKey != "" {
		t.Errorf("front paths set: %+v", files)
	}
}

// --- CA, Issue, loaders ---------------------------------------------------------

func TestIssue(t *testing.T) {
	ca := mustCA(t, ECDSAP256)
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, tc := range []struct {
		name   string
		opts   LeafOptions
		wantCN string
		eku    x509.ExtKeyUsage
		check  func(*testing.T, *x509.Certificate)
	}{
		{"server default name", LeafOptions{DNSNames: []string{"a.example"}}, "a.example", x509.ExtKeyUsageServerAuth, nil},
		{"server ip name", LeafOptions{IPs: []net.IP{net.IPv6loopback}}, "::1", x509.ExtKeyUsageServerAuth, nil},
		{"client ed25519", LeafOptions{Kind: ClientLeaf, CommonName: "c", Algorithm: Ed25519}, "c", x509.ExtKeyUsageClientAuth,
			func(t *testing.T, c *x509.Certificate) {
				if c.PublicKeyAlgorithm != x509.Ed25519 {
					t.Errorf("key algorithm %v", c.PublicKeyAlgorithm)
				}
			}},
		{"expired", LeafOptions{Kind: ClientLeaf, NotAfter: past}, "strait", x509.ExtKeyUsageClientAuth,
			func(t *testing.T, c *x509.Certificate) {
				if !c.NotAfter.Equal(past) || !c.NotBefore.Before(c.NotAfter) {
					t.Errorf("validity %v..%v, want ending %v", c.NotBefore, c.NotAfter, past)
				}
			}},
		{"clamped to CA", LeafOptions{Validity: 50 * 365 * 24 * time.Hour}, "strait", x509.ExtKeyUsageServerAuth,
			func(t *testing.T, c *x509.Certificate) {
				if !c.NotAfter.Equal(ca.Cert.NotAfter) {
					t.Errorf("NotAfter %v, want CA's %v", c.NotAfter, ca.Cert.NotAfter)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustIssue(t, ca, tc.opts)
			if c.Leaf == nil || len(c.Certificate) != 1 || !bytes.Equal(c.Leaf.Raw, c.Certificate[0]) {
				t.Fatalf("want chain of exactly the leaf with Leaf set")
			}
			if c.Leaf.Subject.CommonName != tc.wantCN {
				t.Errorf("CN = %q, want %q", c.Leaf.Subject.CommonName, tc.wantCN)
			}
			if !slices.Equal(c.Leaf.ExtKeyUsage, []x509.ExtKeyUsage{tc.eku}) {
				t.Errorf("EKU = %v", c.Leaf.ExtKeyUsage)
			}
			if err := c.Leaf.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("not signed by CA: %v", err)
			}
			if tc.check != nil {
				tc.check(t, c.Leaf)
			}
		})
	}
	if _, err := ca.Issue(LeafOptions{Kind: LeafKind(9)}); err == nil {
		t.Error("unknown LeafKind accepted")
	}
	if _, err := ca.Issue(LeafOptions{Algorithm: "dsa"}); err == nil {
		t.Error("unknown Algorithm accepted")
	}
}

func TestIssuePEMLoadsAsKeyPair(t *testing.T) {
	ca := mustCA(t, Ed25519)
	certPEM, keyPEM, err := ca.IssuePEM(LeafOptions{DNSNames: []string{"x.example"}})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(pair.Leaf, ca.Cert, "x.example", x509.ExtKeyUsageServerAuth); err != nil {
		t.Error(err)
	}
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" {
		t.Error("key is not PKCS#8 PEM")
	}
}

func TestLoadCA(t *testing.T) {
	dir := t.TempDir()
	f, err := Generate(GenerateOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cert, key, wantErr string
	}{
		{"ok", f.CACert, f.CAKey, ""},
		{"leaf is not a CA", f.RelayCert, f.RelayKey, "not a CA"},
		{"key mismatch", f.CACert, f.EdgeKey, "does not match"},
		{"missing", filepath.Join(dir, "nope.pem"), f.CAKey, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, err := LoadCA(tc.cert, tc.key)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			leaf := mustIssue(t, ca, LeafOptions{Kind: ClientLeaf})
			pool, err := LoadPool(f.CACert)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Errorf("leaf from loaded CA does not verify: %v", err)
			}
			if !bytes.Equal(ca.CertPEM, mustRead(t, f.CACert)) {
				t.Error("CertPEM differs from ca.pem")
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLoadPool(t *testing.T) {
	ca := mustCA(t, ECDSAP256)
	other := mustCA(t, ECDSAP256)
	keyPEM, err := marshalKeyPEM(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	bad := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})
	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr string
		trusts  []*CA
	}{
		{"one cert", ca.CertPEM, "", []*CA{ca}},
		{"bundle with key", slices.Concat(keyPEM, ca.CertPEM, other.CertPEM), "", []*CA{ca, other}},
		{"key only", keyPEM, "no PEM certificates", nil},
		{"empty", nil, "no PEM certificates", nil},
		{"unparsable cert", bad, "parse certificate", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			pool, err := LoadPool(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range tc.trusts {
				leaf := mustIssue(t, c, LeafOptions{DNSNames: []string{"h"}})
				if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "h"}); err != nil {
					t.Errorf("pool does not trust %s: %v", c.Cert.Subject.CommonName, err)
				}
			}
		})
	}
	if _, err := LoadPool(filepath.Join(t.TempDir(), "missing.pem")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestFingerprint(t *testing.T) {
	a, b := mustCA(t, ECDSAP256), mustCA(t, ECDSAP256)
	fa := Fingerprint(a.Cert)
	if len(fa) != 16 || strings.Trim(fa, "0123456789abcdef") != "" {
		t.Errorf("Fingerprint = %q, want 16 lower-case hex chars", fa)
	}
	if fa != Fingerprint(a.Cert) || fa == Fingerprint(b.Cert) {
		t.Error("Fingerprint not stable or not distinct")
	}
	if Fingerprint(nil) != "" {
		t.Error("Fingerprint(nil) != \"\"")
	}
}

// --- KeyPair -------------------------------------------------------------------

func writePair(t *testing.T, ca *CA, certFile, keyFile, name string) {
	t.Helper()
	certPEM, keyPEM, err := ca.IssuePEM(LeafOptions{DNSNames: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestKeyPairReload(t *testing.T) {
	ca := mustCA(t, ECDSAP256)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, ca, certFile, keyFile, "first")
	kp, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	name := func() string { return kp.Certificate().Leaf.DNSNames[0] }
	if name() != "first" {
		t.Fatalf("loaded %q", name())
	}

	writePair(t, ca, certFile, keyFile, "second")
	if err := kp.Reload(); err != nil {
		t.Fatal(err)
	}
	if name() != "second" {
		t.Fatalf("after Reload: %q, want second", name())
	}
	second := kp.Certificate()

	otherKey := filepath.Join(dir, "other-key.pem")
	writePair(t, ca, filepath.Join(dir, "other.pem"), otherKey, "third")
	for _, tc := range []struct {
		name    string
		corrupt func()
	}{
		{"garbage cert", func() { mustWrite(t, certFile, []byte("not pem")) }},
		{"mismatched key", func() {
			writePair(t, ca, certFile, keyFile, "fourth")
			mustWrite(t, keyFile, mustRead(t, otherKey))
		}},
		{"missing key", func() {
			if err := os.Remove(keyFile); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.corrupt()
			if err := kp.Reload(); err == nil {
				t.Fatal("Reload of broken files succeeded")
			}
			if kp.Certificate() != second {
				t.Errorf("broken Reload replaced the pair (now %q)", name())
			}
			for _, get := range []func() (*tls.Certificate, error){
				func() (*tls.Certificate, error) { return kp.GetCertificate(nil) },
				func() (*tls.Certificate, error) { return kp.GetClientCertificate(nil) },
			} {
				if c, err := get(); err != nil || c != second {
					t.Errorf("getter returned %v, %v", c, err)
				}
			}
		})
	}
	if _, err := LoadKeyPair(certFile, filepath.Join(dir, "absent.pem")); err == nil {
		t.Error("LoadKeyPair with missing key succeeded")
	}
}

func TestKeyPairConcurrentReload(t *testing.T) {
	ca := mustCA(t, ECDSAP256)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	writePair(t, ca, certFile, keyFile, "x")
	kp, err := LoadKeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if c, _ := kp.GetCertificate(nil); c == nil || c.Leaf == nil {
					t.Error("nil certificate during reload")
					return
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				if err := kp.Reload(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestStaticKeyPair(t *testing.T) {
	ca := mustCA(t, ECDSAP256)
	c := mustIssue(t, ca, LeafOptions{})
	c.Leaf = nil
	kp := StaticKeyPair(c)
	if err := kp.Reload(); err != nil {
		t.Errorf("Reload = %v, want nil", err)
	}
	if got := kp.Certificate(); got.Leaf == nil || !bytes.Equal(got.Leaf.Raw, c.Certificate[0]) {
		t.Error("StaticKeyPair did not fill in Leaf")
	}
}

// --- tls.Config builders and handshakes -----------------------------------------------

func TestConfigs(t *testing.T) {
	ca := mustCA(t, ECDSAP256)
	kp := StaticKeyPair(mustIssue(t, ca, LeafOptions{DNSNames: []string{"localhost"}}))
	pool := ca.Pool()

	srv := ServerConfig(kp, pool)
	if srv.MinVersion != tls.VersionTLS13 || srv.ClientAuth != tls.RequireAndVerifyClientCert ||
		srv.ClientCAs != pool || srv.GetCertificate == nil || srv.NextProtos != nil {
		t.Errorf("ServerConfig = %+v", srv)
	}
	cli := ClientConfig(kp, pool, "relay.example")
	if cli.MinVersion != tls.VersionTLS13 || cli.RootCAs != pool || cli.ServerName != "relay.example" ||
		cli.GetClientCertificate == nil || cli.InsecureSkipVerify {
		t.Errorf("ClientConfig = %+v", cli)
	}
	front := FrontConfig(kp)
	if front.MinVersion != tls.VersionTLS12 || !slices.Equal(front.NextProtos, []string{"h2", "http/1.1"}) ||
		front.GetCertificate == nil || front.ClientAuth != tls.NoClientCert {
		t.Errorf("FrontConfig = %+v", front)
	}
	// A nil pool must fail closed rather than fall back to system roots.
	if ServerConfig(kp, nil).ClientCAs == nil || ClientConfig(kp, nil, "x").RootCAs == nil {
		t.Error("nil pool left nil (would mean system roots)")
	}
	if TunnelALPN != "strait-ws/1" || QUICALPN != "strait-quic/1" {
		t.Error("ALPN constants changed")
	}
}

func TestMutualTLSHandshake(t *testing.T) {
	for _, alg := range []Algorithm{ECDSAP256, Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			ca := mustCA(t, alg)
			relay := StaticKeyPair(mustIssue(t, ca, LeafOptions{Algorithm: alg, DNSNames: []string{"localhost"}}))
			edge := StaticKeyPair(mustIssue(t, ca, LeafOptions{Algorithm: alg, Kind: ClientLeaf, CommonName: "edge-1"}))
			srv, cli := ServerConfig(relay, ca.Pool()), ClientConfig(edge, ca.Pool(), "localhost")
			srv.NextProtos = []string{TunnelALPN, "http/1.1"}
			cli.NextProtos = []string{TunnelALPN}
			res := handshake(t, srv, cli)
			if res.serverErr != nil || res.clientErr != nil {
				t.Fatalf("server=%v client=%v", res.serverErr, res.clientErr)
			}
			if res.state.Version != tls.VersionTLS13 {
				t.Errorf("version %x, want TLS 1.3", res.state.Version)
			}
			if res.state.NegotiatedProtocol != TunnelALPN {
				t.Errorf("ALPN %q", res.state.NegotiatedProtocol)
			}
		})
	}
}

func TestFrontHandshake(t *testing.T) {
	ca := mustCA(t, ECDSAP256)
	front := StaticKeyPair(mustIssue(t, ca, LeafOptions{DNSNames: []string{"localhost"}}))
	for _, maxVer := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cli := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: maxVer, NextProtos: []string{"h2"}}
		res := handshake(t, FrontConfig(front), cli)
		if res.serverErr != nil || res.clientErr != nil {
			t.Fatalf("max %x: server=%v client=%v", maxVer, res.serverErr, res.clientErr)
		}
		if res.state.Version != maxVer || res.state.NegotiatedProtocol != "h2" {
			t.Errorf("got version %x ALPN %q", res.state.Version, res.state.NegotiatedProtocol)
		}
	}
}

func TestHandshakeRefused(t *testing.T) {
	ca, other := mustCA(t, ECDSAP256), mustCA(t, Ed25519)
	relay := mustIssue(t, ca, LeafOptions{DNSNames: []string{"localhost"}})
	edge := mustIssue(t, ca, LeafOptions{Kind: ClientLeaf})
	expired := mustIssue(t, ca, LeafOptions{Kind: ClientLeaf, NotAfter: time.Now().Add(-time.Minute)})
	foreignEdge := mustIssue(t, other, LeafOptions{Kind: ClientLeaf})
	foreignRelay := mustIssue(t, other, LeafOptions{DNSNames: []string{"localhost"}})
	// A client-EKU cert whose name matches, so only the EKU is wrong.
	clientNamedLocalhost := mustIssue(t, ca, LeafOptions{Kind: ClientLeaf, DNSNames: []string{"localhost"}})
	const wrongUse = "certificate not valid for this use"

	for _, tc := range []struct {
		name        string
		server      tls.Certificate
		client      *tls.Certificate // nil: send none
		serverName  string
		clientRoots *x509.CertPool
		wantServer  string // DescribeVerifyError prefix of the server's error
		wantClient  string // same for the client
	}{
		{name: "client has no cert", server: relay,
			wantServer: "client presented no certificate",
			wantClient: "remote refused our certificate: certificate required"},
		{name: "client cert from another CA", server: relay, client: &foreignEdge,
			wantServer: "certificate signed by unknown authority",
			wantClient: "remote refused our certificate: unknown certificate authority"},
		{name: "client presents server cert", server: relay, client: &relay,
			wantServer: wrongUse,
			wantClient: "remote refused our certificate: bad certificate"},
		{name: "expired client cert", server: relay, client: &expired,
			wantServer: "certificate expired",
			wantClient: "remote refused our certificate: expired certificate"},
		{name: "server cert from another CA", server: foreignRelay, client: &edge,
			wantServer: "remote refused our certificate: ",
			wantClient: "certificate signed by unknown authority"},
		{name: "server presents client cert", server: clientNamedLocalhost, client: &edge,
			wantServer: "remote refused our certificate: ",
			wantClient: wrongUse},
		{name: "wrong server name", server: relay, client: &edge, serverName: "relay.example",
			wantServer: "remote refused our certificate: ",
			wantClient: "certificate not valid for name relay.example"},
		{name: "client pins nothing", server: relay, client: &edge, clientRoots: x509.NewCertPool(),
			wantServer: "remote refused our certificate: ",
			wantClient: "certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clientKP *KeyPair
			if tc.client != nil {
				clientKP = StaticKeyPair(*tc.client)
			}
			name, roots := orDefault(tc.serverName, "localhost"), ca.Pool()
			if tc.clientRoots != nil {
				roots = tc.clientRoots
			}
			res := handshake(t, ServerConfig(StaticKeyPair(tc.server), ca.Pool()), ClientConfig(clientKP, roots, name))
			checkRefusal(t, "server", res.serverErr, tc.wantServer)
			checkRefusal(t, "client", res.clientErr, tc.wantClient)
		})
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func checkRefusal(t *testing.T, side string, err error, want string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: handshake succeeded, want failure %q", side, want)
		return
	}
	got := DescribeVerifyError(err)
	t.Logf("%s: %s", side, got)
	if !strings.HasPrefix(got, want) {
		t.Errorf("%s: DescribeVerifyError(%q) = %q, want prefix %q", side, err, got, want)
	}
}

func TestDescribeVerifyError(t *testing.T) {
	ca := mustCA(t, ECDSAP256)
	leaf := mustIssue(t, ca, LeafOptions{}).Leaf
	future := *leaf
	future.NotBefore = time.Now().Add(time.Hour)
	wrapped := func(err error) error {
		return fmt.Errorf("dial relay: %w", &tls.CertificateVerificationError{Err: err})
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"unknown", errors.New("boom"), "boom"},
		{"eof", fmt.Errorf("handshake: %w", io.EOF), "connection closed during handshake"},
		{"not tls", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, "peer did not speak TLS"},
		{"unknown authority", wrapped(x509.UnknownAuthorityError{}), "certificate signed by unknown authority"},
		{"hostname", wrapped(x509.HostnameError{Certificate: leaf, Host: "h.example"}), "certificate not valid for name h.example"},
		{"expired", wrapped(x509.CertificateInvalidError{Cert: leaf, Reason: x509.Expired}), "certificate expired"},
		{"not yet valid", wrapped(x509.CertificateInvalidError{Cert: &future, Reason: x509.Expired}), "certificate not yet valid (check clocks)"},
		{"not a CA", wrapped(x509.CertificateInvalidError{Cert: leaf, Reason: x509.NotAuthorizedToSign}), "certificate issuer is not a CA"},
		{"other verification", wrapped(errors.New("x")), "certificate verification failed: x"},
		{"remote non-cert alert", &net.OpError{Op: "remote error", Err: tls.AlertError(120)},
			"remote aborted the handshake: no application protocol"},
		{"remote cert alert", &net.OpError{Op: "remote error", Err: tls.AlertError(42)},
			"remote refused our certificate: bad certificate"},
		{"local op error", &net.OpError{Op: "read", Err: errors.New("reset")}, "read: reset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := DescribeVerifyError(tc.err); got != tc.want {
				t.Errorf("DescribeVerifyError(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
