package relaycmd

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/certs"
)

// TestReloadNamesWhatWaitsForRestart: a reload applies providers, routes
// and their policies, the tunnel certificate and the revocation list;
// every other change (retry, body limit, transport, tunnel tuning) waits
// for a restart, and the log must say which, instead of a bare "config
// reloaded" that reads as if the edit were live.
func TestReloadNamesWhatWaitsForRestart(t *testing.T) {
	dir := t.TempDir()
	files, err := certs.Generate(certs.GenerateOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("listen: 127.0.0.1:0\nlisten_quic: off\ntls: {cert: %s, key: %s, client_ca: %s",
		files.RelayCert, files.RelayKey, files.CACert)
	const provider = "providers: [{kind: openai, base_url: https://api.openai.com/v1, api_keys: [sk-test-0123456789]}]\n"
	config := func(tlsExtra, extra string) string { return head + tlsExtra + "}\n" + provider + extra }
	path := filepath.Join(dir, "relay.yaml")
	if err := os.WriteFile(path, []byte(config("", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	srv, err := Build(f, Sockets{}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.closeListeners()

	for _, tc := range []struct {
		name, config string
		want         []string // settings named as waiting for a restart
	}{
		{"same", config("", ""), nil},
		{"routes and timeouts", config("", "routes: [{model: fast, provider: openai, upstream_model: gpt-4o-mini}]\ntimeouts: {first_byte: 5s}\n"), nil},
		{"revoked edges", config(", revoked_edges: ["+strings.Repeat("ab", 32)+"]", ""), nil},
		{"retry", config("", "retry: {max_attempts: 5}\n"), []string{"retry"}},
		{"max body", config("", "max_body_bytes: 1024\n"), []string{"max_body_bytes"}},
		{"header timeout and heartbeat", config("", "heartbeat: 3s\nresponse_header_timeout: 1m\n"), []string{"heartbeat", "response_header_timeout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			logs.TakeAll()
			if err := srv.Reload(path); err != nil {
				t.Fatalf("reload: %v", err)
			}
			var got []string
			for _, e := range logs.FilterMessageSnippet("take effect on restart").All() {
				for _, fld := range e.Context {
					if fld.Key == "settings" {
						got = append(got, fmt.Sprint(fld.Interface))
					}
				}
			}
			if want := fmt.Sprint(tc.want); (len(tc.want) == 0) != (len(got) == 0) || (len(got) > 0 && !slices.Contains(got, want)) {
				t.Errorf("restart warning names %v; want %v", got, tc.want)
			}
		})
	}
}
