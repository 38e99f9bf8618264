// Package edgecmd is the strait-edge command line: YAML config and the run
// and check commands.
package edgecmd

import (
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/strait/strait/cmd/internal/cli"
	"github.com/strait/strait/edge"
	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/forward"
	"github.com/strait/strait/edge/guard"
	"github.com/strait/strait/edge/keystore"
	"github.com/strait/strait/edge/quota"
	"github.com/strait/strait/proto/llmapi"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/autodial"
	"github.com/strait/strait/tunnel/quictun"
	"github.com/strait/strait/tunnel/quictun/fec"
	"github.com/strait/strait/tunnel/wstun"
)

// File is the edge's YAML config.
type File struct {
	// Listen is the public HTTPS address SDKs connect to, e.g. ":443".
	Listen string `yaml:"listen"`
	// TLS is the public certificate SDKs see (e.g. from Let's Encrypt).
	TLS        CertFile    `yaml:"tls"`
	Tunnel     TunnelFile  `yaml:"tunnel"`
	ClientKeys []ClientKey `yaml:"client_keys"`
	MaxBody    int64       `yaml:"max_body_bytes"`
	// SessionWait is how long a request waits for a tunnel session.
	SessionWait time.Duration `yaml:"session_wait"`
	// ReadHeaderTimeout, BodyIdleTimeout and BodyTimeout bound how long a
	// client may take to send its headers, each next piece of its body,
	// and its whole body (zero: 10s, 30s, 2m).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	BodyIdleTimeout   time.Duration `yaml:"body_idle_timeout"`
	BodyTimeout       time.Duration `yaml:"body_timeout"`
	// ClientWriteTimeout cuts a response whose client takes no byte of it
	// for this long (zero: 60s).
	ClientWriteTimeout time.Duration `yaml:"client_write_timeout"`
	// ClientBufferBudget bounds in bytes what responses blocked on clients
	// that do not read may hold in total, each what its tunnel stream holds
	// unread (at most tunnel.stream_window); past it the one blocked the
	// longest is cut (zero: 256 MiB).
	ClientBufferBudget int64 `yaml:"client_buffer_budget"`
	// AdminListen, when set, serves /metrics (Prometheus), /healthz,
	// /readyz and the usage report on this address (plain HTTP: bind it to
	// localhost or a private network).
	AdminListen string `yaml:"admin_listen"`
	// MetricsListen is the former name of AdminListen, still accepted.
	MetricsListen string `yaml:"metrics_listen"`
	// AdminPprof serves Go's profiler (/debug/pprof/) on the admin
	// listener; off by default.
	AdminPprof   bool          `yaml:"admin_pprof"`
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// DataDir holds the keys file (keys created with "strait-edge keys")
	// and the usage store. Empty: no CLI keys, and usage and quotas live
	// in memory only (they restart from zero with the edge).
	DataDir string `yaml:"data_dir"`
	// Store, with redis set, moves rate limits, quotas, usage and the
	// CLI-managed keys to Redis, shared by several edges.
	Store StoreFile `yaml:"store"`
	// ResponseCache answers repeated requests from the edge's memory:
	// inference for the keys it names, model listings for every key (on
	// by default).
	ResponseCache *edge.CacheConfig `yaml:"response_cache"`
	// Limits are edge-wide policy settings.
	Limits LimitsFile `yaml:"limits"`
	// Prices price models in USD per million tokens, for spend budgets.
	Prices quota.Prices `yaml:"prices"`
	// Audit configures the audit log; off without a path.
	Audit AuditFile `yaml:"audit"`
	// Guard is the border guard for every client key without its own.
	Guard *guard.Config `yaml:"guard"`

	path string // where Load read it from, for reloads
}

// LimitsFile holds edge-wide limits.
type LimitsFile struct {
	// UnauthenticatedRPM limits requests per minute per source IP (per /64
	// for IPv6) without a valid key; zero means 60, negative means no
	// limit.
	UnauthenticatedRPM int64 `yaml:"unauthenticated_rpm"`
	// OutputEstimate is the output tokens reserved for a request without
	// max_tokens; zero means 1024.
	OutputEstimate int64 `yaml:"output_estimate"`
}

