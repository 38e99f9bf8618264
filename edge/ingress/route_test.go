package ingress

import (
	"net/http"
	"slices"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestClassify proves that each SDK's paths map to its API family, that a
// /{provider}/ prefix is split off, and that unclean or unknown paths are
// rejected rather than forwarded.
func TestClassify(t *testing.T) {
	anth := http.Header{"Anthropic-Version": {"2023-06-01"}}
	tests := []struct {
		path   string
		h      http.Header
		ok     bool
		family llmapi.Family
		prov   string
		rpath  string // expected Route.Path; "" means same as path
	}{
		{path: "/v1/chat/completions", ok: true, family: llmapi.OpenAI},
		{path: "/v1/embeddings", ok: true, family: llmapi.OpenAI},
		{path: "/v1/models", ok: true, family: llmapi.OpenAI},
		{path: "/v1/models", h: anth, ok: true, family: llmapi.Anthropic},
		{path: "/v1/responses", ok: true, family: llmapi.OpenAI},
		{path: "/v1/messages", ok: true, family: llmapi.Anthropic},
		{path: "/v1/messages/count_tokens", ok: true, family: llmapi.Anthropic},
		{path: "/v1beta/models/x:generateContent", ok: true, family: llmapi.Gemini},
		{path: "/v1/models/gemini:streamGenerateContent", ok: true, family: llmapi.Gemini},
		// OpenAI fine-tuned model ids have colons too, and are no Gemini call.
		{path: "/v1/models/ft:gpt-4o-mini-2024-07-18:acme::AbC123", ok: true, family: llmapi.OpenAI},
		{path: "/v1/models/curie:ft-acme-2022-01-01", ok: true, family: llmapi.OpenAI},
		{path: "/upload/v1beta/files", ok: true, family: llmapi.Gemini},
		{path: "/deepseek/v1/chat/completions", ok: true, family: llmapi.OpenAI, prov: "deepseek", rpath: "/v1/chat/completions"},
		{path: "/"},
		{path: ""},
		{path: "/v2/x"},
		{path: "/v1/../etc/passwd"},
		{path: "/v1/./models"},
		{path: "//v1/x"},
		{path: "/v1//x"},
		{path: "/Foo/v1/x"},
		{path: "/v1\\x"},
		{path: "/deepseek\\v1/chat/completions"},
		{path: "/v1/x\x00"},
		{path: "v1/chat/completions"},
	}
	for _, tc := range tests {
		h := tc.h
		if h == nil {
			h = http.Header{}
		}
		r, ok := Classify(tc.path, h)
		if ok != tc.ok {
			t.Errorf("Classify(%q) ok = %v, want %v (route %+v)", tc.path, ok, tc.ok, r)
			continue
		}
		if !ok {
			if r != (Route{}) {
				t.Errorf("Classify(%q) rejected but returned %+v", tc.path, r)
			}
			continue
		}
		want := Route{Family: tc.family, Provider: tc.prov, Path: tc.rpath}
		if want.Path == "" {
			want.Path = tc.path
		}
		if r != want {
			t.Errorf("Classify(%q, %v) = %+v, want %+v", tc.path, tc.h, r, want)
		}
	}
}

// TestTakeClientKey proves the client key is found in every SDK's place,
// with a fixed precedence, that every credential header is gone afterwards,
// and that the rest of the query reaches the provider byte for byte.
func TestTakeClientKey(t *testing.T) {
	tests := []struct {
		name      string
		h         http.Header
		query     string
		wantKey   string
		wantQuery string
	}{
		{"bearer", http.Header{"Authorization": {"Bearer sk-A"}}, "", "sk-A", ""},
		{"bearer lowercase", http.Header{"Authorization": {"bearer sk-A"}}, "", "sk-A", ""},
		{"bearer upper", http.Header{"Authorization": {"BEARER  sk-A "}}, "", "sk-A", ""},
		{"basic ignored", http.Header{"Authorization": {"Basic dXNlcjpwYXNz"}}, "", "", ""},
		{"x-api-key", http.Header{"X-Api-Key": {"sk-B"}}, "", "sk-B", ""},
		{"x-goog-api-key", http.Header{"X-Goog-Api-Key": {"sk-C"}}, "", "sk-C", ""},
		{"api-key", http.Header{"Api-Key": {"sk-D"}}, "", "sk-D", ""},
		{"query only", http.Header{}, "key=sk-E", "sk-E", ""},
		{"query middle", http.Header{}, "alt=sse&key=K&x=1", "K", "alt=sse&x=1"},
		{"query escaped kept raw", http.Header{}, "key=a%2Bb&q=a%20b&z=%2F", "a+b", "q=a%20b&z=%2F"},
		{"query lookalike kept", http.Header{}, "monkey=1&alt=sse", "", "monkey=1&alt=sse"},
		{"no key", http.Header{"Content-Type": {"application/json"}}, "alt=sse", "", "alt=sse"},
		{"bearer beats x-api-key", http.Header{"Authorization": {"Bearer first"}, "X-Api-Key": {"second"}}, "", "first", ""},
		{"x-api-key beats goog", http.Header{"X-Api-Key": {"first"}, "X-Goog-Api-Key": {"second"}}, "", "first", ""},
		{"goog beats api-key", http.Header{"X-Goog-Api-Key": {"first"}, "Api-Key": {"second"}}, "", "first", ""},
		{"header beats query, query still stripped", http.Header{"Api-Key": {"first"}}, "key=second&alt=sse", "first", "alt=sse"},
		{"non-bearer auth falls through", http.Header{"Authorization": {"Basic x"}, "X-Api-Key": {"second"}}, "", "second", ""},
		{"all places", http.Header{
			"Authorization": {"Bearer a"}, "X-Api-Key": {"b"}, "X-Goog-Api-Key": {"c"}, "Api-Key": {"d"},
		}, "key=e&key=f", "a", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, q := TakeClientKey(tc.h, tc.query)
			if key != tc.wantKey || q != tc.wantQuery {
				t.Errorf("TakeClientKey = (%q, %q), want (%q, %q)", key, q, tc.wantKey, tc.wantQuery)
			}
			for _, name := range []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Api-Key"} {
				if v, ok := tc.h[name]; ok {
					t.Errorf("credential header %s still present: %q", name, v)
				}
			}
		})
	}
}

