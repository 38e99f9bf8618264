package edgecmd

import (
	"strings"
	"testing"
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
