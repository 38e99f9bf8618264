package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExpandSecret proves ${VAR} references resolve from the environment,
// and that an unset reference or an empty result is an error that names the
// variable but never echoes any value.
func TestExpandSecret(t *testing.T) {
	t.Setenv("STRAIT_T_A", "alpha-value")
	t.Setenv("STRAIT_T_B", "bravo-value")
	t.Setenv("STRAIT_T_EMPTY", "")
	t.Setenv("STRAIT_T_SPACE", "   ")
	os.Unsetenv("STRAIT_T_UNSET")
	tests := []struct {
		in, want string
		errHas   string // "" means success
	}{
		{"sk-literal", "sk-literal", ""},
		{"${STRAIT_T_A}", "alpha-value", ""},
		{"prefix-${STRAIT_T_A}", "prefix-alpha-value", ""},
		{"${STRAIT_T_A}:${STRAIT_T_B}", "alpha-value:bravo-value", ""},
		{"$STRAIT_T_A", "$STRAIT_T_A", ""}, // only the braced form expands
		{"${STRAIT_T_UNSET}", "", "STRAIT_T_UNSET"},
		{"x-${STRAIT_T_A}-${STRAIT_T_UNSET}", "", "STRAIT_T_UNSET"},
		{"${STRAIT_T_EMPTY}", "", "STRAIT_T_EMPTY"},
		{"${STRAIT_T_SPACE}", "", "empty"},
		{"", "", "empty"},
		{"  ", "", "empty"},
	}
	for _, tc := range tests {
		got, err := ExpandSecret(tc.in)
		if tc.errHas == "" {
			if err != nil || got != tc.want {
				t.Errorf("ExpandSecret(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("ExpandSecret(%q) = %q, %v; want error containing %q", tc.in, got, err, tc.errHas)
			continue
		}
		if got != "" {
			t.Errorf("ExpandSecret(%q) returned %q with its error", tc.in, got)
		}
		for _, v := range []string{"alpha-value", "bravo-value"} {
			if strings.Contains(err.Error(), v) {
				t.Errorf("ExpandSecret(%q) error %q reveals a value", tc.in, err)
			}
		}
	}
}

// TestLoadYAML proves a config with an unknown key (a typo) is rejected with
// the file's path in the message, while a valid one decodes.
func TestLoadYAML(t *testing.T) {
	type cfg struct {
		Listen string `yaml:"listen"`
		Nested struct {
			Size int `yaml:"size"`
		} `yaml:"nested"`
	}
	dir := t.TempDir()
	tests := []struct {
		name, body string
		errHas     string // "" means success
	}{
		{"ok.yaml", "listen: \":443\"\nnested:\n  size: 3\n", ""},
		{"ok-marked.yaml", "---\nlisten: \":443\"\nnested:\n  size: 3\n...\n", ""},
		{"typo.yaml", "listn: \":443\"\n", "listn"},
		{"nested-typo.yaml", "nested:\n  sise: 3\n", "sise"},
		{"badtype.yaml", "nested:\n  size: big\n", "big"},
		// A second document would be dropped whole, typos and all.
		{"two-docs.yaml", "listen: \":443\"\n---\nnested:\n  sise: 3\n", "one YAML document"},
		{"two-docs-ok.yaml", "listen: \":443\"\n---\nnested:\n  size: 3\n", "one YAML document"},
		{"empty-second.yaml", "listen: \":443\"\n---\n", "one YAML document"},
	}
	for _, tc := range tests {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		var c cfg
		err := LoadYAML(path, &c)
		if tc.errHas == "" {
			if err != nil || c.Listen != ":443" || c.Nested.Size != 3 {
				t.Errorf("%s: %+v, %v", tc.name, c, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.errHas) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want it to name %q and %s", tc.name, err, tc.errHas, path)
		}
	}
	missing := filepath.Join(dir, "missing.yaml")
	if err := LoadYAML(missing, new(cfg)); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: err = %v, want it to name %s", err, missing)
	}
}

// TestNewLogger proves both formats and every level build a logger at the
// requested level, and a bad format or level is an error naming it.
func TestNewLogger(t *testing.T) {
	tests := []struct {
		format, level string
		errHas        string
	}{
		{"json", "info", ""},
		{"", "debug", ""},
		{"console", "warn", ""},
		{"json", "error", ""},
		{"xml", "info", "xml"},
		{"json", "loud", "loud"},
	}
	for _, tc := range tests {
		log, err := NewLogger(tc.format, tc.level)
		if tc.errHas != "" {
			if err == nil || log != nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("NewLogger(%q, %q) = %v, %v; want error naming %q", tc.format, tc.level, log, err, tc.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("NewLogger(%q, %q): %v", tc.format, tc.level, err)
			continue
		}
		if got := log.Level().String(); got != tc.level {
			t.Errorf("NewLogger(%q, %q) level = %s", tc.format, tc.level, got)
		}
	}
}
