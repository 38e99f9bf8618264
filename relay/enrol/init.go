package enrol

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/certs/enrol"
)

// DefaultTokenTTL is how long a join token is accepted.
const DefaultTokenTTL = 24 * time.Hour

// InitOptions configures Init.
type InitOptions struct {
	// Dir receives the CA, the relay certificate, relay.yaml and relay.env.
	Dir string
	// DataDir receives the enrolment store (written by the running relay).
	DataDir string
	// Addrs are the relay's public host names or IP addresses, each with an
	// optional :port (default: Listen's port). Empty: the address this
	// machine reaches the Internet from.
	Addrs []string
	// Listen is the tunnel address (TCP for WebSocket, UDP for QUIC);
	// zero means ":443".
	Listen string
	// AdminListen is the metrics and health address; zero means
	// 127.0.0.1:9465.
	AdminListen string
	// TokenTTL is how long the first join token is valid; zero means
	// DefaultTokenTTL.
	TokenTTL time.Duration
	// Force rewrites an existing relay.yaml (the CA is always kept).
	Force bool
	// Getenv reads provider keys; nil means os.Getenv.
	Getenv func(string) string
}

// InitResult says what Init wrote.
type InitResult struct {
	Config, EnvFile, Store string
	CAReused               bool
	Providers              []string
	Token                  enrol.Token
	// Warnings are things the operator should check (say, a detected
	// private address).
	Warnings []string
}

// envProvider is a provider init configures when its key is set.
type envProvider struct {
	name, kind, keyVar, baseVar, baseURL string
}

// envProviders are the providers init looks for in the environment, in
// order: the first of each kind serves its API family.
var envProviders = []envProvider{
	{"openai", "openai", "OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com"},
	{"anthropic", "anthropic", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"},
	{"gemini", "gemini", "GEMINI_API_KEY", "GEMINI_BASE_URL", "https://generativelanguage.googleapis.com"},
	{"deepseek", "openai-compatible", "DEEPSEEK_API_KEY", "DEEPSEEK_BASE_URL", "https://api.deepseek.com"},
	{"openrouter", "openai-compatible", "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "https://openrouter.ai/api"},
}

// Init sets a relay up from nothing: the tunnel CA (kept if Dir already
// has one), a relay certificate for the public addresses, relay.yaml with
// the providers whose keys are in the environment (the file names the
// variables; relay.env, mode 0600, holds the values for systemd's
// EnvironmentFile), and a first join token. The token carries no key.
func Init(o InitOptions) (InitResult, error) {
	o = o.withDefaults()
	res := InitResult{Config: filepath.Join(o.Dir, "relay.yaml"), EnvFile: filepath.Join(o.Dir, "relay.env"),
		Store: filepath.Join(o.DataDir, StoreFile)}
	if _, err := os.Stat(res.Config); err == nil && !o.Force {
		return res, fmt.Errorf("%s exists: make another join token with `strait-relay edges token --config %s`, or pass --force to rewrite it", res.Config, res.Config)
	}
	providers, env := o.providers()
	if len(providers) == 0 {
		return res, errors.New("no provider key in the environment: set at least one of OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, DEEPSEEK_API_KEY, OPENROUTER_API_KEY and run init again")
	}
	_, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return res, fmt.Errorf("listen %q: %w", o.Listen, err)
	}
	addrs, warn, err := publicAddrs(o.Addrs, port)
	if err != nil {
		return res, err
	}
	res.Warnings = warn
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return res, err
	}
	ca, reused, err := loadOrCreateCA(o.Dir)
	if err != nil {
		return res, err
	}
	res.CAReused = reused
	if err := writeRelayCert(o.Dir, ca, addrs); err != nil {
		return res, err
	}
	if err := certs.WriteFile(res.EnvFile, []byte(env), 0o600); err != nil {
		return res, err
	}
	if err := certs.WriteFile(res.Config, []byte(o.config(providers, addrs, res.Store)), 0o600); err != nil {
		return res, err
	}
	for _, p := range providers {
		res.Providers = append(res.Providers, p.name)
	}
	secret, rec, err := OpenStore(res.Store).NewSecret(o.TokenTTL, time.Now())
	if err != nil {
		return res, err
	}
	res.Token = enrol.Token{Relays: addrs, CAFingerprint: certs.FullFingerprint(ca.Cert), Secret: secret, Expires: rec.Expires}
	p := func(name string) string { return filepath.Join(o.Dir, name) }
	return res, certs.ChownLike(o.Dir, p("ca.pem"), p("ca-key.pem"), p("relay.pem"), p("relay-key.pem"), res.EnvFile, res.Config)
}