// AuditFile configures the audit log (JSON lines, rotated by lumberjack).
type AuditFile struct {
	Path       string `yaml:"path"`
	MaxSizeMB  int    `yaml:"max_size_mb"`
	MaxBackups int    `yaml:"max_backups"`
	MaxAgeDays int    `yaml:"max_age_days"`
	Compress   bool   `yaml:"compress"`
	// Bodies records prompts and completions too (off by default).
	Bodies bool `yaml:"bodies"`
}

// adminListen is the admin address under either of its names.
func (f *File) adminListen() string {
	if f.AdminListen != "" {
		return f.AdminListen
	}
	return f.MetricsListen
}

// CertFile names a certificate and its key.
type CertFile struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ACME gets the certificate by ACME instead (see ACMEFile).
	ACME ACMEFile `yaml:"acme"`
}

// TunnelFile configures the tunnel to the relays.
type TunnelFile struct {
	Relays []RelayFile `yaml:"relays"`
	// Cert and Key are the edge's client certificate; CA is the project CA
	// that the relay's certificate must chain to.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	CA   string `yaml:"ca"`
	// SessionsPerRelay is the former way to set Sessions.Min, still
	// accepted.
	SessionsPerRelay int `yaml:"sessions_per_relay"`
	// Sessions bounds and tunes how many sessions the edge keeps to each
	// relay as the load changes.
	Sessions SessionsFile `yaml:"sessions"`
	// StreamWindow and SessionWindow size flow control (bytes); see the
	// relay's settings of the same name. Zero means 4 MiB and 4×StreamWindow.
	StreamWindow     uint64        `yaml:"stream_window"`
	SessionWindow    uint64        `yaml:"session_window"`
	Heartbeat        time.Duration `yaml:"heartbeat"`
	HeartbeatTimeout time.Duration `yaml:"heartbeat_timeout"`
	// QUICFallbackAfter bounds a QUIC attempt before auto falls back to
	// WebSocket (zero: 3s); QUICRetry is how long auto stays on WebSocket
	// before trying QUIC again (zero: 1m).
	QUICFallbackAfter time.Duration `yaml:"quic_fallback_after"`
	QUICRetry         time.Duration `yaml:"quic_retry"`
	// ReconnectMin is the delay of the first fast retries and the base of
	// the backoff; ReconnectMax caps it (zero: 100ms and 30s). The backoff
	// resets once a session has stayed up for HealthyAfter (zero: 10s).
	ReconnectMin time.Duration `yaml:"reconnect_min"`
	ReconnectMax time.Duration `yaml:"reconnect_max"`
	HealthyAfter time.Duration `yaml:"healthy_after"`
	// ProbeInterval is how often each session is probed through the relay
	// (zero: 500ms); ProbeTimeout is how long a probe may go unanswered
	// before the session is closed as dead (zero: 15s).
	ProbeInterval time.Duration `yaml:"probe_interval"`
	ProbeTimeout  time.Duration `yaml:"probe_timeout"`
	// Compression is deflate (the default) to compress tunnel sessions
	// whose relay supports it, or off: WebSocket sessions with one DEFLATE
	// stream per session, QUIC sessions with zstd per write against a
	// built-in dictionary (quictun).
	Compression string `yaml:"compression"`
	// CompressMinRTT is the round-trip time under which a compressed session
	// sends its writes raw, because on so short a path compression costs
	// more CPU than its bytes are worth (unset: 2ms; 0s: compress on every
	// path). Each session measures its own path.
	CompressMinRTT *time.Duration `yaml:"compress_min_rtt"`
	// TCPCongestion and TCPNotSentLowat tune the WebSocket transport's TCP
	// socket: see the relay's settings of the same name.
	TCPCongestion   string `yaml:"tcp_congestion"`
	TCPNotSentLowat int    `yaml:"tcp_notsent_lowat"`
	// QUICFEC puts forward error correction under the QUIC sessions: on
	// (fec.DefaultShape, 20 data + 4 parity packets per group; also what
	// nil means), off, or {data: D, parity: P}. See FECFile.
	QUICFEC *FECFile `yaml:"quic_fec"`
	// QUICFECMinRTT is the round-trip time under which QUIC sessions send
	// without FEC: on so short a path a lost packet's retransmission costs
	// next to nothing, and FEC costs CPU and packets (unset:
	// quictun.DefaultFECMinRTT, 2ms; 0s: FEC on every path). The first
	// session measures the path, in its handshake and as its streams open,
	// and later sessions to that address are dialed without FEC.
	QUICFECMinRTT *time.Duration `yaml:"quic_fec_min_rtt"`
	// Hedge (auto, on or off; true and false also read) sends each
	// request whose body is at most 16 KiB on two sessions to the same
	// relay when two are up; the first copy to reach the relay goes
	// upstream and the relay sends its answer on both. It takes a
	// WebSocket session's head-of-line wait off the request's and the
	// answer's way, at the cost of a second stream and the bytes again.
	// auto (the default): over WebSocket on a long path under BBR.
	Hedge string `yaml:"hedge"`
}

