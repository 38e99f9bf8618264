package edgecmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/strait/strait/edge"
	"github.com/strait/strait/edge/forward"
	"github.com/strait/strait/edge/keystore"
	"github.com/strait/strait/edge/store/redisstore"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/quictun"
	"github.com/strait/strait/tunnel/quictun/fec"
)

// TestSessionsConfig: tunnel.sessions and the former sessions_per_relay
// resolve to one minimum, and contradictory or impossible bounds are
// rejected with the key named.
func TestSessionsConfig(t *testing.T) {
	tests := []struct {
		name    string
		tunnel  TunnelFile
		wantMin int
		wantErr string
	}{
		{"defaults", TunnelFile{}, 0, ""},
		{"former key", TunnelFile{SessionsPerRelay: 3}, 3, ""},
		{"new key", TunnelFile{Sessions: SessionsFile{Min: 4, Max: 8}}, 4, ""},
		{"both agree", TunnelFile{SessionsPerRelay: 4, Sessions: SessionsFile{Min: 4}}, 4, ""},
		{"both disagree", TunnelFile{SessionsPerRelay: 2, Sessions: SessionsFile{Min: 4}}, 4, "disagree"},
		{"fixed", TunnelFile{Sessions: SessionsFile{Min: 4, Max: 4}}, 4, ""},
		{"max below min", TunnelFile{Sessions: SessionsFile{Min: 4, Max: 3}}, 4, "tunnel.sessions.max 3 is below min 4"},
		{"max below former min", TunnelFile{SessionsPerRelay: 5, Sessions: SessionsFile{Max: 3}}, 5, "below min 5"},
		{"negative", TunnelFile{Sessions: SessionsFile{TargetStreams: -1}}, 0, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tunnel.Sessions.min(tt.tunnel.SessionsPerRelay); got != tt.wantMin {
				t.Errorf("min = %d; want %d", got, tt.wantMin)
			}
			errs := tt.tunnel.validateSessions()
			switch {
			case tt.wantErr == "" && len(errs) > 0:
				t.Errorf("rejected: %v", errs)
			case tt.wantErr != "" && (len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.wantErr)):
				t.Errorf("errors %v; want one mentioning %q", errs, tt.wantErr)
			}
		})
	}
}

// TestSessionBoundsDefault: unset, the session bounds are 2 to 32 when
// the relays run QUIC (auto prefers it) and 8 to 16 when one is set to
// WebSocket, and a relay whose sessions fall back to WebSocket keeps 8;
// set, they are what they say, and a maximum set below a default minimum
// lowers it.
func TestSessionBoundsDefault(t *testing.T) {
	relays := func(ts ...tunnel.Transport) []RelayFile {
		var out []RelayFile
		for _, tr := range ts {
			out = append(out, RelayFile{Transport: tr})
		}
		return out
	}
	tests := []struct {
		name            string
		tunnel          TunnelFile
		min, max, floor int
	}{
		{"quic", TunnelFile{Relays: relays(tunnel.TransportQUIC)}, 2, 32, 8},
		{"auto", TunnelFile{Relays: relays("")}, 2, 32, 8},
		{"ws", TunnelFile{Relays: relays(tunnel.TransportWS)}, 8, 16, 8},
		{"mixed", TunnelFile{Relays: relays(tunnel.TransportQUIC, tunnel.TransportWS)}, 8, 16, 8},
		{"max set", TunnelFile{Relays: relays(tunnel.TransportQUIC), Sessions: SessionsFile{Max: 8}}, 2, 8, 8},
		{"auto, max set below the WebSocket floor", TunnelFile{Relays: relays(""), Sessions: SessionsFile{Max: 4}}, 2, 4, 4},
		{"ws, max set below the default min", TunnelFile{Relays: relays(tunnel.TransportWS), Sessions: SessionsFile{Max: 4}}, 4, 4, 4},
		{"ws, min set", TunnelFile{Relays: relays(tunnel.TransportWS), Sessions: SessionsFile{Min: 2}}, 2, 16, 0},
		{"auto, former key", TunnelFile{Relays: relays(""), SessionsPerRelay: 3}, 3, 32, 0},
	}
	for _, tt := range tests {
		if got := tt.tunnel.minSessions(); got != tt.min {
			t.Errorf("%s: minSessions = %d; want %d", tt.name, got, tt.min)
		}
		if got := tt.tunnel.webSocketFloor(); got != tt.floor {
			t.Errorf("%s: webSocketFloor = %d; want %d", tt.name, got, tt.floor)
		}
		if got := tt.tunnel.maxSessions(); got != tt.max {
			t.Errorf("%s: maxSessions = %d; want %d", tt.name, got, tt.max)
		}
	}
}

