package relaycmd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