// hedgeMode is Hedge as the edge takes it (validate checked it).
func (t TunnelFile) hedgeMode() forward.HedgeMode {
	m, _ := forward.ParseHedgeMode(t.Hedge)
	return m
}

// fecMinRTT is QUICFECMinRTT with its default.
func (t TunnelFile) fecMinRTT() time.Duration {
	if t.QUICFECMinRTT == nil {
		return quictun.DefaultFECMinRTT
	}
	return *t.QUICFECMinRTT
}

// FECFile is tunnel.quic_fec: off, on (fec.DefaultShape) or a shape
// {data: D, parity: P}. With it on, each QUIC session's packets go out in
// groups of D followed by P parity packets, and the relay rebuilds up to P
// lost packets of a group before QUIC's loss-based congestion control sees
// them: on a border with random loss, bulk transfers are no longer held to
// a loss-limited window (at 150 ms and 1 % loss a 10 MB answer times out
// without it), for P/D more bytes on the wire. On by default, since QUIC
// without it fails the bulk transfers of the border it is there for; a
// link without loss can turn it off. The relay needs no setting: it always
// accepts both and answers in kind.
type FECFile struct{ fec.Shape }

// shape is the FEC shape the edge's QUIC sessions use: unset is on.
func (f *FECFile) shape() fec.Shape {
	if f == nil {
		return fec.DefaultShape
	}
	return f.Shape
}

// UnmarshalYAML accepts a boolean word or a mapping.
func (f *FECFile) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case "off", "false", "no", "":
			f.Shape = fec.Shape{}
		case "on", "true", "yes":
			f.Shape = fec.DefaultShape
		default:
			return fmt.Errorf("tunnel.quic_fec: %q: want off, on or {data: D, parity: P}", n.Value)
		}
		return nil
	}
	if n.Kind == yaml.MappingNode { // node.Decode ignores unknown keys: reject typos here
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i].Value; k != "data" && k != "parity" {
				return fmt.Errorf("tunnel.quic_fec: unknown key %q (want data and parity)", k)
			}
		}
	}
	return n.Decode(&f.Shape)
}

func (f *FECFile) validate() error {
	if err := f.shape().Validate(); err != nil {
		return fmt.Errorf("tunnel.quic_%w", err)
	}
	return nil
}

// SessionsFile configures the sessions to each relay: always Min, more
// while the load asks for them, up to Max. Zero values mean the defaults.
type SessionsFile struct {
	// Min sessions stay up to each relay (zero: sessions_per_relay, else
	// see TunnelFile.minSessions).
	Min int `yaml:"min"`
	// Max bounds them under load (zero: see TunnelFile.maxSessions, or Min
	// if that is more); equal to Min, the number is fixed.
	Max int `yaml:"max"`
	// TargetStreams is how many open streams one session should carry: a
	// session is added when the streams reach three quarters of it per
	// session (zero: 8).
	TargetStreams int `yaml:"target_streams"`
	// MaxStreams is the relay's QUIC stream limit per session (zero: 4096,
	// the relay's default); sessions near it ask for another session.
	MaxStreams int `yaml:"max_streams"`
	// MaxDials bounds the extra sessions dialed at once to each relay
	// (zero: max, so a burst's sessions are dialed in one wave).
	MaxDials int `yaml:"max_dials"`
	// ShrinkAfter is how long the load must stay low before one extra
	// session is retired after its streams finish (zero: 30s).
	ShrinkAfter time.Duration `yaml:"shrink_after"`
}