// TestGuardConfigRefused: a guard section with a broken pattern (globally
// or on one key), an unknown detector or action is refused by Load, which
// both check and reload run, with the reason and where it is.
func TestGuardConfigRefused(t *testing.T) {
	dir := t.TempDir()
	head := "listen: :443\ntls: {cert: c, key: k}\ntunnel: {relays: [{address: \"r:443\"}], cert: c, key: k, ca: a}\n"
	for _, tc := range []struct{ guard, want string }{
		{"guard:\n  custom: [{name: employee_id, pattern: 'EMP-(\\d{6}'}]\n", "guard: custom detector \"employee_id\": error parsing regexp: missing closing )"},
		{"guard: {detectors: [cn_phone]}\n", `guard: unknown detector "cn_phone"`},
		{"guard: {detectors: [email], actions: {email: hide}}\n", `guard: actions.email: unknown action "hide"`},
		{"guard: {detectors: [email], words: {file: /nonexistent}}\n", "guard: words.file"},
		{"client_keys: [{name: app, key: k0123456789012345678901234, guard: {custom: [{name: x, pattern: '('}]}}]\n", "client_keys[0] (app).guard: custom detector \"x\""},
	} {
		path := dir + "/edge.yaml"
		body := head + tc.guard
		if !strings.Contains(tc.guard, "client_keys") {
			body += "client_keys: [{name: app, key: k0123456789012345678901234}]\n"
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load with %q: %v; want an error containing %q", tc.guard, err, tc.want)
		}
	}
}

// TestRedisStoreConfig: store.redis is validated with its keys named, the
// password comes from the environment (never the file), and on_failure
// defaults to fail_open.
func TestRedisStoreConfig(t *testing.T) {
	t.Setenv("TEST_REDIS_PASSWORD", "from-env")
	tests := []struct {
		name     string
		redis    RedisFile
		wantErr  string
		failOpen bool
		password string
	}{
		{"url", RedisFile{URL: "redis://127.0.0.1:6379/0"}, "", true, ""},
		{"password from env", RedisFile{URL: "redis://r:6379", Password: "${TEST_REDIS_PASSWORD}"}, "", true, "from-env"},
		{"missing env", RedisFile{URL: "redis://r:6379", Password: "${TEST_REDIS_UNSET}"}, "TEST_REDIS_UNSET", false, ""},
		{"cluster", RedisFile{Addrs: []string{"a:7000", "b:7000"}, OnFailure: "fail_closed"}, "", false, ""},
		{"neither", RedisFile{}, "give url or addrs", false, ""},
		{"both", RedisFile{URL: "redis://r:6379", Addrs: []string{"a:1"}}, "give url or addrs", false, ""},
		{"bad policy", RedisFile{URL: "redis://r:6379", OnFailure: "fail_sideways"}, "on_failure", false, ""},
		{"cert without key", RedisFile{URL: "rediss://r:6379", TLS: RedisTLSFile{Cert: "c.pem"}}, "cert and key", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := errors.Join(tt.redis.validate()...)
			var c redisstore.Config
			if err == nil {
				c, err = tt.redis.config(nil)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v; want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if c.FailOpen != tt.failOpen || c.Password != tt.password {
				t.Fatalf("fail_open %v, password %q; want %v, %q", c.FailOpen, c.Password, tt.failOpen, tt.password)
			}
		})
	}
}

// TestQUICFECMinRTT: tunnel.quic_fec_min_rtt is 2ms unset, and 0s keeps
// FEC on every path.
func TestQUICFECMinRTT(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want time.Duration
	}{{"", quictun.DefaultFECMinRTT}, {"quic_fec_min_rtt: 0s", 0}, {"quic_fec_min_rtt: 20ms", 20 * time.Millisecond}} {
		var f TunnelFile
		if err := yaml.Unmarshal([]byte(tt.yaml), &f); err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if got := f.fecMinRTT(); got != tt.want {
			t.Errorf("%q: %v; want %v", tt.yaml, got, tt.want)
		}
	}
	if quictun.DefaultFECMinRTT != 2*time.Millisecond {
		t.Errorf("the documented default is 2ms, not %v", quictun.DefaultFECMinRTT)
	}
}

