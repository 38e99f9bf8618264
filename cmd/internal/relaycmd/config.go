// Package relaycmd is the strait-relay command line: YAML config, the run
// and check commands, and the fake provider for tests and demos.
package relaycmd

import (
	"errors"
	"fmt"
	"time"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/cmd/internal/cli"
	"github.com/strait/strait/relay/upstream"
	"github.com/strait/strait/tunnel/wstun"
)

// File is the relay's YAML config.
type File struct {
	// Listen is the WebSocket tunnel address (TCP), e.g. ":443".
	Listen string `yaml:"listen"`
	// ListenQUIC is the QUIC tunnel address (UDP), e.g. ":443". Empty
	// serves QUIC on Listen's port (UDP), so an edge on the default
	// transport (auto) finds it; "off" serves WebSocket only.
	ListenQUIC string  `yaml:"listen_quic"`
	TLS        TLSFile `yaml:"tls"`
	// Heartbeat and HeartbeatTimeout tune dead-peer detection.
	Heartbeat        time.Duration `yaml:"heartbeat"`
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
	// StreamWindow and SessionWindow size flow control (bytes): one stream
	// carries at most StreamWindow per round trip (4 MiB at 200 ms ≈ 160
	// Mbit/s). SessionWindow applies to QUIC (yamux has per-stream windows
	// only). Zero means 4 MiB and 4×StreamWindow.
	StreamWindow  uint64 `yaml:"stream_window"`
	SessionWindow uint64 `yaml:"session_window"`
	// TCPCongestion is the congestion control of the WebSocket tunnel's
	// TCP sockets: auto (the default: bbr, else cubic, else the kernel's
	// default) or a name the kernel must have (reno, cubic, bbr, ...).
	// TCPNotSentLowat is their TCP_NOTSENT_LOWAT in bytes: zero means 16
	// KiB, negative leaves the kernel's. QUIC sessions are not affected.
	TCPCongestion   string        `yaml:"tcp_congestion"`
	TCPNotSentLowat int           `yaml:"tcp_notsent_lowat"`
	MaxBodyBytes    int64         `yaml:"max_body_bytes"`
	DrainTimeout    time.Duration `yaml:"drain_timeout"`
	// RenewAfter is the least age at which the relay has an idle session
	// renewed: a QUIC session once its congestion window moved (from an
	// edge on a long path: once its slow start ended), a
	// WebSocket session once a loss cut its TCP window (see
	// scripts/config/README.md): unset means 10s, 0s never renews.
	RenewAfter *time.Duration `yaml:"renew_after"`
	// QUICRenewAfter is renew_after's former name, from when only QUIC
	// sessions were renewed; still read.
	QUICRenewAfter *time.Duration `yaml:"quic_renew_after"`
	// MaxChoices bounds the calls a Chat Completions request for n > 1
	// fans out to on providers that make one choice per call (Anthropic,
	// Gemini, Responses-only models); zero means 8, 1 refuses n > 1.
	MaxChoices int `yaml:"max_choices"`
	// ResponseHeaderTimeout bounds the wait for a provider's status line.
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// UpstreamCA, when set, is a PEM file of CAs that provider certificates
	// must chain to instead of the system roots (self-hosted providers).
	UpstreamCA string         `yaml:"upstream_ca"`
	Providers  []ProviderFile `yaml:"providers"`
	// AdminListen, when set, serves /metrics (Prometheus), /healthz and
	// /readyz on this address (plain HTTP: bind it to localhost or a
	// private network).
	AdminListen string `yaml:"admin_listen"`
	// AdminPprof serves Go's profiler (/debug/pprof/) on the admin
	// listener; off by default.
	AdminPprof bool `yaml:"admin_pprof"`
	// Routes map model names and patterns to providers; StrictModels
	// refuses (404) models no route names instead of passing them to the
	// family's provider.
	Routes       []RouteFile `yaml:"routes"`
	StrictModels bool        `yaml:"strict_models"`
	// Conversations stores the conversations of Responses clients routed to
	// a provider of another API, so previous_response_id and GET/DELETE
	// /v1/responses/{id} work for them; without a path or redis none is
	// kept.
	Conversations ConversationsFile `yaml:"conversations"`
	// Endpoints are endpoint classes served beyond inference (files,
	// batches, fine_tuning, stored, assistants, media, all). Empty: only
	// inference goes upstream, whatever a client key at the edge allows.
	Endpoints []string `yaml:"endpoints"`
	// Timeouts apply to every provider that does not set its own.
	Timeouts TimeoutsFile `yaml:"timeouts"`
	Retry    RetryFile    `yaml:"retry"`
	Keys     KeysFile     `yaml:"keys"`
	// Compression is deflate (the default) to compress the tunnel sessions
	// of edges that offer it, or off: WebSocket sessions with DEFLATE, QUIC
	// sessions with zstd (quictun).
	Compression string `yaml:"compression"`
	// CompressMinRTT is the round-trip time under which a compressed session
	// sends its writes raw (unset: 2ms; 0s: compress on every path), as the
	// edge's tunnel.compress_min_rtt.
	CompressMinRTT *time.Duration `yaml:"compress_min_rtt"`
	// Enrol lets edges join with a token (see EnrolFile).
	Enrol EnrolFile `yaml:"enrol"`
}