func (o InitOptions) withDefaults() InitOptions {
	if o.Listen == "" {
		o.Listen = ":443"
	}
	if o.TokenTTL <= 0 {
		o.TokenTTL = DefaultTokenTTL
	}
	if o.AdminListen == "" {
		o.AdminListen = "127.0.0.1:9465"
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.DataDir == "" {
		o.DataDir = o.Dir
	}
	return o
}

// providers returns the providers with a key set and the env file's
// content (the keys, one VAR=value line each).
func (o InitOptions) providers() ([]envProvider, string) {
	var out []envProvider
	var env strings.Builder
	env.WriteString("# Provider keys for strait-relay (systemd EnvironmentFile). Keep this file 0600.\n")
	for _, p := range envProviders {
		key := o.Getenv(p.keyVar)
		if key == "" {
			continue
		}
		if b := o.Getenv(p.baseVar); b != "" {
			p.baseURL = b
		}
		out = append(out, p)
		fmt.Fprintf(&env, "%s=%s\n", p.keyVar, key)
	}
	return out, env.String()
}

func (o InitOptions) config(providers []envProvider, addrs []string, store string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by strait-relay init on %s; every key: scripts/config/relay.example.yaml.
# The tunnel: WebSocket over TLS on TCP, and QUIC on the same port over UDP.
listen: %q
tls:
  cert: %q
  key: %q
  client_ca: %q
admin_listen: %q   # /metrics, /healthz, /readyz (keep it private)
# Edges join with a token from "strait-relay edges token"; "strait-relay edges
# list|revoke" shows and revokes them (a revocation applies to the next handshake).
enrol:
  ca_key: %q
  store: %q
  advertise: [%s]
# Keys come from the environment (relay.env): never write them into this file.
providers:
`, time.Now().UTC().Format(time.RFC3339), o.Listen,
		filepath.Join(o.Dir, "relay.pem"), filepath.Join(o.Dir, "relay-key.pem"), filepath.Join(o.Dir, "ca.pem"),
		o.AdminListen, filepath.Join(o.Dir, "ca-key.pem"), store, quoteList(addrs))
	for _, p := range providers {
		fmt.Fprintf(&b, "  - {name: %s, kind: %s, base_url: %q, api_keys: [\"${%s}\"]}\n", p.name, p.kind, p.baseURL, p.keyVar)
	}
	return b.String()
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// loadOrCreateCA keeps an existing CA (edges enrolled with it stay valid)
// or makes one.
func loadOrCreateCA(dir string) (*certs.CA, bool, error) {
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if _, err := os.Stat(keyFile); err == nil {
		ca, err := certs.LoadCA(certFile, keyFile)
		return ca, true, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	ca, err := certs.NewCA(certs.ECDSAP256, "")
	if err != nil {
		return nil, false, err
	}
	key, err := certs.MarshalKeyPEM(ca.Key)
	if err != nil {
		return nil, false, err
	}
	if err := certs.WriteFile(keyFile, key, 0o600); err != nil {
		return nil, false, err
	}
	return ca, false, certs.WriteFile(certFile, ca.CertPEM, 0o644)
}

// writeRelayCert issues the relay's certificate for the public addresses,
// and for localhost so `strait-edge doctor` and local checks on the relay
// itself verify too.
func writeRelayCert(dir string, ca *certs.CA, addrs []string) error {
	opts := certs.LeafOptions{Kind: certs.ServerLeaf, CommonName: "strait-relay",
		DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}}
	for _, a := range addrs {
		host, _, _ := net.SplitHostPort(a)
		if ip := net.ParseIP(host); ip != nil {
			opts.IPs = append(opts.IPs, ip)
		} else {
			opts.DNSNames = append(opts.DNSNames, host)
		}
	}
	certPEM, keyPEM, err := ca.IssuePEM(opts)
	if err != nil {
		return err
	}
	if err := certs.WriteFile(filepath.Join(dir, "relay-key.pem"), keyPEM, 0o600); err != nil {
		return err
	}
	return certs.WriteFile(filepath.Join(dir, "relay.pem"), certPEM, 0o644)
}

// publicAddrs adds the port to the given addresses, or detects the
// address this machine reaches the Internet from.
func publicAddrs(given []string, port string) ([]string, []string, error) {
	var out, warn []string
	for _, a := range given {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(strings.Trim(a, "[]"), port)
		}
		out = append(out, a)
	}
	if len(out) > 0 {
		return out, nil, nil
	}
	ip, err := enrol.OutboundIP()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot detect this machine's address (%v): pass --addr with its public name or IP", err)
	}
	if ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		warn = append(warn, fmt.Sprintf("detected %s, a private address: behind NAT, pass --addr with the public address or name", ip))
	}
	return []string{net.JoinHostPort(ip.String(), port)}, warn, nil
}