// Default session bounds (tunnel.sessions.min and max unset).
const (
	// minSessionsWS: over TCP, one lost segment holds up every stream behind
	// it on its session for a retransmission (about 1.25 round trips), in
	// either direction. A burst of new requests lands on the sessions
	// already up, since another takes three round trips to dial: on two, a
	// loss held back half of them, on eight about one in eight. In the lab
	// (32 fresh clients, 150 ms, 3 %, bbr; packet captures in the lab
	// report, "2026-12-06, last") TTFT p50 was one round trip above the
	// floor in 2 of 4 runs with 2 sessions, and in none of 4 with 8.
	minSessionsWS = 8
	// minSessionsQUIC: QUIC's streams do not wait for each other's losses,
	// and its forward error correction rebuilds most of them.
	minSessionsQUIC = 2

	// maxSessionsWS: a WebSocket session keeps a DEFLATE context of about
	// 1 MB at each end, so more sessions cost memory that a BBR socket
	// does not need to carry many streams.
	maxSessionsWS = 16
	// maxSessionsQUIC: a QUIC session is one NewReno window, which loss
	// keeps small, and costs little memory (its compression keeps no state
	// per session). In the lab (250 ms, 1 %, 256 streams, alternating runs)
	// 32 sessions instead of 16 took QUIC's fresh TTFT p50 from 1.08-1.12×
	// nginx's to 0.67-1.00×, and its keep-alive total p99 from 0.96-1.03×
	// to 0.83-0.94×.
	maxSessionsQUIC = 32
)

// maxSessions is the most sessions to each relay: tunnel.sessions.max, or
// by default maxSessionsQUIC when no relay is set to WebSocket (auto
// prefers QUIC), else maxSessionsWS.
func (t TunnelFile) maxSessions() int {
	if t.Sessions.Max != 0 {
		return t.Sessions.Max
	}
	if t.anyWS() {
		return maxSessionsWS
	}
	return maxSessionsQUIC
}

// minSessions is the fewest sessions to each relay: tunnel.sessions.min
// (or sessions_per_relay), or by default minSessionsQUIC when no relay is
// set to WebSocket, else minSessionsWS, within a maximum set lower. A relay
// set to auto that falls back to WebSocket gets minSessionsWS too, through
// webSocketFloor.
func (t TunnelFile) minSessions() int {
	if m := t.Sessions.min(t.SessionsPerRelay); m != 0 {
		return m
	}
	if t.anyWS() {
		return min(minSessionsWS, t.maxSessions())
	}
	return min(minSessionsQUIC, t.maxSessions())
}

// webSocketFloor is the fewest sessions to a relay while its sessions run
// over WebSocket whatever its transport setting, as auto's fallback does
// (pool.ScaleConfig.MinWebSocket): minSessionsWS, within the maximum,
// unless tunnel.sessions.min is set.
func (t TunnelFile) webSocketFloor() int {
	if t.Sessions.min(t.SessionsPerRelay) != 0 {
		return 0
	}
	return min(minSessionsWS, t.maxSessions())
}

// anyWS reports whether a relay is set to WebSocket.
func (t TunnelFile) anyWS() bool {
	for _, r := range t.Relays {
		if r.transport() == tunnel.TransportWS {
			return true
		}
	}
	return false
}

// min is the minimum under either of its names.
func (s SessionsFile) min(perRelay int) int {
	if s.Min != 0 {
		return s.Min
	}
	return perRelay
}

func (t TunnelFile) validateSessions() []error {
	var errs []error
	s := t.Sessions
	if s.Min != 0 && t.SessionsPerRelay != 0 && s.Min != t.SessionsPerRelay {
		errs = append(errs, errors.New("tunnel.sessions.min and tunnel.sessions_per_relay (its former name) disagree; keep sessions.min"))
	}
	if s.Min < 0 || t.SessionsPerRelay < 0 || s.Max < 0 || s.TargetStreams < 0 || s.MaxStreams < 0 || s.MaxDials < 0 || s.ShrinkAfter < 0 {
		errs = append(errs, errors.New("tunnel.sessions: values must not be negative"))
	}
	if m := s.min(t.SessionsPerRelay); s.Max != 0 && s.Max < m {
		errs = append(errs, fmt.Errorf("tunnel.sessions.max %d is below min %d", s.Max, m))
	}
	return errs
}

