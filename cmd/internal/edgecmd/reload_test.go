package edgecmd

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/certs"
)

// TestReloadNamesWhatWaitsForRestart: a reload applies the client keys,
// the guard and the certificate files; every other change (limits,
// prices, the certificate's source, listen, relays) waits for a restart,
// and the log must say which, instead of a bare "config reloaded" that
// reads as if the edit were live.
func TestReloadNamesWhatWaitsForRestart(t *testing.T) {
	dir := t.TempDir()
	files, err := certs.Generate(certs.GenerateOptions{Dir: dir, FrontDNS: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.Generate(certs.GenerateOptions{Dir: filepath.Join(dir, "other"), FrontDNS: []string{"localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	config := func(front, extra string) string {
		return fmt.Sprintf("listen: 127.0.0.1:0\n%s\ntunnel: {relays: [{address: \"127.0.0.1:1\", transport: ws}], cert: %s, key: %s, ca: %s}\n"+
			"data_dir: %s\n%s", front, files.EdgeCert, files.EdgeKey, files.CACert, filepath.Join(dir, "data"), extra)
	}
	front := fmt.Sprintf("tls: {cert: %s, key: %s}", files.FrontCert, files.FrontKey)
	keys := "client_keys: [{name: app, key: k0123456789012345678901234}]\n"
	path := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(path, []byte(config(front, keys)), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	srv, err := Build(f, ln, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	for _, tc := range []struct {
		name, config string
		want         []string // settings named as waiting for a restart
	}{
		{"same", config(front, keys), nil},
		{"client keys", config(front, "client_keys: [{name: app, key: k0123456789012345678901234, limits: {rpm: 5}}]\n"), nil},
		{"guard", config(front, keys+"guard: {detectors: [email]}\n"), nil},
		{"certificate files", config(fmt.Sprintf("tls: {cert: %s, key: %s}", other.FrontCert, other.FrontKey), keys), nil},
		{"prices", config(front, keys+"prices: [{model: gpt-4o*, input: 2.5, output: 10}]\n"), []string{"prices"}},
		{"limits", config(front, keys+"limits: {unauthenticated_rpm: 5}\n"), []string{"limits"}},
		{"max body", config(front, keys+"max_body_bytes: 1024\n"), []string{"max_body_bytes"}},
		{"to ACME", config("tls: {acme: {domains: [edge.example.com]}}", keys), []string{"tls"}},
		{"drain", config(front, keys+"drain_timeout: 5s\n"), []string{"drain_timeout"}},
		{"listen and relays", strings.NewReplacer("listen: 127.0.0.1:0", "listen: 127.0.0.1:9", "127.0.0.1:1", "127.0.0.1:2").
			Replace(config(front, keys)), []string{"listen", "tunnel"}},
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
				if len(got) == 0 {
					got = append(got, "(unnamed)")
				}
			}
			if want := fmt.Sprint(tc.want); (len(tc.want) == 0) != (len(got) == 0) || (len(got) > 0 && !slices.Contains(got, want)) {
				t.Errorf("restart warning names %v; want %v", got, tc.want)
			}
		})
	}
}
