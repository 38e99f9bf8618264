package certs

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// GenerateOptions configures Generate. The zero value of every field except
// Dir is usable.
type GenerateOptions struct {
	// Dir is the output directory, created with mode 0700 if missing.
	// Required: an empty Dir is an error rather than "the current
	// directory", so keys never land somewhere by accident.
	Dir string
	// Algorithm is the key type of the CA and all leaves; zero = ECDSAP256.
	Algorithm Algorithm
	// RelayDNS are the DNS SANs of the relay server cert. If RelayDNS and
	// RelayIPs are both empty, the relay cert gets ["localhost"] and
	// [127.0.0.1, ::1]; if either is set, both are used exactly as given,
	// so a production cert carries only the names the operator chose.
	RelayDNS []string
	// RelayIPs are the IP SANs of the relay server cert; see RelayDNS.
	RelayIPs []net.IP
	// EdgeName is the CN of the edge client cert; zero = "strait-edge".
	EdgeName string
	// FrontDNS are the DNS SANs of the optional HTTPS server cert for the
	// edge's public listener ("front"). If FrontDNS and FrontIPs are both
	// empty, no front cert is generated.
	FrontDNS []string
	// FrontIPs are the IP SANs of the front cert; see FrontDNS.
	FrontIPs []net.IP
	// Validity is the leaf validity; zero = 825 days. The CA always gets
	// ten years.
	Validity time.Duration
	// Force overwrites existing files. Without it Generate refuses, before
	// writing anything, if any target file exists, naming that file.
	Force bool
}

// Files lists the paths Generate wrote. FrontCert, FrontKey and FrontCA
// are empty when no front cert was generated.
type Files struct {
	CACert, CAKey       string
	RelayCert, RelayKey string
	EdgeCert, EdgeKey   string
	FrontCert, FrontKey string
	// FrontCA is the CA that signed the front cert, for clients to trust.
	// It is not the tunnel CA: a certificate that chains to the tunnel CA
	// with serverAuth would be accepted by the edge as a relay. Its key is
	// thrown away, so it can sign nothing else.
	FrontCA string
}

// output is one file Generate writes.
type output struct {
	path string
	data []byte
	mode fs.FileMode
}

// Generate creates a fresh CA, a relay server cert, an edge client cert
// and, if requested, a front cert signed by a CA of its own, and writes
// them as PEM files into opts.Dir: ca.pem, ca-key.pem, relay.pem,
// relay-key.pem, edge.pem, edge-key.pem, front.pem, front-key.pem,
// front-ca.pem. Keys are PKCS#8 with mode 0600,
// certificates 0644; every file is written atomically.
func Generate(opts GenerateOptions) (Files, error) {
	if opts.Dir == "" {
		return Files{}, errors.New("certs: GenerateOptions.Dir is required")
	}
	files := opts.files()
	// Refuse before any expensive or irreversible work, so a refused run
	// leaves the directory exactly as it was.
	if !opts.Force {
		if err := refuseExisting(files); err != nil {
			return Files{}, err
		}
	}
	outs, err := opts.build(files)
	if err != nil {
		return Files{}, err
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return Files{}, fmt.Errorf("certs: create %s: %w", opts.Dir, err)
	}
	for _, o := range outs {
		if err := writeFileAtomic(o.path, o.data, o.mode); err != nil {
			return Files{}, err
		}
	}
	return files, nil
}

func (o GenerateOptions) files() Files {
	p := func(name string) string { return filepath.Join(o.Dir, name) }
	f := Files{
		CACert: p("ca.pem"), CAKey: p("ca-key.pem"),
		RelayCert: p("relay.pem"), RelayKey: p("relay-key.pem"),
		EdgeCert: p("edge.pem"), EdgeKey: p("edge-key.pem"),
	}
	if o.wantFront() {
		f.FrontCert, f.FrontKey, f.FrontCA = p("front.pem"), p("front-key.pem"), p("front-ca.pem")
	}
	return f
}

func (o GenerateOptions) wantFront() bool {
	return len(o.FrontDNS) > 0 || len(o.FrontIPs) > 0
}

// list returns the non-empty paths in a fixed order.
func (f Files) list() []string {
	all := []string{f.CACert, f.CAKey, f.RelayCert, f.RelayKey, f.EdgeCert, f.EdgeKey, f.FrontCert, f.FrontKey, f.FrontCA}
	out := all[:0]
	for _, p := range all {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

func refuseExisting(f Files) error {
	for _, p := range f.list() {
		_, err := os.Lstat(p)
		if err == nil {
			return fmt.Errorf("certs: %s already exists (use Force to overwrite)", p)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("certs: check %s: %w", p, err)
		}
	}
	return nil
}

// build creates all key material in memory first, so nothing is written
// unless every certificate could be made. Each key precedes its
// certificate and the CA comes last.
func (o GenerateOptions) build(f Files) ([]output, error) {
	ca, err := NewCA(o.Algorithm, "")
	if err != nil {
		return nil, err
	}
	relayDNS, relayIPs := o.RelayDNS, o.RelayIPs
	if len(relayDNS) == 0 && len(relayIPs) == 0 {
		relayDNS = []string{"localhost"}
		relayIPs = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	edgeName := o.EdgeName
	if edgeName == "" {
		edgeName = "strait-edge"
	}
	var outs []output
	if f.FrontCA != "" {
		frontCA, err := NewCA(o.Algorithm, "Strait front CA "+shortRandom())
		if err != nil {
			return nil, err
		}
		certPEM, keyPEM, err := frontCA.IssuePEM(LeafOptions{Kind: ServerLeaf, DNSNames: o.FrontDNS, IPs: o.FrontIPs,
			Algorithm: o.Algorithm, Validity: o.Validity})
		if err != nil {
			return nil, err
		}
		outs = append(outs, output{f.FrontKey, keyPEM, 0o600}, output{f.FrontCert, certPEM, 0o644},
			output{f.FrontCA, frontCA.CertPEM, 0o644})
	}
	leaves := []struct {
		cert, key string
		opts      LeafOptions
	}{
		{f.RelayCert, f.RelayKey, LeafOptions{Kind: ServerLeaf, CommonName: "strait-relay", DNSNames: relayDNS, IPs: relayIPs}},
		{f.EdgeCert, f.EdgeKey, LeafOptions{Kind: ClientLeaf, CommonName: edgeName}},
	}
	for _, l := range leaves {
		l.opts.Algorithm, l.opts.Validity = o.Algorithm, o.Validity
		certPEM, keyPEM, err := ca.IssuePEM(l.opts)
		if err != nil {
			return nil, err
		}
		outs = append(outs, output{l.key, keyPEM, 0o600}, output{l.cert, certPEM, 0o644})
	}
	caKey, err := marshalKeyPEM(ca.Key)
	if err != nil {
		return nil, err
	}
	return append(outs, output{f.CAKey, caKey, 0o600}, output{f.CACert, ca.CertPEM, 0o644}), nil
}

// writeFileAtomic writes data to a temp file in the target's directory and
// renames it into place, so readers (and hot reload) never see a partial
// file. os.CreateTemp creates the file 0600, which is what private keys need
// from their very first byte; only public files are widened, and that
// happens before they become visible under their final name.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if mode != 0o600 {
		if err = tmp.Chmod(mode); err != nil {
			return fmt.Errorf("certs: write %s: %w", path, err)
		}
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	// Sync before rename: otherwise a crash can leave an empty file under
	// the final name on some filesystems.
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("certs: sync %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("certs: write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("certs: rename into %s: %w", path, err)
	}
	return nil
}
