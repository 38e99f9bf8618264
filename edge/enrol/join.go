// Package enrol is the edge's side of enrolment: `strait-edge join`. It
// makes the edge's tunnel key here, has the relay named by a join token
// sign it (certs/enrol), and writes a working edge.yaml, the public HTTPS
// certificate and a first client key.
package enrol

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/enrol"
	"github.com/strait/strait/edge/keystore"
)

// Options configures Join.
type Options struct {
	// Token is the join token from `strait-relay init` or `edges token`.
	Token string
	// Dir receives edge.yaml and the certificates; DataDir the keys file
	// and the usage store (zero: Dir).
	Dir, DataDir string
	// Name is the edge's name at the relay (zero: the host name).
	Name string
	// Listen is the public HTTPS address (zero: ":443").
	Listen string
	// AdminListen is the metrics and health address (zero:
	// 127.0.0.1:9464).
	AdminListen string
	// FrontCert and FrontKey, when set, are the public HTTPS certificate
	// (say, from Let's Encrypt). Otherwise Join makes one for FrontDNS and
	// FrontIPs (zero: localhost, 127.0.0.1 and the address this machine
	// reaches the Internet from) signed by a CA of its own, front-ca.pem,
	// which clients must trust.
	FrontCert, FrontKey string
	FrontDNS            []string
	FrontIPs            []net.IP
	// ACMEDomains, when set, have the edge get its public certificate by
	// ACME (Let's Encrypt, TLS-ALPN-01 on Listen, which must then be
	// reachable on port 443 under these names); ACMEEmail is the account
	// contact.
	ACMEDomains []string
	ACMEEmail   string
	// Force rewrites an existing edge.yaml.
	Force bool
}

// Result says what Join wrote and what to give to applications.
type Result struct {
	Config    string
	Relay     string // the relay that enrolled this edge
	BaseURL   string // for OpenAI-style SDKs
	ClientKey string // shown once; only its hash is stored
	// FrontCA is the CA clients must trust, when Join made the front
	// certificate; empty with FrontCert.
	FrontCA     string
	Fingerprint string // of the edge's tunnel certificate, as the relay lists it
}

// Join enrols this edge with the relay in the token and writes its
// configuration. Nothing is written unless the relay signed the
// certificate, so a refused token leaves the directory as it was.
func Join(ctx context.Context, o Options) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, err
	}
	res := Result{Config: filepath.Join(o.Dir, "edge.yaml")}
	if _, err := os.Stat(res.Config); err == nil && !o.Force {
		return res, fmt.Errorf("%s exists: this machine has joined already (pass --force to join again)", res.Config)
	}
	tok, err := enrol.ParseToken(o.Token)
	if err != nil {
		return res, err
	}
	if time.Now().After(tok.Expires) {
		// The relay decides (clocks differ), but say it up front.
		fmt.Fprintf(os.Stderr, "note: the token says it expired at %s (check this machine's clock if that is wrong)\n",
			tok.Expires.UTC().Format(time.RFC3339))
	}
	csr, key, err := certs.NewCSR(certs.ECDSAP256, o.Name)
	if err != nil {
		return res, err
	}
	got, err := enrol.Enrol(ctx, tok, enrol.Request{Secret: tok.Secret, Name: o.Name, CSR: string(csr)})
	if err != nil {
		return res, err
	}
	res.Relay, res.Fingerprint = got.Relay, got.Fingerprint
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return res, err
	}
	p := func(name string) string { return filepath.Join(o.Dir, name) }
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{p("edge-key.pem"), key, 0o600}, {p("edge.pem"), []byte(got.Certificate), 0o644}, {p("ca.pem"), got.CAPEM, 0o644}} {
		if err := certs.WriteFile(f.path, f.data, f.mode); err != nil {
			return res, err
		}
	}
	front, host, err := o.front()
	if err != nil {
		return res, err
	}
	res.FrontCA = front.ca
	if err := certs.WriteFile(res.Config, []byte(o.config(tok, got.Relay, front)), 0o600); err != nil {
		return res, err
	}
	if res.ClientKey, err = keystore.Create(filepath.Join(o.DataDir, keystore.FileName), keystore.Record{Name: "default"}); err != nil {
		return res, err
	}
	res.BaseURL = baseURL(host, o.Listen)
	owned := []string{p("edge-key.pem"), p("edge.pem"), p("ca.pem"), res.Config}
	if front.ca != "" {
		owned = append(owned, front.cert, front.key, front.ca)
	}
	if err := certs.ChownLike(o.Dir, owned...); err != nil {
		return res, err
	}
	keys := filepath.Join(o.DataDir, keystore.FileName)
	return res, certs.ChownLike(o.DataDir, keys, keys+".lock")
}