// TestQUICFECConfig: tunnel.quic_fec takes off, on or a shape, is on when
// unset, and refuses anything else with the key named.
func TestQUICFECConfig(t *testing.T) {
	tests := []struct {
		yaml    string
		want    fec.Shape
		wantErr string
	}{
		{"", fec.DefaultShape, ""},
		{"quic_fec: off", fec.Shape{}, ""},
		{"quic_fec: false", fec.Shape{}, ""},
		{"quic_fec: on", fec.DefaultShape, ""},
		{"quic_fec: {data: 8, parity: 3}", fec.Shape{Data: 8, Parity: 3}, ""},
		{"quic_fec: sometimes", fec.Shape{}, "tunnel.quic_fec"},
		{"quic_fec: {data: 8, parit: 3}", fec.Shape{}, "unknown key"},
		{"quic_fec: {data: 0, parity: 3}", fec.Shape{}, "tunnel.quic_fec: data must be"},
		{"quic_fec: {data: 10, parity: 40}", fec.Shape{}, "tunnel.quic_fec: data must be"},
	}
	for _, tt := range tests {
		t.Run(tt.yaml, func(t *testing.T) {
			var f TunnelFile
			err := yaml.Unmarshal([]byte(tt.yaml), &f)
			if err == nil {
				err = f.QUICFEC.validate()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v; want one mentioning %q", err, tt.wantErr)
			case tt.wantErr == "" && f.QUICFEC.shape() != tt.want:
				t.Errorf("shape %v; want %v", f.QUICFEC.shape(), tt.want)
			}
		})
	}
}

// TestHedgeConfig: tunnel.hedge is auto unset, takes on and off (and the
// booleans it took before), and refuses anything else with the key named.
func TestHedgeConfig(t *testing.T) {
	for _, tt := range []struct {
		yaml    string
		want    forward.HedgeMode
		wantErr bool
	}{
		{"", forward.HedgeAuto, false},
		{"hedge: auto", forward.HedgeAuto, false},
		{"hedge: on", forward.HedgeOn, false},
		{"hedge: true", forward.HedgeOn, false},
		{"hedge: off", forward.HedgeOff, false},
		{"hedge: false", forward.HedgeOff, false},
		{"hedge: sometimes", forward.HedgeAuto, true},
	} {
		var f TunnelFile
		if err := yaml.Unmarshal([]byte(tt.yaml), &f); err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if got := f.hedgeMode(); got != tt.want {
			t.Errorf("%q: mode %d; want %d", tt.yaml, got, tt.want)
		}
		_, err := forward.ParseHedgeMode(f.Hedge)
		if (err != nil) != tt.wantErr || (err != nil && !strings.Contains(err.Error(), "hedge")) {
			t.Errorf("%q: error %v; want one: %v", tt.yaml, err, tt.wantErr)
		}
	}
}