// RelayFile is one relay.
type RelayFile struct {
	Address string `yaml:"address"` // host:port of the WebSocket (TCP) listener
	// Transport is ws, quic or auto (the default): auto prefers QUIC, falls
	// back to WebSocket when QUIC cannot connect within a few seconds, and
	// moves back to QUIC when it works again.
	Transport tunnel.Transport `yaml:"transport"`
	// QUICAddress is host:port of the relay's QUIC (UDP) listener; empty
	// means the same as Address.
	QUICAddress string `yaml:"quic_address"`
	// ServerName is the name the relay's certificate must carry; empty means
	// the host part of Address.
	ServerName string `yaml:"server_name"`
	// Domestic marks a relay inside the country (in front of a domestic
	// model): the border guard's keep_home requests go to these relays
	// and only to them; other requests never do.
	Domestic bool `yaml:"domestic"`
}

// ClientKey is one accepted client key; Key may be a ${ENV} reference.
type ClientKey struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
	// Models are allowed model patterns ("gpt-4o*"); empty allows all.
	Models []string `yaml:"models"`
	// Expires, when set, is when the key stops working (RFC 3339).
	Expires time.Time   `yaml:"expires"`
	Limits  auth.Limits `yaml:"limits"`
	// Endpoints are endpoint classes allowed beyond inference (files,
	// batches, fine_tuning, stored, assistants, media, all); see
	// llmapi.EndpointClasses. Empty: inference only.
	Endpoints []string `yaml:"endpoints"`
	// Guard, when set, is this key's border guard instead of the global
	// one.
	Guard *guard.Config `yaml:"guard"`
}

// Load reads and validates a config file.
func Load(path string) (*File, error) {
	var f File
	if err := cli.LoadYAML(path, &f); err != nil {
		return nil, err
	}
	f.path = path
	return &f, f.validate()
}

func (f *File) validate() error {
	var errs []error
	if f.Listen == "" {
		errs = append(errs, errors.New("listen: required"))
	}
	if err := f.validateFront(); err != nil {
		errs = append(errs, err)
	}
	if !slices.ContainsFunc(f.Tunnel.Relays, func(r RelayFile) bool { return !r.Domestic }) {
		errs = append(errs, errors.New("tunnel.relays: at least one relay (not domestic) is required"))
	}
	for i, r := range f.Tunnel.Relays {
		if _, _, err := net.SplitHostPort(r.Address); err != nil {
			errs = append(errs, fmt.Errorf("tunnel.relays[%d].address %q: want host:port", i, r.Address))
		}
		switch r.Transport {
		case "", autodial.Auto, tunnel.TransportWS, tunnel.TransportQUIC:
		default:
			errs = append(errs, fmt.Errorf("tunnel.relays[%d].transport %q: want ws, quic or auto", i, r.Transport))
		}
	}
	if f.ClientBufferBudget < 0 {
		errs = append(errs, errors.New("client_buffer_budget: bytes, at least 0 (0: 256 MiB)"))
	}
	if w := f.Tunnel.StreamWindow; w != 0 && (w < 256<<10 || w > 1<<30) {
		errs = append(errs, errors.New("tunnel.stream_window: between 262144 (yamux minimum) and 1 GiB"))
	}
	if err := wstun.ValidCompression(f.Tunnel.Compression); err != nil {
		errs = append(errs, fmt.Errorf("tunnel.%w", err))
	}
	if _, err := forward.ParseHedgeMode(f.Tunnel.Hedge); err != nil {
		errs = append(errs, fmt.Errorf("tunnel.%w", err))
	}
	if err := wstun.ValidCongestion(f.Tunnel.TCPCongestion); err != nil {
		errs = append(errs, fmt.Errorf("tunnel.%w", err))
	}
	if err := f.Tunnel.QUICFEC.validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, f.Tunnel.validateSessions()...)
	if f.Tunnel.Cert == "" || f.Tunnel.Key == "" || f.Tunnel.CA == "" {
		errs = append(errs, errors.New("tunnel: cert, key and ca are required"))
	}
	if f.AdminListen != "" && f.MetricsListen != "" && f.AdminListen != f.MetricsListen {
		errs = append(errs, errors.New("admin_listen and metrics_listen (its former name) disagree; keep admin_listen"))
	}
	if len(f.ClientKeys) == 0 && f.DataDir == "" && f.Store.Redis == nil {
		errs = append(errs, errors.New("client_keys: at least one is required without a data_dir or store.redis (where `strait-edge keys create` stores keys)"))
	}
	if f.Store.Redis != nil {
		errs = append(errs, f.Store.Redis.validate()...)
	}
	if rc := f.ResponseCache; rc != nil {
		for _, p := range rc.Paths {
			if _, err := path.Match(p, ""); err != nil || !strings.HasPrefix(p, "/") {
				errs = append(errs, fmt.Errorf("response_cache.paths: bad pattern %q (want e.g. /v1/embeddings)", p))
			}
		}
	}
	if err := f.Prices.Validate(); err != nil {
		errs = append(errs, err)
	}
	for i, k := range f.ClientKeys {
		if err := checkEndpoints(k.Endpoints); err != nil {
			errs = append(errs, fmt.Errorf("client_keys[%d] (%s): %w", i, k.Name, err))
		}
		if err := checkLimits(k.Limits); err != nil {
			errs = append(errs, fmt.Errorf("client_keys[%d] (%s): %w", i, k.Name, err))
		}
	}
	if _, err := f.Guards(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, f.negatives()...)
	return errors.Join(errs...)
}

