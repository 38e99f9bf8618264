package upstream

import "testing"

// TestResponsesOnly: OpenAI's documented Responses-only models and the
// provider's own responses_models are Responses-only on OpenAI and Azure
// providers, and nowhere else.
func TestResponsesOnly(t *testing.T) {
	r, err := New(Config{Providers: []ProviderConfig{
		{Name: "openai", Kind: OpenAI, BaseURL: "https://api.openai.com", Keys: keys("k"), ResponsesModels: []string{"agent-*"}},
		{Name: "compat", Kind: OpenAICompatible, BaseURL: "https://x", Keys: keys("k")},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		provider, model string
		want            bool
	}{
		{"openai", "o3-pro", true}, {"openai", "o1-pro-2025-03-19", true}, {"openai", "gpt-5-codex", true},
		{"openai", "gpt-5.1-codex-max", true}, {"openai", "codex-mini-latest", true}, {"openai", "agent-7", true},
		{"openai", "gpt-4o", false}, {"openai", "o3", false}, {"openai", "gpt-5", false},
		{"compat", "o3-pro", false}, {"compat", "agent-7", false},
	} {
		if got := r.Provider(tc.provider).ResponsesOnly(tc.model); got != tc.want {
			t.Errorf("%s %s: %v", tc.provider, tc.model, got)
		}
	}
}
