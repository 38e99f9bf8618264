package upstream

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/strait/strait/proto"
)

func keys(s ...string) []Key {
	out := make([]Key, len(s))
	for i, v := range s {
		out[i] = NewKey(v)
	}
	return out
}

// TestNewRegistryValidation proves that a provider config that could send
// requests somewhere unintended, or not at all, is refused at startup.
func TestNewRegistryValidation(t *testing.T) {
	ok := ProviderConfig{Name: "openai", Kind: OpenAI, BaseURL: "https://api.openai.com", Keys: keys("k")}
	with := func(f func(*ProviderConfig)) []ProviderConfig { c := ok; f(&c); return []ProviderConfig{c} }
	tests := []struct {
		name string
		cfgs []ProviderConfig
		want string // error substring; "" means success
	}{
		{"ok", []ProviderConfig{ok}, ""},
		{"http allowed", with(func(c *ProviderConfig) { c.BaseURL = "http://127.0.0.1:8080/v" }), ""},
		{"unknown kind", with(func(c *ProviderConfig) { c.Kind = "azure" }), "unknown kind"},
		{"empty kind", with(func(c *ProviderConfig) { c.Kind = "" }), "unknown kind"},
		{"ftp", with(func(c *ProviderConfig) { c.BaseURL = "ftp://x" }), "base_url"},
		{"user info in base URL", with(func(c *ProviderConfig) { c.BaseURL = "https://u:p@api.example.com" }), "base_url"},
		{"no scheme", with(func(c *ProviderConfig) { c.BaseURL = "api.openai.com" }), "base_url"},
		{"no host", with(func(c *ProviderConfig) { c.BaseURL = "https://" }), "base_url"},
		{"no host with path", with(func(c *ProviderConfig) { c.BaseURL = "https:///v1" }), "base_url"},
		{"opaque", with(func(c *ProviderConfig) { c.BaseURL = "https:api.openai.com" }), "base_url"},
		{"query", with(func(c *ProviderConfig) { c.BaseURL = "https://x/?key=1" }), "base_url"},
		{"unparsable", with(func(c *ProviderConfig) { c.BaseURL = "https://x/%zz" }), "base_url"},
		{"no keys", with(func(c *ProviderConfig) { c.Keys = nil }), ErrNoKeys.Error()},
		{"empty name", with(func(c *ProviderConfig) { c.Name = "" }), "invalid name"},
		{"slash in name", with(func(c *ProviderConfig) { c.Name = "a/b" }), "invalid name"},
		{"duplicate", []ProviderConfig{ok, ok}, "defined twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRegistry(tc.cfgs)
			if tc.want == "" {
				if err != nil || r == nil {
					t.Fatalf("NewRegistry: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewRegistry err = %v, want containing %q", err, tc.want)
			}
		})
	}
	// A refused base URL is printed at start and logged on a refused
	// reload: what it must not carry (a password, a key in the query) is
	// not shown.
	for _, bad := range []string{"https://u:SECRET@api.example.com", "https://api.example.com/v1?key=SECRET",
		"https://u:SECRET@api.example.com/%zz", "https://api.example.com/%zz?key=SECRET"} {
		_, err := NewRegistry(with(func(c *ProviderConfig) { c.BaseURL = bad }))
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("base_url %s: error %v; want one without the secret", bad, err)
		}
	}
}