func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errors.New("join: a directory is required")
	}
	if o.DataDir == "" {
		o.DataDir = o.Dir
	}
	if o.Listen == "" {
		o.Listen = ":443"
	}
	if o.AdminListen == "" {
		o.AdminListen = "127.0.0.1:9464"
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		return o, fmt.Errorf("listen %q: %w", o.Listen, err)
	}
	if o.Name == "" {
		o.Name, _ = os.Hostname()
	}
	if (o.FrontCert == "") != (o.FrontKey == "") {
		return o, errors.New("front certificate: give both the certificate and its key, or neither")
	}
	if len(o.ACMEDomains) > 0 && o.FrontCert != "" {
		return o, errors.New("front certificate: files or ACME, not both")
	}
	return o, nil
}

// frontFiles are the public HTTPS certificate's files.
type frontFiles struct{ cert, key, ca string }

// front returns the public certificate, making one if none was given, and
// the host name for base_url.
func (o Options) front() (frontFiles, string, error) {
	if len(o.ACMEDomains) > 0 {
		return frontFiles{}, o.ACMEDomains[0], nil
	}
	if o.FrontCert != "" {
		c, err := certs.LoadKeyPair(o.FrontCert, o.FrontKey)
		if err != nil {
			return frontFiles{}, "", err
		}
		host := "localhost"
		if leaf := c.Certificate().Leaf; len(leaf.DNSNames) > 0 {
			host = leaf.DNSNames[0]
		}
		return frontFiles{cert: o.FrontCert, key: o.FrontKey}, host, nil
	}
	dns, ips := o.FrontDNS, o.FrontIPs
	if len(dns) == 0 && len(ips) == 0 {
		dns, ips = []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}
		if ip, err := enrol.OutboundIP(); err == nil {
			ips = append(ips, ip)
		}
	}
	// A CA of its own, not the tunnel CA: a server certificate from the
	// tunnel CA would be accepted by edges as a relay. Its key is dropped,
	// so it signs nothing else.
	ca, err := certs.NewCA(certs.ECDSAP256, "Strait front CA "+o.Name)
	if err != nil {
		return frontFiles{}, "", err
	}
	certPEM, keyPEM, err := ca.IssuePEM(certs.LeafOptions{Kind: certs.ServerLeaf, DNSNames: dns, IPs: ips})
	if err != nil {
		return frontFiles{}, "", err
	}
	f := frontFiles{cert: filepath.Join(o.Dir, "front.pem"), key: filepath.Join(o.Dir, "front-key.pem"), ca: filepath.Join(o.Dir, "front-ca.pem")}
	for _, w := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{f.key, keyPEM, 0o600}, {f.cert, certPEM, 0o644}, {f.ca, ca.CertPEM, 0o644}} {
		if err := certs.WriteFile(w.path, w.data, w.mode); err != nil {
			return frontFiles{}, "", err
		}
	}
	host := "localhost"
	switch {
	case len(o.FrontDNS) > 0:
		host = o.FrontDNS[0]
	case len(o.FrontIPs) > 0:
		host = o.FrontIPs[0].String()
	case len(ips) > 1:
		host = ips[len(ips)-1].String()
	}
	return f, host, nil
}

func (o Options) config(tok enrol.Token, first string, front frontFiles) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by strait-edge join on %s; every key: scripts/config/edge.example.yaml.\nlisten: %q\n",
		time.Now().UTC().Format(time.RFC3339), o.Listen)
	if len(o.ACMEDomains) > 0 {
		domains, _ := json.Marshal(o.ACMEDomains) // a JSON array of strings is a YAML flow sequence
		fmt.Fprintf(&b, "tls:   # the public HTTPS certificate SDKs see, by ACME (Let's Encrypt)\n  acme: {domains: %s, email: %q}\n",
			domains, o.ACMEEmail)
	} else {
		fmt.Fprintf(&b, "tls: {cert: %q, key: %q}   # the public HTTPS certificate SDKs see\n", front.cert, front.key)
	}
	b.WriteString(`tunnel:
  # transport auto: QUIC on the relay's port (UDP), WebSocket over TLS (TCP) where UDP is blocked
  relays:
`)
	fmt.Fprintf(&b, "    - {address: %q}\n", first)
	for _, r := range tok.Relays {
		if r != first {
			fmt.Fprintf(&b, "    - {address: %q}\n", r)
		}
	}
	fmt.Fprintf(&b, `  cert: %q
  key: %q
  ca: %q
admin_listen: %q   # /metrics, /healthz, /readyz (keep it private)
data_dir: %q                   # client keys ("strait-edge keys ...") and usage
`, filepath.Join(o.Dir, "edge.pem"), filepath.Join(o.Dir, "edge-key.pem"), filepath.Join(o.Dir, "ca.pem"), o.AdminListen, o.DataDir)
	return b.String()
}

func baseURL(host, listen string) string {
	_, port, _ := net.SplitHostPort(listen)
	hp := host
	if port != "443" {
		hp = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		hp = "[" + host + "]"
	}
	return "https://" + hp + "/v1"
}
