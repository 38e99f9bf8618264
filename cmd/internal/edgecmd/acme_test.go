package edgecmd

import (
	"slices"
	"strings"
	"testing"
)

// TestFrontCertificateSource: the public certificate comes from files or
// from ACME, exactly one of them; with ACME the listener offers the
// TLS-ALPN-01 protocol and no file is read.
func TestFrontCertificateSource(t *testing.T) {
	acme := ACMEFile{Domains: []string{"edge.example.cn"}}
	for _, tc := range []struct {
		name    string
		f       File
		wantErr string
	}{
		{"files", File{TLS: CertFile{Cert: "c", Key: "k"}}, ""},
		{"acme", File{TLS: CertFile{ACME: acme}, DataDir: "/var/lib/strait"}, ""},
		{"acme with its own cache", File{TLS: CertFile{ACME: ACMEFile{Domains: acme.Domains, CacheDir: "/c"}}}, ""},
		{"acme without a cache", File{TLS: CertFile{ACME: acme}}, "cache_dir is required"},
		{"both", File{TLS: CertFile{Cert: "c", Key: "k", ACME: acme}, DataDir: "/d"}, "exclusive"},
		{"neither", File{}, "cert and key are required (or acme.domains)"},
		{"key missing", File{TLS: CertFile{Cert: "c"}}, "cert and key are required"},
	} {
		err := tc.f.validateFront()
		if (err == nil) != (tc.wantErr == "") || err != nil && !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.wantErr)
		}
	}
	f := File{TLS: CertFile{ACME: acme}, DataDir: t.TempDir()}
	m, err := f.frontACME()
	if err != nil {
		t.Fatal(err)
	}
	tc := m.TLSConfig()
	if !slices.Contains(tc.NextProtos, "acme-tls/1") || !slices.Contains(tc.NextProtos, "h2") || tc.GetCertificate == nil {
		t.Errorf("front TLS with ACME: protocols %v", tc.NextProtos)
	}
	if kp, err := f.frontKeyPair(); kp != nil || err != nil {
		t.Errorf("key pair with ACME: %v, %v", kp, err)
	}
}