// TestDefaultFor proves which provider serves a family when the client names
// none: the first of the family, unless one is named exactly like it.
func TestDefaultFor(t *testing.T) {
	p := func(name string, kind Kind) ProviderConfig {
		return ProviderConfig{Name: name, Kind: kind, BaseURL: "https://" + name + ".example", Keys: keys("k")}
	}
	tests := []struct {
		name string
		cfgs []ProviderConfig
		want map[string]string // family → provider name ("" = none)
	}{
		{"first of kind", []ProviderConfig{p("a1", Anthropic), p("a2", Anthropic), p("g", Gemini)},
			map[string]string{"anthropic": "a1", "gemini": "g", "openai": ""}},
		{"named like family wins even later", []ProviderConfig{p("a1", Anthropic), p("anthropic", Anthropic), p("a3", Anthropic)},
			map[string]string{"anthropic": "anthropic"}},
		{"openai kind before compatible", []ProviderConfig{p("oai", OpenAI), p("deepseek", OpenAICompatible)},
			map[string]string{"openai": "oai"}},
		{"compatible first serves openai", []ProviderConfig{p("deepseek", OpenAICompatible), p("oai", OpenAI)},
			map[string]string{"openai": "deepseek"}},
		{"compatible named openai wins", []ProviderConfig{p("oai", OpenAI), p("openai", OpenAICompatible)},
			map[string]string{"openai": "openai"}},
		{"named openai not displaced", []ProviderConfig{p("openai", OpenAI), p("deepseek", OpenAICompatible)},
			map[string]string{"openai": "openai"}},
		{"compatible serves no other family", []ProviderConfig{p("deepseek", OpenAICompatible)},
			map[string]string{"openai": "deepseek", "openai-compatible": "", "anthropic": "", "gemini": ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRegistry(tc.cfgs)
			if err != nil {
				t.Fatal(err)
			}
			for fam, want := range tc.want {
				if got := r.DefaultFor(fam); got != want {
					t.Errorf("DefaultFor(%q) = %q, want %q", fam, got, want)
				}
			}
		})
	}
}