// negatives refuses negative sizes and durations (see cli.NotNegative):
// the edge reads them as its defaults.
func (f *File) negatives() []error {
	return []error{
		cli.NotNegative("max_body_bytes", f.MaxBody), cli.NotNegative("session_wait", f.SessionWait),
		cli.NotNegative("read_header_timeout", f.ReadHeaderTimeout), cli.NotNegative("body_idle_timeout", f.BodyIdleTimeout),
		cli.NotNegative("body_timeout", f.BodyTimeout), cli.NotNegative("client_write_timeout", f.ClientWriteTimeout),
		cli.NotNegative("drain_timeout", f.DrainTimeout), cli.NotNegative("limits.output_estimate", f.Limits.OutputEstimate),
		cli.NotNegative("client_buffer_budget", f.ClientBufferBudget),
		cli.NotNegative("audit.max_size_mb", f.Audit.MaxSizeMB), cli.NotNegative("audit.max_backups", f.Audit.MaxBackups),
		cli.NotNegative("audit.max_age_days", f.Audit.MaxAgeDays),
		cli.NotNegative("tunnel.sessions_per_relay", f.Tunnel.SessionsPerRelay),
		cli.NotNegative("tunnel.sessions.min", f.Tunnel.Sessions.Min), cli.NotNegative("tunnel.sessions.max", f.Tunnel.Sessions.Max),
		cli.NotNegative("tunnel.heartbeat", f.Tunnel.Heartbeat), cli.NotNegative("tunnel.heartbeat_timeout", f.Tunnel.HeartbeatTimeout),
		cli.NotNegative("tunnel.quic_fallback_after", f.Tunnel.QUICFallbackAfter), cli.NotNegative("tunnel.quic_retry", f.Tunnel.QUICRetry),
		cli.NotNegative("tunnel.reconnect_min", f.Tunnel.ReconnectMin), cli.NotNegative("tunnel.reconnect_max", f.Tunnel.ReconnectMax),
		cli.NotNegative("tunnel.healthy_after", f.Tunnel.HealthyAfter),
		cli.NotNegative("tunnel.probe_interval", f.Tunnel.ProbeInterval), cli.NotNegative("tunnel.probe_timeout", f.Tunnel.ProbeTimeout),
	}
}

