package e2e

import (
	"testing"

	"github.com/strait/strait/cmd/internal/edgecmd"
	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/relay/upstream"
)

// TestExampleConfigs keeps the documented example configs loadable: strict
// decoding rejects a renamed key, and every ${ENV} reference resolves.
func TestExampleConfigs(t *testing.T) {
	for _, v := range []string{"OPENAI_API_KEY", "ANTHROPIC_API_KEY_1", "ANTHROPIC_API_KEY_2", "GEMINI_API_KEY",
		"DEEPSEEK_API_KEY", "AZURE_OPENAI_API_KEY",
		"OPENROUTER_API_KEY_1", "OPENROUTER_API_KEY_2", "STRAIT_KEY_TEAM_BACKEND", "STRAIT_KEY_ALICE"} {
		t.Setenv(v, "example-secret-for-"+v)
	}
	rf, err := relaycmd.Load("../../scripts/config/relay.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	providers, err := rf.ProviderConfigs()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := upstream.New(upstream.Config{Providers: providers, Routes: rf.RouteConfigs(), StrictModels: rf.StrictModels}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for fam, want := range map[string]string{"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"} {
		if got := reg.DefaultFor(fam); got != want {
			t.Errorf("%s requests go to %q, want %q", fam, got, want)
		}
	}
	if rt, err := reg.Resolve("openai", "", "gpt-4o"); err != nil || rt.Targets[0].Model != "my-gpt-4o-deployment" || len(rt.Targets) != 2 {
		t.Errorf("the example's gpt-4o route: %+v, %v", rt, err)
	}
	ef, err := edgecmd.Load("../../scripts/config/edge.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ef.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if keys.Len() != 2 {
		t.Fatalf("%d client keys, want 2", keys.Len())
	}
	if c, ok := keys.Lookup("example-secret-for-STRAIT_KEY_ALICE"); !ok || c.Limits.RPM != 60 || c.Expires.IsZero() ||
		!c.Allows("claude-sonnet-4-5") || c.Allows("o3") {
		t.Errorf("alice's policy from the example: %+v", c)
	}
	if len(ef.Prices) == 0 || ef.Audit.Path == "" || ef.DataDir == "" {
		t.Errorf("example lacks prices, audit or data_dir: %+v", ef)
	}
	t.Setenv("STRAIT_KEY_ALICE", "")
	if _, err := ef.Keys(); err == nil {
		t.Fatal("an unset ${ENV} key was accepted")
	}
}