// TestRoute proves a /{provider}/ prefix selects that provider only when it
// exists and speaks the family the edge detected.
func TestRoute(t *testing.T) {
	r, err := NewRegistry([]ProviderConfig{
		{Name: "openai", Kind: OpenAI, BaseURL: "https://api.openai.com", Keys: keys("k")},
		{Name: "deepseek", Kind: OpenAICompatible, BaseURL: "https://api.deepseek.com", Keys: keys("k")},
		{Name: "claude", Kind: Anthropic, BaseURL: "https://api.anthropic.com", Keys: keys("k")},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		family, provider string
		want             string // provider name; "" means ErrNoRoute
	}{
		{"openai", "", "openai"},
		{"anthropic", "", "claude"},
		{"gemini", "", ""},
		{"openai", "deepseek", "deepseek"},
		{"openai", "openai", "openai"},
		{"anthropic", "claude", "claude"},
		{"openai", "nosuch", ""},
		{"openai", "claude", ""},
		{"anthropic", "deepseek", ""},
		{"openai-compatible", "deepseek", ""},
		{"", "", ""},
	}
	for _, tc := range tests {
		rt, err := r.Resolve(tc.family, tc.provider, "")
		switch {
		case tc.want == "" && !errors.Is(err, ErrNoRoute):
			t.Errorf("Resolve(%q, %q) = %v, %v; want ErrNoRoute", tc.family, tc.provider, rt, err)
		case tc.want != "" && (err != nil || rt.Targets[0].Provider.Name != tc.want):
			t.Errorf("Resolve(%q, %q) = %v, %v; want %q", tc.family, tc.provider, rt, err, tc.want)
		}
	}
}

// newRequest builds p's request for h and body with p's first key, the
// model unchanged.
func newRequest(p *Provider, h *proto.RequestHeader, body []byte) (*http.Request, Key, error) {
	in := ParseInbound(h, body)
	key := p.Keys()[0]
	req, err := Target{Provider: p, Model: in.Model}.NewRequest(context.Background(), in, key)
	return req, key, err
}

func provider(t *testing.T, kind Kind, base string, ks ...string) *Provider {
	t.Helper()
	r, err := NewRegistry([]ProviderConfig{{Name: "p", Kind: kind, BaseURL: base, Keys: keys(ks...)}})
	if err != nil {
		t.Fatal(err)
	}
	return r.byName["p"]
}

// TestNewRequestURL proves the upstream URL is the base URL (prefix
// included) plus the client's path, with any key= dropped from the query.
func TestNewRequestURL(t *testing.T) {
	tests := []struct {
		base, path, query, want string
	}{
		{"https://api.openai.com", "/v1/chat/completions", "", "https://api.openai.com/v1/chat/completions"},
		{"https://openrouter.ai/api", "/v1/chat/completions", "", "https://openrouter.ai/api/v1/chat/completions"},
		{"https://openrouter.ai/api/", "/v1/models", "", "https://openrouter.ai/api/v1/models"},
		{"http://127.0.0.1:9000", "/v1beta/models/g:streamGenerateContent", "alt=sse", "http://127.0.0.1:9000/v1beta/models/g:streamGenerateContent?alt=sse"},
		{"https://g.example", "/v1beta/models", "alt=sse&key=SECRET", "https://g.example/v1beta/models?alt=sse"},
		{"https://g.example", "/v1beta/models", "key=SECRET", "https://g.example/v1beta/models"},
		{"https://g.example", "/v1beta/models", "%6Bey=SECRET&alt=sse", "https://g.example/v1beta/models?alt=sse"},
		{"https://g.example", "/v1beta/models", "x=%zz&key=SECRET", "https://g.example/v1beta/models?x=%zz"},
		{"https://g.example", "/v1beta/models", "monkey=1", "https://g.example/v1beta/models?monkey=1"},
	}
	for _, tc := range tests {
		p := provider(t, Gemini, tc.base, "k")
		req, _, err := newRequest(p, &proto.RequestHeader{Method: "POST", Path: tc.path, RawQuery: tc.query}, nil)
		if err != nil {
			t.Errorf("NewRequest(%s + %s?%s): %v", tc.base, tc.path, tc.query, err)
			continue
		}
		if got := req.URL.String(); got != tc.want {
			t.Errorf("NewRequest(%s + %s?%s) URL = %s, want %s", tc.base, tc.path, tc.query, got, tc.want)
		}
		if strings.Contains(req.URL.String(), "SECRET") {
			t.Errorf("key left in URL %s", req.URL)
		}
	}
}

// TestNewRequestNeverOpenProxy proves the relay is never an open proxy:
// whatever path, query, method or Host header the edge sends, the request
// either fails with ErrBadPath or goes to the provider's own host.
func TestNewRequestNeverOpenProxy(t *testing.T) {
	const host = "openrouter.ai"
	p := provider(t, OpenAICompatible, "https://"+host+"/api", "k")
	paths := []string{
		"/v1/../../x", "//evil.com/x", "/v1/x?y", "\\evil", "/v1/%2e%2e/x", "/v1/x#frag",
		"", "evil.com", "http://evil.com/x", "https://evil.com", "@evil.com/x", "/@evil.com",
		":443@evil.com/x", "/v1/\\..\\x", "/v1/x\x00", "/..", "/.", "/v1/%2F%2Fevil.com",
		"/v1/\r\nHost: evil.com", "/%09/evil.com", "/v1/x/", "/v1/chat/completions",
	}
	accepted := map[string]bool{}
	for _, path := range paths {
		h := &proto.RequestHeader{Method: "POST", Path: path, RawQuery: "a=1",
			Header: http.Header{"Host": {"evil.com"}, "host": {"evil.com"}, "X-Forwarded-Host": {"evil.com"}}}
		req, _, err := newRequest(p, h, []byte("{}"))
		if err != nil {
			if !errors.Is(err, ErrBadPath) {
				t.Errorf("NewRequest(%q) error %v is not ErrBadPath", path, err)
			}
			continue
		}
		if req.URL.Scheme != "https" || req.URL.Host != host || req.Host != host || req.URL.User != nil {
			t.Errorf("NewRequest(%q) goes to %s (Host %q), want %s", path, req.URL, req.Host, host)
		}
		accepted[path] = true
		if !strings.HasPrefix(req.URL.EscapedPath(), "/api/") {
			t.Errorf("NewRequest(%q) path %q escapes the base path /api", path, req.URL.EscapedPath())
		}
		for k := range req.Header {
			if strings.EqualFold(k, "Host") {
				t.Errorf("NewRequest(%q) forwards a %s header", path, k)
			}
		}
	}
	for _, path := range []string{"/v1/chat/completions", "/v1/x/", "/v1/%2e%2e/x"} {
		if !accepted[path] {
			t.Errorf("clean path %q was not accepted", path)
		}
	}
	for _, method := range []string{"GET http://evil.com/", "GET\r\nHost: evil.com"} {
		if _, _, err := newRequest(p, &proto.RequestHeader{Method: method, Path: "/v1/models"}, nil); !errors.Is(err, ErrBadPath) {
			t.Errorf("method %q: err = %v, want ErrBadPath", method, err)
		}
	}
}

// TestNewRequestCredentials proves no credential the client (or a
// misbehaving edge) sent reaches the provider, in any header-name case, and
// that each kind gets the provider's key in its own header.
func TestNewRequestCredentials(t *testing.T) {
	clientCreds := http.Header{
		"Authorization":       {"Bearer client"},
		"X-Api-Key":           {"client"},
		"X-Goog-Api-Key":      {"client"},
		"Api-Key":             {"client"},
		"Cookie":              {"session=client"},
		"Proxy-Authorization": {"Basic client"},
		"authorization":       {"Bearer client-lower"},
		"x-api-key":           {"client-lower"},
		"COOKIE":              {"client-upper"},
		"Content-Type":        {"application/json"},
		"User-Agent":          {"OpenAI/Go 3.0"},
	}
	tests := []struct {
		kind   Kind
		client http.Header
		want   map[string]string // header → value after; "" means absent
	}{
		{OpenAI, nil, map[string]string{"Authorization": "Bearer PK", "X-Api-Key": "", "X-Goog-Api-Key": "", "Api-Key": "", "Anthropic-Version": ""}},
		{OpenAICompatible, nil, map[string]string{"Authorization": "Bearer PK", "X-Api-Key": "", "X-Goog-Api-Key": "", "Api-Key": ""}},
		{Anthropic, nil, map[string]string{"X-Api-Key": "PK", "Anthropic-Version": DefaultAnthropicVersion, "Authorization": "", "X-Goog-Api-Key": "", "Api-Key": ""}},
		{Anthropic, http.Header{"Anthropic-Version": {"2024-10-22"}}, map[string]string{"X-Api-Key": "PK", "Anthropic-Version": "2024-10-22"}},
		{Gemini, nil, map[string]string{"X-Goog-Api-Key": "PK", "Authorization": "", "X-Api-Key": "", "Api-Key": ""}},
	}
	for _, tc := range tests {
		hdr := clientCreds.Clone()
		for k, v := range tc.client {
			hdr[k] = v
		}
		p := provider(t, tc.kind, "https://p.example", "PK")
		req, key, err := newRequest(p, &proto.RequestHeader{Method: "POST", Path: "/v1/x", Header: hdr}, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		if key.Reveal() != "PK" {
			t.Errorf("%s: returned key %v", tc.kind, key)
		}
		for name, want := range tc.want {
			if got := req.Header.Values(name); want == "" && len(got) != 0 || want != "" && (len(got) != 1 || got[0] != want) {
				t.Errorf("%s: %s = %q, want %q", tc.kind, name, got, want)
			}
		}
		for k, vv := range req.Header {
			for _, v := range vv {
				if strings.Contains(v, "client") {
					t.Errorf("%s: client credential forwarded in %s: %q", tc.kind, k, v)
				}
			}
		}
		if req.Header.Get("Content-Type") != "application/json" || req.Header.Get("User-Agent") != "OpenAI/Go 3.0" {
			t.Errorf("%s: ordinary headers dropped: %v", tc.kind, req.Header)
		}
		if hdr.Get("Authorization") != "Bearer client" {
			t.Errorf("%s: the edge's header map was mutated", tc.kind)
		}
	}
}