// TestNegativeLimitsRefused: a key's limits are "zero: no limit", and the
// limiters skip anything not above zero, so a negative limit (a slip of the
// sign) would leave the key unlimited without a word. Load refuses it in
// client_keys, and the keys command refuses it from its flags, before
// anything is stored.
func TestNegativeLimitsRefused(t *testing.T) {
	dir := t.TempDir()
	head := "listen: :443\ntls: {cert: c, key: k}\ntunnel: {relays: [{address: \"r:443\"}], cert: c, key: k, ca: a}\n" +
		"data_dir: " + dir + "\n"
	for _, tc := range []struct{ limits, want string }{
		{"{rpm: 60}", ""},
		{"{rpm: 0, daily_budget: 0}", ""},
		{"{rpm: -60}", "client_keys[0] (app): limits.rpm -60"},
		{"{tpm: -1}", "limits.tpm -1"},
		{"{daily_tokens: -5}", "limits.daily_tokens -5"},
		{"{monthly_tokens: -5}", "limits.monthly_tokens -5"},
		{"{daily_budget: -0.5}", "limits.daily_budget -0.5"},
		{"{monthly_budget: -50}", "limits.monthly_budget -50"},
		{"{monthly_budget: .nan}", "limits.monthly_budget NaN"},
	} {
		path := dir + "/edge.yaml"
		body := head + "client_keys: [{name: app, key: k0123456789012345678901234, limits: " + tc.limits + "}]\n"
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("limits %s: %v", tc.limits, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("limits %s: %v; want an error containing %q", tc.limits, err, tc.want)
		}
	}

	path := dir + "/cli.yaml"
	if err := os.WriteFile(path, []byte(head), 0o600); err != nil {
		t.Fatal(err)
	}
	app := App()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	for _, args := range [][]string{
		{"keys", "create", "-c", path, "--rpm", "-60", "alice"},
		{"keys", "create", "-c", path, "--monthly-budget", "-5", "bob"},
	} {
		if err := app.Run(append([]string{"strait-edge"}, args...)); err == nil || !strings.Contains(err.Error(), "at least 0") {
			t.Errorf("%v: %v; want a refusal", args, err)
		}
	}
	if err := app.Run([]string{"strait-edge", "keys", "create", "-c", path, "--rpm", "60", "carol"}); err != nil {
		t.Fatalf("create carol: %v", err)
	}
	if err := app.Run([]string{"strait-edge", "keys", "limits", "-c", path, "--tpm", "-1", "carol"}); err == nil || !strings.Contains(err.Error(), "at least 0") {
		t.Errorf("limits --tpm -1: %v; want a refusal", err)
	}
	kf, err := keystore.FileRegistry{Path: edge.KeysPath(dir)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(kf.Keys) != 1 || kf.Keys[0].Name != "carol" || kf.Keys[0].Limits.RPM != 60 || kf.Keys[0].Limits.TPM != 0 {
		t.Errorf("stored keys %+v; want carol alone, rpm 60 and tpm as it was", kf.Keys)
	}
}

// TestNegativeSettingsRefused: zero durations and sizes mean the default,
// and the edge reads anything below zero the same way, so a negative one
// (a slip of the sign) would run with the default without a word. Load
// refuses it, naming the key.
func TestNegativeSettingsRefused(t *testing.T) {
	dir := t.TempDir()
	const head = "listen: :443\ntls: {cert: c, key: k}\ntunnel: {relays: [{address: \"r:443\"}], cert: c, key: k, ca: a%s}\n" +
		"client_keys: [{name: app, key: k0123456789012345678901234}]\n"
	for _, tc := range []struct{ lines, tunnel, wantErr string }{
		{"max_body_bytes: 0\nsession_wait: 0s\nlimits: {output_estimate: 0}", "", ""},
		{"max_body_bytes: 1024\ndrain_timeout: 5s\nbody_timeout: 1m", ", heartbeat: 5s, tcp_notsent_lowat: -1", ""},
		{"max_body_bytes: -1", "", "max_body_bytes -1: at least 0"},
		{"session_wait: -10s", "", "session_wait -10s"},
		{"read_header_timeout: -1s", "", "read_header_timeout -1s"},
		{"body_idle_timeout: -1s", "", "body_idle_timeout -1s"},
		{"body_timeout: -1s", "", "body_timeout -1s"},
		{"client_write_timeout: -1s", "", "client_write_timeout -1s"},
		{"drain_timeout: -30s", "", "drain_timeout -30s"},
		{"limits: {output_estimate: -1}", "", "limits.output_estimate -1"},
		{"client_buffer_budget: -1", "", "client_buffer_budget -1"},
		{"audit: {path: a.log, max_backups: -3}", "", "audit.max_backups -3"},
		{"", ", heartbeat: -5s", "tunnel.heartbeat -5s"},
		{"", ", heartbeat_timeout: -5s", "tunnel.heartbeat_timeout -5s"},
		{"", ", reconnect_max: -1s", "tunnel.reconnect_max -1s"},
		{"", ", probe_timeout: -1s", "tunnel.probe_timeout -1s"},
		{"", ", quic_retry: -1m", "tunnel.quic_retry -1m"},
		{"", ", sessions: {max: -2}", "tunnel.sessions.max -2"},
	} {
		path := dir + "/edge.yaml"
		if err := os.WriteFile(path, []byte(fmt.Sprintf(head, tc.tunnel)+tc.lines+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%q %q: error %v, want %q", tc.lines, tc.tunnel, err, tc.wantErr)
		}
	}
}

// TestNegativeExpiryRefused: keys create --expires-in with a negative
// duration (a slip of the sign, or "-1h" meant as "expire now") would
// store a key that never expires; it is refused before anything is
// stored.
func TestNegativeExpiryRefused(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/edge.yaml"
	head := "listen: :443\ntls: {cert: c, key: k}\ntunnel: {relays: [{address: \"r:443\"}], cert: c, key: k, ca: a}\n" +
		"data_dir: " + dir + "\n"
	if err := os.WriteFile(path, []byte(head), 0o600); err != nil {
		t.Fatal(err)
	}
	app := App()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	err := app.Run([]string{"strait-edge", "keys", "create", "-c", path, "--expires-in", "-1h", "alice"})
	if err == nil || !strings.Contains(err.Error(), "--expires-in -1h0m0s") {
		t.Errorf("create --expires-in -1h: %v; want a refusal naming the flag", err)
	}
	kf, err := keystore.FileRegistry{Path: edge.KeysPath(dir)}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(kf.Keys) != 0 {
		t.Errorf("stored keys %+v; want none", kf.Keys)
	}
}
