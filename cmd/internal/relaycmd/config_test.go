package relaycmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/relay"
)

// TestCompressionSetting checks the compression key: unset and "deflate"
// compress, a bare YAML off (a string here, not a boolean) disables it, and
// anything else is refused when the file loads.
func TestCompressionSetting(t *testing.T) {
	const base = "listen: :443\ntls: {cert: c, key: k, client_ca: ca}\nproviders: [{kind: openai}]\n"
	for _, tc := range []struct {
		line, want, wantErr string
	}{
		{"", "", ""},
		{"compression: deflate", "deflate", ""},
		{"compression: off", "off", ""},
		{"compression: gzip", "", `compression "gzip"`},
	} {
		path := filepath.Join(t.TempDir(), "relay.yaml")
		if err := os.WriteFile(path, []byte(base+tc.line+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Load(path)
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want one containing %q", tc.line, err, tc.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.line, err)
		case f.Compression != tc.want:
			t.Errorf("%q: compression %q, want %q", tc.line, f.Compression, tc.want)
		}
	}
}

// TestChoicesAndConversationsSettings: max_choices is bounded by OpenAI's
// own limit for n, and the conversation store is a file or Redis, not
// both; a Redis URL's password may come from the environment.
func TestChoicesAndConversationsSettings(t *testing.T) {
	const base = "listen: :443\ntls: {cert: c, key: k, client_ca: ca}\nproviders: [{kind: openai, api_keys: [k]}]\n"
	t.Setenv("TEST_CONV_REDIS_PASSWORD", "from-env")
	for _, tc := range []struct{ lines, wantErr, wantRedis string }{
		{"max_choices: 4", "", ""},
		{"max_choices: 129", "max_choices", ""},
		{"max_choices: -1", "max_choices", ""},
		{"conversations: {path: /tmp/c.db, redis: 'redis://r:6379'}", "path or redis", ""},
		{"conversations: {redis: 'redis://:${TEST_CONV_REDIS_PASSWORD}@r:6379/2'}", "", "redis://:from-env@r:6379/2"},
		{"conversations: {redis: 'redis://:${TEST_CONV_REDIS_UNSET}@r:6379'}", "TEST_CONV_REDIS_UNSET", ""},
	} {
		path := filepath.Join(t.TempDir(), "relay.yaml")
		if err := os.WriteFile(path, []byte(base+tc.lines+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Load(path)
		if err == nil {
			var cfg relay.Config
			if cfg, err = relayConfig(f, nil, zap.NewNop()); err == nil && cfg.Conversations.Redis != tc.wantRedis {
				t.Errorf("%q: redis %q, want %q", tc.lines, cfg.Conversations.Redis, tc.wantRedis)
			}
		}
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q: error %v, want %q", tc.lines, err, tc.wantErr)
		}
	}
}

// TestRenewAfterSetting: renew_after, or quic_renew_after, its former name,
// reaches the relay; the two may agree but not disagree.
func TestRenewAfterSetting(t *testing.T) {
	const base = "listen: :443\ntls: {cert: c, key: k, client_ca: ca}\nproviders: [{kind: openai, api_keys: [k]}]\n"
	d := func(v time.Duration) *time.Duration { return &v }
	for _, tc := range []struct {
		lines   string
		want    *time.Duration
		wantErr string
	}{
		{"", nil, ""},
		{"renew_after: 3s", d(3 * time.Second), ""},
		{"quic_renew_after: 4s", d(4 * time.Second), ""},
		{"renew_after: 0s", d(0), ""},
		{"renew_after: 5s\nquic_renew_after: 5s", d(5 * time.Second), ""},
		{"renew_after: 5s\nquic_renew_after: 6s", nil, "disagree"},
	} {
		path := filepath.Join(t.TempDir(), "relay.yaml")
		if err := os.WriteFile(path, []byte(base+tc.lines+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := Load(path)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.lines, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.lines, err)
		}
		cfg, err := relayConfig(f, nil, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.RenewAfter; (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("%q: RenewAfter %v, want %v", tc.lines, got, tc.want)
		}
	}
}

// TestNegativeSettingsRefused: zero durations and sizes mean the default,
// and the relay reads anything below zero the same way, so a negative one
// (a slip of the sign) would run with the default without a word. Load
// refuses it, naming the key.
func TestNegativeSettingsRefused(t *testing.T) {
	const base = "listen: :443\ntls: {cert: c, key: k, client_ca: ca}\n"
	const provider = "providers: [{kind: openai, api_keys: [k]}]\n"
	for _, tc := range []struct{ lines, wantErr string }{
		{"drain_timeout: 0s\nmax_body_bytes: 0\nretry: {max_attempts: 0}\n" + provider, ""},
		{"drain_timeout: 5s\nmax_body_bytes: 1024\ntimeouts: {first_byte: 1s}\n" + provider, ""},
		{"drain_timeout: -5s\n" + provider, "drain_timeout -5s: at least 0"},
		{"max_body_bytes: -1\n" + provider, "max_body_bytes -1"},
		{"response_header_timeout: -1m\n" + provider, "response_header_timeout -1m0s"},
		{"timeouts: {first_byte: -1s}\n" + provider, "timeouts.first_byte -1s"},
		{"timeouts: {idle: -1s}\n" + provider, "timeouts.idle -1s"},
		{"timeouts: {ping: -1s}\n" + provider, "timeouts.ping -1s"},
		{"retry: {max_attempts: -2}\n" + provider, "retry.max_attempts -2"},
		{"retry: {budget: -1s}\n" + provider, "retry.budget -1s"},
		{"retry: {backoff: -1s}\n" + provider, "retry.backoff -1s"},
		{"retry: {max_backoff: -1s}\n" + provider, "retry.max_backoff -1s"},
		{"keys: {max_cooldown: -1s}\n" + provider, "keys.max_cooldown -1s"},
		{"keys: {backoff: -1s}\n" + provider, "keys.backoff -1s"},
		{"keys: {probe_after: -1s}\n" + provider, "keys.probe_after -1s"},
		{"providers: [{kind: openai, api_keys: [k]}, {kind: anthropic, api_keys: [k], timeouts: {idle: -1s}}]\n",
			"providers[1].timeouts.idle -1s"},
		{"heartbeat: -5s\n" + provider, "heartbeat -5s"},
		{"heartbeat_timeout: -5s\n" + provider, "heartbeat_timeout -5s"},
		{"max_choices: -1\n" + provider, "max_choices -1"},
		{"conversations: {path: c.db, ttl: -1h}\n" + provider, "conversations.ttl -1h"},
		{"conversations: {path: c.db, max_bytes: -1}\n" + provider, "conversations.max_bytes -1"},
	} {
		wantLoadError(t, base+tc.lines, tc.wantErr)
	}
}

// TestEnrolNeedsWebSocket: edges enrol and renew on the WebSocket
// listener only, so enrol.ca_key on a relay that serves QUIC alone would
// start with enrolment off; Load refuses it.
func TestEnrolNeedsWebSocket(t *testing.T) {
	const rest = "tls: {cert: c, key: k, client_ca: ca}\nproviders: [{kind: openai, api_keys: [k]}]\n"
	for _, tc := range []struct{ lines, wantErr string }{
		{"listen: :443\nenrol: {ca_key: ca.key, store: enrol.json}\n", ""},
		{"listen: :443\nlisten_quic: :8443\nenrol: {ca_key: ca.key, store: enrol.json}\n", ""},
		{"listen_quic: :443\nenrol: {store: enrol.json}\n", ""},
		{"listen_quic: :443\nenrol: {ca_key: ca.key, store: enrol.json}\n", "enrol.ca_key: edges enrol (and renew) over the WebSocket listener only"},
	} {
		wantLoadError(t, tc.lines+rest, tc.wantErr)
	}
}

// wantLoadError loads config from a file and checks that it loads, or
// with wantErr set, that it is refused with an error containing wantErr.
func wantLoadError(t *testing.T, config, wantErr string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relay.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
		t.Errorf("%q: error %v, want %q", config, err, wantErr)
	}
}