// RouteFile is one entry of the model routing table.
type RouteFile struct {
	Model         string         `yaml:"model"` // exact name, alias, or pattern with *
	Provider      string         `yaml:"provider"`
	UpstreamModel string         `yaml:"upstream_model"` // empty keeps the client's name
	Fallbacks     []FallbackFile `yaml:"fallbacks"`
	// MaxChoices overrides max_choices for this route (1 refuses n > 1).
	MaxChoices int `yaml:"max_choices"`
}

// FallbackFile is a provider tried after the route's own has failed.
type FallbackFile struct {
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`
}

// TimeoutsFile is upstream.Timeouts in YAML.
type TimeoutsFile struct {
	FirstByte time.Duration `yaml:"first_byte"`
	Idle      time.Duration `yaml:"idle"`
	Ping      time.Duration `yaml:"ping"`
}

func (t TimeoutsFile) timeouts() upstream.Timeouts {
	return upstream.Timeouts{FirstByte: t.FirstByte, Idle: t.Idle, Ping: t.Ping}
}

// negatives refuses negative timeouts under prefix (timeouts, or a
// provider's).
func (t TimeoutsFile) negatives(prefix string) []error {
	return []error{cli.NotNegative(prefix+".first_byte", t.FirstByte), cli.NotNegative(prefix+".idle", t.Idle),
		cli.NotNegative(prefix+".ping", t.Ping)}
}

// RetryFile is dispatch.RetryPolicy in YAML.
type RetryFile struct {
	MaxAttempts int           `yaml:"max_attempts"`
	Budget      time.Duration `yaml:"budget"`
	Backoff     time.Duration `yaml:"backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
}

// KeysFile is upstream.KeyPolicy in YAML.
type KeysFile struct {
	MaxCooldown time.Duration `yaml:"max_cooldown"`
	Backoff     time.Duration `yaml:"backoff"`
	ProbeAfter  time.Duration `yaml:"probe_after"`
}

// TLSFile names the relay's certificate and the CA edges must chain to.
type TLSFile struct {
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	ClientCA string `yaml:"client_ca"`
	// RevokedEdges are fingerprints of edge certificates to refuse though
	// they chain to client_ca: the SHA-256 of the certificate in hex, or
	// the 16-character form the relay logs as cert_fingerprint. A reload
	// applies it to the next handshake.
	RevokedEdges []string `yaml:"revoked_edges"`
}