// TestForwardHeader proves that connection-level headers, headers named in
// Connection, Content-Length and Cookie never cross the tunnel, that
// everything else does, and that the caller's header is left untouched.
func TestForwardHeader(t *testing.T) {
	in := http.Header{
		"Connection":        {"keep-alive, X-Hop"},
		"X-Hop":             {"1"},
		"Keep-Alive":        {"timeout=5"},
		"Proxy-Connection":  {"keep-alive"},
		"Transfer-Encoding": {"chunked"},
		"Te":                {"trailers"},
		"Trailer":           {"X-T"},
		"Upgrade":           {"websocket"},
		"Content-Length":    {"42"},
		"Cookie":            {"session=secret"},
		"Content-Type":      {"application/json"},
		"Accept":            {"text/event-stream"},
		"Anthropic-Version": {"2023-06-01"},
		"X-Stainless-Lang":  {"go"},
		"User-Agent":        {"sdk/1", "extra"},
	}
	before := in.Clone()
	out := ForwardHeader(in)

	for _, name := range []string{"Connection", "X-Hop", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
		"Te", "Trailer", "Upgrade", "Content-Length", "Cookie"} {
		if v, ok := out[name]; ok {
			t.Errorf("%s forwarded: %q", name, v)
		}
	}
	for _, name := range []string{"Content-Type", "Accept", "Anthropic-Version", "X-Stainless-Lang", "User-Agent"} {
		if got, want := out.Values(name), before.Values(name); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if len(in) != len(before) {
		t.Fatalf("input mutated: %v, was %v", in, before)
	}
	for k, v := range before {
		if !slices.Equal(in[k], v) {
			t.Errorf("input header %s mutated: %q, was %q", k, in[k], v)
		}
	}
	out.Set("Accept", "changed")
	if in.Get("Accept") != "text/event-stream" {
		t.Error("output shares value slices with the input")
	}
}
