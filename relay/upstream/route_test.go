package upstream

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
)

func routingRegistry(t *testing.T, strict bool, routes ...RouteConfig) *Registry {
	t.Helper()
	r, err := New(Config{StrictModels: strict, Routes: routes, Providers: []ProviderConfig{
		{Name: "openai", Kind: OpenAI, BaseURL: "https://api.openai.com", Keys: keys("k")},
		{Name: "anthropic", Kind: Anthropic, BaseURL: "https://api.anthropic.com", Keys: keys("k")},
		{Name: "deepseek", Kind: OpenAICompatible, BaseURL: "https://api.deepseek.com", Keys: keys("k"),
			Models: []string{"deepseek-chat", "deepseek-reasoner"}},
		{Name: "azure", Kind: AzureOpenAI, BaseURL: "https://r.openai.azure.com", APIVersion: "2024-10-21", Keys: keys("k")},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestResolve proves the order of the routing table: a provider prefix,
// exact names (explicit routes before provider model lists), patterns in
// config order, the vendors' prefixes (claude-*, gpt-*, o3, …) from every
// client family, then the family's provider with the name unchanged; and
// the 404 cases, including another vendor's model with no provider for it.
func TestResolve(t *testing.T) {
	r := routingRegistry(t, false,
		RouteConfig{Model: "fast", Provider: "deepseek", UpstreamModel: "deepseek-chat",
			Fallbacks: []TargetConfig{{Provider: "openai", Model: "gpt-4o-mini"}, {Provider: "azure"}}},
		RouteConfig{Model: "gpt-4o", Provider: "azure", UpstreamModel: "my-4o-deployment"},
		RouteConfig{Model: "gpt-*", Provider: "openai"},
		RouteConfig{Model: "gpt-4*", Provider: "azure"}, // shadowed by gpt-* above
		RouteConfig{Model: "*-distill-*", Provider: "deepseek"},
		RouteConfig{Model: "deepseek-reasoner", Provider: "openai"}, // wins over deepseek's model list
	)
	tests := []struct {
		family, prefix, model string
		want                  string // "provider/model, provider/model…" or "error text"
		rule                  string
	}{
		{"openai", "", "fast", "deepseek/deepseek-chat, openai/gpt-4o-mini, azure/fast", "exact"},
		{"openai", "", "gpt-4o", "azure/my-4o-deployment", "exact"},
		{"openai", "", "gpt-4.1", "openai/gpt-4.1", "pattern gpt-*"},
		{"openai", "", "r1-distill-llama", "deepseek/r1-distill-llama", "pattern *-distill-*"},
		{"openai", "", "deepseek-chat", "deepseek/deepseek-chat", "exact"},
		{"openai", "", "deepseek-reasoner", "openai/deepseek-reasoner", "exact"},
		{"openai", "", "claude-sonnet-4-5", "anthropic/claude-sonnet-4-5", "default claude-*"},
		{"anthropic", "", "claude-sonnet-4-5", "anthropic/claude-sonnet-4-5", "default claude-*"},
		{"openai", "", "o3-brand-new", "openai/o3-brand-new", "default o3-*"},
		{"openai", "", "my-alias", "openai/my-alias", "family"},
		{"anthropic", "", "some-new-model", "anthropic/some-new-model", "family"},
		{"openai", "", "", "openai/", "family"},
		{"openai", "deepseek", "gpt-4o", "deepseek/gpt-4o", "prefix"},
		{"gemini", "", "gemini-2.5-flash", "no gemini provider", ""},
		{"openai", "", "gemini-2.5-flash", "is a gemini model and no gemini provider", ""}, // not sent to OpenAI
		// Every client family reaches the vendors' models by name.
		{"anthropic", "", "gpt-4o-mini", "openai/gpt-4o-mini", "pattern gpt-*"},
		{"anthropic", "", "o3", "openai/o3", "default o3"},
		{"anthropic", "", "o4-mini", "openai/o4-mini", "default o4-*"},
		{"gemini", "", "chatgpt-4o-latest", "openai/chatgpt-4o-latest", "default chatgpt-*"},
		{"gemini", "", "text-embedding-3-small", "openai/text-embedding-3-small", "default text-embedding-*"},
		{"gemini", "", "claude-haiku-4-5", "anthropic/claude-haiku-4-5", "default claude-*"},
		{"anthropic", "", "o1-preview", "openai/o1-preview", "default o1-*"},
		{"anthropic", "", "o1x", "anthropic/o1x", "family"}, // not a vendor prefix
		{"anthropic", "", "text-embedding-004", "is a gemini model", ""},
		{"gemini", "", "", "no gemini provider", ""},
		{"openai", "nosuch", "x", "unknown provider", ""},
		{"anthropic", "deepseek", "x", "speaks openai", ""},
	}
	for _, tc := range tests {
		rt, err := r.Resolve(tc.family, tc.prefix, tc.model)
		if err != nil {
			if !strings.Contains(err.Error(), tc.want) || tc.rule != "" {
				t.Errorf("Resolve(%s, %q, %q): %v, want %s", tc.family, tc.prefix, tc.model, err, tc.want)
			}
			if !errors.Is(err, ErrNoRoute) && !errors.Is(err, ErrUnknownModel) {
				t.Errorf("Resolve(%s, %q, %q): %v is neither ErrNoRoute nor ErrUnknownModel", tc.family, tc.prefix, tc.model, err)
			}
			continue
		}
		var got []string
		for _, tg := range rt.Targets {
			got = append(got, tg.Provider.Name+"/"+tg.Model)
		}
		if g := strings.Join(got, ", "); g != tc.want || rt.Rule != tc.rule {
			t.Errorf("Resolve(%s, %q, %q) = %s (%s), want %s (%s)", tc.family, tc.prefix, tc.model, g, rt.Rule, tc.want, tc.rule)
		}
	}
}

// TestResolveStrict proves strict_models turns unknown models into 404s
// while table models, the vendors' prefixes (as before for claude-*) and
// requests without a model still route.
func TestResolveStrict(t *testing.T) {
	r := routingRegistry(t, true, RouteConfig{Model: "gpt-4o", Provider: "openai"})
	if _, err := r.Resolve("openai", "", "my-unknown"); !errors.Is(err, ErrUnknownModel) || !strings.Contains(err.Error(), "my-unknown") {
		t.Errorf("unknown model: %v, want ErrUnknownModel naming it", err)
	}
	for _, m := range []string{"gpt-4o", "deepseek-chat", "claude-x", "gpt-5-unknown", ""} {
		if _, err := r.Resolve("openai", "", m); err != nil {
			t.Errorf("model %q: %v", m, err)
		}
	}
}

// TestRoutesValidation proves a table that names an unknown provider, a
// model twice or a pattern as upstream model is refused at startup.
func TestRoutesValidation(t *testing.T) {
	ps := []ProviderConfig{{Name: "openai", Kind: OpenAI, BaseURL: "https://x", Keys: keys("k")}}
	for name, routes := range map[string][]RouteConfig{
		"unknown provider":  {{Model: "a", Provider: "nosuch"}},
		"unknown fallback":  {{Model: "a", Provider: "openai", Fallbacks: []TargetConfig{{Provider: "nosuch"}}}},
		"duplicate":         {{Model: "a", Provider: "openai"}, {Model: "a", Provider: "openai"}},
		"empty model":       {{Provider: "openai"}},
		"pattern upstream":  {{Model: "a*", Provider: "openai", UpstreamModel: "b*"}},
		"negative weight":   nil,
		"weights mismatch":  nil,
		"unknown kind name": nil,
	} {
		cfg := Config{Providers: ps, Routes: routes}
		switch name {
		case "negative weight":
			cfg.Providers = []ProviderConfig{{Name: "o", Kind: OpenAI, BaseURL: "https://x", Keys: keys("k"), Weights: []int{-1}}}
		case "weights mismatch":
			cfg.Providers = []ProviderConfig{{Name: "o", Kind: OpenAI, BaseURL: "https://x", Keys: keys("k"), Weights: []int{1, 2}}}
		case "unknown kind name":
			cfg.Providers = []ProviderConfig{{Name: "o", Kind: "azure", BaseURL: "https://x", Keys: keys("k")}}
		}
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestGlob pins the pattern semantics: '*' matches any run, '/' included.
func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"gpt-*", "gpt-4o", true}, {"gpt-*", "gpt-", true}, {"gpt-*", "xgpt-4", false},
		{"*-mini", "gpt-4o-mini", true}, {"*-mini", "gpt-4o-mini-x", false},
		{"a*b*c", "abc", true}, {"a*b*c", "a1b2c", true}, {"a*b*c", "acb", false},
		{"openai/*", "openai/gpt-4o", true}, {"*", "", true}, {"exact", "exact", true}, {"exact", "exactly", false},
		{"a*a", "a", false},
	} {
		if got := glob(tc.p, tc.s); got != tc.want {
			t.Errorf("glob(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
	// Every request's model goes through it, for each route and default.
	if n := testing.AllocsPerRun(100, func() { glob("a*b*c", "a1b2c") }); n != 0 {
		t.Errorf("glob allocates %v times per call; want 0", n)
	}
}

// TestTargetRewrite proves passthrough is byte-exact when the upstream
// model is the client's, and that only the model's bytes change otherwise:
// in the JSON body (OpenAI, Anthropic), in the path (Gemini), and in the
// deployment URL (Azure with api_version).
func TestTargetRewrite(t *testing.T) {
	r := routingRegistry(t, false)
	gem, err := NewRegistry([]ProviderConfig{{Name: "gemini", Kind: Gemini, BaseURL: "https://g.example", Keys: keys("k")}})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"messages":[{"role":"user","content":"say \"model\": x"}], "model" :  "fast" ,"stream":true,"x_unknown":{"model":"inner"}}`
	tests := []struct {
		provider       *Provider
		path, body     string
		model          string // upstream model
		wantURL        string
		wantBody       string
		wantStreamFlag bool
	}{
		{r.Provider("openai"), "/v1/chat/completions", body, "fast", "https://api.openai.com/v1/chat/completions", body, true},
		{r.Provider("deepseek"), "/v1/chat/completions", body, "deepseek-chat", "https://api.deepseek.com/v1/chat/completions",
			strings.Replace(body, `"fast"`, `"deepseek-chat"`, 1), true},
		{r.Provider("azure"), "/v1/chat/completions", body, "my-deploy",
			"https://r.openai.azure.com/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21",
			strings.Replace(body, `"fast"`, `"my-deploy"`, 1), true},
		{gem.Provider("gemini"), "/v1beta/models/fast:streamGenerateContent", `{"contents":[]}`, "gemini-2.5-pro",
			"https://g.example/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", `{"contents":[]}`, true},
		{gem.Provider("gemini"), "/v1beta/models/fast:generateContent", `{"contents":[]}`, "fast",
			"https://g.example/v1beta/models/fast:generateContent?alt=sse", `{"contents":[]}`, false},
	}
	for _, tc := range tests {
		h := &proto.RequestHeader{Family: tc.provider.Family(), Method: "POST", Path: tc.path, RawQuery: "alt=sse"}
		if tc.provider.Kind != Gemini {
			h.RawQuery = ""
		}
		in := ParseInbound(h, []byte(tc.body))
		if in.Model != "fast" || in.Stream != tc.wantStreamFlag {
			t.Errorf("%s: ParseInbound model %q stream %v", tc.path, in.Model, in.Stream)
		}
		req, err := Target{Provider: tc.provider, Model: tc.model}.NewRequest(context.Background(), in, NewKey("k"))
		if err != nil {
			t.Fatalf("%s %s: %v", tc.provider.Name, tc.path, err)
		}
		got, _ := io.ReadAll(req.Body)
		if req.URL.String() != tc.wantURL || string(got) != tc.wantBody || req.ContentLength != int64(len(got)) {
			t.Errorf("%s → %s:\n url  %s\n want %s\n body %s\n want %s", tc.provider.Name, tc.model, req.URL, tc.wantURL, got, tc.wantBody)
		}
	}
	if req, _ := (Target{Provider: r.Provider("azure"), Model: "x"}).NewRequest(context.Background(),
		ParseInbound(&proto.RequestHeader{Method: "GET", Path: "/v1/models"}, nil), NewKey("k")); req.Header.Get("Api-Key") != "k" {
		t.Errorf("azure auth header: %v", req.Header)
	}
	// A model that would add path segments never reaches a URL.
	in := ParseInbound(&proto.RequestHeader{Method: "POST", Path: "/v1/chat/completions"}, []byte(`{"model":"../../admin"}`))
	if _, err := (Target{Provider: r.Provider("azure"), Model: in.Model}).NewRequest(context.Background(), in, NewKey("k")); !errors.Is(err, ErrBadPath) {
		t.Errorf("azure deployment ../../admin: %v, want ErrBadPath", err)
	}
}

// TestParseInboundFineTunedModel: an OpenAI fine-tuned model id in the
// path (GET /v1/models/ft:…) is no Gemini {model}:{method}, and an OpenAI
// request never takes its model from a path.
func TestParseInboundFineTunedModel(t *testing.T) {
	for _, tc := range []struct {
		family, path, want string
	}{
		{"openai", "/v1/models/ft:gpt-4o-mini-2024-07-18:acme::AbC123", ""},
		{"openai", "/v1/models/x:generateContent", ""},
		{"gemini", "/v1/models/ft:gpt-4o-mini:acme::AbC123", ""},
		{"gemini", "/v1/models/gemini-2.5-flash:generateContent", "gemini-2.5-flash"},
		{"gemini", "/v1beta/models/gemini-2.5-flash", "gemini-2.5-flash"},
	} {
		in := ParseInbound(&proto.RequestHeader{Family: tc.family, Method: "GET", Path: tc.path}, nil)
		if in.Model != tc.want {
			t.Errorf("%s %s: model %q, want %q", tc.family, tc.path, in.Model, tc.want)
		}
	}
}

// TestParseInboundNotJSON proves bodies that are not JSON objects name no
// model and are left alone.
func TestParseInboundNotJSON(t *testing.T) {
	for _, b := range []string{"", "--boundary\r\nmodel=x", `["model"]`, `{"model":1}`, `{"model":`} {
		in := ParseInbound(&proto.RequestHeader{Method: "POST", Path: "/v1/audio/transcriptions"}, []byte(b))
		if in.Model != "" {
			t.Errorf("%q: model %q", b, in.Model)
		}
	}
	if _, err := llmapi.ReplaceModel([]byte(`{"a":1}`), "x"); err == nil {
		t.Error("ReplaceModel without a model succeeded")
	}
}