// ConversationsFile places the conversation store (see
// relay.ConversationsConfig).
type ConversationsFile struct {
	Path     string        `yaml:"path"`
	TTL      time.Duration `yaml:"ttl"`
	MaxBytes int64         `yaml:"max_bytes"`
	// Redis, instead of Path, is a redis:// or rediss:// URL (a password
	// in it may be a ${ENV} reference) that several relays share;
	// RedisPrefix starts its keys.
	Redis       string `yaml:"redis"`
	RedisPrefix string `yaml:"redis_prefix"`
}

// ProviderFile is one provider. APIKeys entries may be ${ENV} references.
type ProviderFile struct {
	Name    string   `yaml:"name"`
	Kind    string   `yaml:"kind"`
	BaseURL string   `yaml:"base_url"`
	APIKeys []string `yaml:"api_keys"`
	// KeyWeights, when set, gives one weight per key (weighted choice).
	KeyWeights []int `yaml:"key_weights"`
	// Models are routed to this provider by exact name and listed by
	// GET /v1/models and the other listings.
	Models []string `yaml:"models"`
	// APIVersion selects Azure OpenAI's deployment URLs.
	APIVersion string       `yaml:"api_version"`
	Timeouts   TimeoutsFile `yaml:"timeouts"`
	// AllowHeaders are client headers forwarded to this provider although
	// the relay drops them by default: account headers (OpenAI-Organization,
	// OpenAI-Project, X-Goog-User-Project) and every X-* header. Names, or
	// prefixes ending in '*'.
	AllowHeaders []string `yaml:"allow_headers"`
	// ResponsesModels are models (names or '*' patterns) served only on
	// the Responses API, beyond those OpenAI documents as such (o1-pro,
	// o3-pro, the codex models, …): Chat, Anthropic and Gemini clients
	// reach them converted.
	ResponsesModels []string `yaml:"responses_models"`
}

// Load reads and validates a config file.
func Load(path string) (*File, error) {
	var f File
	if err := cli.LoadYAML(path, &f); err != nil {
		return nil, err
	}
	return &f, f.validate()
}

func (f *File) validate() error {
	var errs []error
	if f.Listen == "" && f.quicAddr() == "" {
		errs = append(errs, errors.New("listen or listen_quic: at least one tunnel address is required"))
	}
	if f.StreamWindow != 0 && (f.StreamWindow < 256<<10 || f.StreamWindow > 1<<30) {
		errs = append(errs, errors.New("stream_window: between 262144 (yamux minimum) and 1 GiB"))
	}
	if err := wstun.ValidCompression(f.Compression); err != nil {
		errs = append(errs, err)
	}
	if err := wstun.ValidCongestion(f.TCPCongestion); err != nil {
		errs = append(errs, err)
	}
	if f.TLS.Cert == "" || f.TLS.Key == "" || f.TLS.ClientCA == "" {
		errs = append(errs, errors.New("tls: cert, key and client_ca are required"))
	}
	if _, err := certs.ParseFingerprints(f.TLS.RevokedEdges); err != nil {
		errs = append(errs, fmt.Errorf("tls.revoked_edges: %w", err))
	}
	if len(f.Providers) == 0 {
		errs = append(errs, errors.New("providers: at least one is required"))
	}
	if err := f.Enrol.validate(); err != nil {
		errs = append(errs, err)
	}
	if f.Enrol.CAKey != "" && f.Listen == "" {
		// Without it the relay would start with enrolment silently off.
		errs = append(errs, errors.New("enrol.ca_key: edges enrol (and renew) over the WebSocket listener only; set listen"))
	}
	if f.MaxChoices < 0 || f.MaxChoices > 128 {
		errs = append(errs, errors.New("max_choices: between 0 (default 8) and 128, OpenAI's own limit for n"))
	}
	if f.Conversations.Path != "" && f.Conversations.Redis != "" {
		errs = append(errs, errors.New("conversations: set path or redis, not both"))
	}
	if f.RenewAfter != nil && f.QUICRenewAfter != nil && *f.RenewAfter != *f.QUICRenewAfter {
		errs = append(errs, errors.New("renew_after and quic_renew_after (its former name) disagree; keep renew_after"))
	}
	errs = append(errs, f.negatives()...)
	return errors.Join(errs...)
}