// Guards compiles the border guard: the global policy and the keys' own.
// A pattern that does not compile, an unknown detector or action, or a
// word list that cannot be read is an error naming where it is.
func (f *File) Guards() (*guard.Set, error) {
	def, err := guard.Compile(f.Guard)
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	set := &guard.Set{Default: def, PerKey: map[string]*guard.Policy{}}
	for i, k := range f.ClientKeys {
		if k.Guard == nil {
			continue
		}
		p, err := guard.Compile(k.Guard)
		if err != nil {
			return nil, fmt.Errorf("client_keys[%d] (%s).guard: %w", i, k.Name, err)
		}
		set.PerKey[k.Name] = p
	}
	return set, nil
}

// checkEndpoints refuses endpoint class names that do not exist: a typo
// must not silently leave an endpoint closed (or, worse, look open).
func checkEndpoints(names []string) error {
	for _, n := range names {
		if !slices.Contains(llmapi.EndpointClasses, n) {
			return fmt.Errorf("endpoints: unknown class %q (want one of %s)", n, strings.Join(llmapi.EndpointClasses, ", "))
		}
	}
	return nil
}

// checkLimits refuses negative limits (and NaN budgets): zero is "no
// limit", and the limiters skip anything not above zero, so a slip of the
// sign would silently leave the key unlimited.
func checkLimits(l auth.Limits) error {
	for _, v := range []struct {
		name  string
		value float64
	}{
		{"rpm", float64(l.RPM)}, {"tpm", float64(l.TPM)},
		{"daily_tokens", float64(l.DailyTokens)}, {"monthly_tokens", float64(l.MonthlyTokens)},
		{"daily_budget", l.DailyBudget}, {"monthly_budget", l.MonthlyBudget},
	} {
		if !(v.value >= 0) {
			return fmt.Errorf("limits.%s %v: at least 0 (0: no limit)", v.name, v.value)
		}
	}
	return nil
}

// Keys resolves the config's client keys from the environment, adds those
// in the registry (data directory's keys file, or Redis), and indexes
// them.
func (f *File) Keys() (*auth.Keys, error) {
	reg, closeReg, err := f.Registry()
	if err != nil {
		return nil, err
	}
	defer closeReg()
	return f.KeysFrom(reg)
}

// KeysFrom is Keys with the CLI-managed keys read from reg (nil: none).
func (f *File) KeysFrom(reg keystore.Registry) (*auth.Keys, error) {
	entries := make([]auth.Entry, 0, len(f.ClientKeys))
	for i, k := range f.ClientKeys {
		secret, err := cli.ExpandSecret(k.Key)
		if err != nil {
			return nil, fmt.Errorf("client_keys[%d] (%s): %w", i, k.Name, err)
		}
		if len(secret) < auth.MinKeyLength {
			return nil, fmt.Errorf("client_keys[%d] (%s): shorter than %d characters", i, k.Name, auth.MinKeyLength)
		}
		entries = append(entries, auth.Entry{Digest: auth.DigestOf(secret),
			Client: auth.Client{Name: k.Name, Models: k.Models, Expires: k.Expires, Limits: k.Limits, Endpoints: k.Endpoints}})
	}
	if reg != nil {
		kf, err := reg.Load()
		if err != nil {
			return nil, err
		}
		stored, err := kf.Entries()
		if err != nil {
			return nil, err
		}
		entries = append(entries, stored...)
	}
	return auth.NewKeySet(entries)
}

// KeysPath is the keys file in the data directory.
func (f *File) KeysPath() string { return edge.KeysPath(f.DataDir) }

// UsagePath is the usage store in the data directory.
func (f *File) UsagePath() string { return edge.UsagePath(f.DataDir) }

// transport is the configured transport, autodial.Auto by default.
func (r RelayFile) transport() tunnel.Transport {
	if r.Transport == "" {
		return autodial.Auto
	}
	return r.Transport
}

// quicAddress is where the relay's QUIC listener is.
func (r RelayFile) quicAddress() string {
	if r.QUICAddress != "" {
		return r.QUICAddress
	}
	return r.Address
}

// serverName is the name the relay certificate must match.
func (r RelayFile) serverName() string {
	if r.ServerName != "" {
		return r.ServerName
	}
	host, _, _ := net.SplitHostPort(r.Address)
	return host
}