// negatives refuses negative sizes and durations (see cli.NotNegative):
// the relay, dispatch and upstream read them as their defaults.
func (f *File) negatives() []error {
	errs := []error{
		cli.NotNegative("max_body_bytes", f.MaxBodyBytes), cli.NotNegative("drain_timeout", f.DrainTimeout),
		cli.NotNegative("response_header_timeout", f.ResponseHeaderTimeout),
		cli.NotNegative("retry.max_attempts", f.Retry.MaxAttempts), cli.NotNegative("retry.budget", f.Retry.Budget),
		cli.NotNegative("retry.backoff", f.Retry.Backoff), cli.NotNegative("retry.max_backoff", f.Retry.MaxBackoff),
		cli.NotNegative("keys.max_cooldown", f.Keys.MaxCooldown), cli.NotNegative("keys.backoff", f.Keys.Backoff),
		cli.NotNegative("keys.probe_after", f.Keys.ProbeAfter),
		cli.NotNegative("heartbeat", f.Heartbeat), cli.NotNegative("heartbeat_timeout", f.HeartbeatTimeout),
		cli.NotNegative("max_choices", f.MaxChoices),
		cli.NotNegative("conversations.ttl", f.Conversations.TTL), cli.NotNegative("conversations.max_bytes", f.Conversations.MaxBytes),
	}
	errs = append(errs, f.Timeouts.negatives("timeouts")...)
	for i, p := range f.Providers {
		errs = append(errs, p.Timeouts.negatives(fmt.Sprintf("providers[%d].timeouts", i))...)
	}
	return errs
}

// renewAfter is renew_after under either of its names.
func (f *File) renewAfter() *time.Duration {
	if f.RenewAfter != nil {
		return f.RenewAfter
	}
	return f.QUICRenewAfter
}

// ProviderConfigs resolves keys from the environment.
func (f *File) ProviderConfigs() ([]upstream.ProviderConfig, error) {
	out := make([]upstream.ProviderConfig, 0, len(f.Providers))
	for _, p := range f.Providers {
		name := p.Name
		if name == "" {
			name = p.Kind // a lone "kind: openai" is named openai
		}
		pc := upstream.ProviderConfig{Name: name, Kind: upstream.Kind(p.Kind), BaseURL: p.BaseURL,
			Weights: p.KeyWeights, Models: p.Models, APIVersion: p.APIVersion, Timeouts: p.Timeouts.timeouts(),
			AllowHeaders: p.AllowHeaders, ResponsesModels: p.ResponsesModels}
		for i, k := range p.APIKeys {
			secret, err := cli.ExpandSecret(k)
			if err != nil {
				return nil, fmt.Errorf("provider %q api_keys[%d]: %w", name, i, err)
			}
			pc.Keys = append(pc.Keys, upstream.NewKey(secret))
		}
		out = append(out, pc)
	}
	return out, nil
}

// RouteConfigs is the routing table for upstream.
func (f *File) RouteConfigs() []upstream.RouteConfig {
	out := make([]upstream.RouteConfig, 0, len(f.Routes))
	for _, r := range f.Routes {
		rc := upstream.RouteConfig{Model: r.Model, Provider: r.Provider, UpstreamModel: r.UpstreamModel, MaxChoices: r.MaxChoices}
		for _, fb := range r.Fallbacks {
			rc.Fallbacks = append(rc.Fallbacks, upstream.TargetConfig{Provider: fb.Provider, Model: fb.Model})
		}
		out = append(out, rc)
	}
	return out
}
