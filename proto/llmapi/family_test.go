package llmapi

import (
	"net/http"
	"testing"
)

// TestGuess proves a rejected request still gets an error in the
// shape its SDK parses, judged by the credential style it used.
func TestGuess(t *testing.T) {
	tests := []struct {
		h     http.Header
		query string
		want  Family
	}{
		{http.Header{}, "", OpenAI},
		{http.Header{"Authorization": {"Bearer x"}}, "", OpenAI},
		{http.Header{"X-Goog-Api-Key": {"x"}}, "", Gemini},
		{http.Header{}, "alt=sse&key=x", Gemini},
		{http.Header{"Anthropic-Version": {"2023-06-01"}}, "", Anthropic},
		{http.Header{"X-Api-Key": {"x"}}, "", Anthropic},
		{http.Header{"X-Api-Key": {"x"}, "X-Goog-Api-Key": {"y"}}, "", Gemini},
	}
	for _, tc := range tests {
		if got := Guess(tc.h, tc.query); got != tc.want {
			t.Errorf("Guess(%v, %q) = %q, want %q", tc.h, tc.query, got, tc.want)
		}
	}
}

// TestDetect places paths in families; where OpenAI and another family
// share a path, the header or the path's shape decides.
func TestDetect(t *testing.T) {
	anth := http.Header{"Anthropic-Version": {"2023-06-01"}}
	cases := []struct {
		path string
		h    http.Header
		want Family
		ok   bool
	}{
		{"/v1/chat/completions", http.Header{}, OpenAI, true},
		{"/v1/messages", http.Header{}, Anthropic, true},
		{"/v1/models", anth, Anthropic, true},
		{"/v1/models", http.Header{}, OpenAI, true},
		{"/v1beta/models/gemini-2.0-flash:generateContent", http.Header{}, Gemini, true},
		{"/v1/models/gemini-2.0-flash:streamGenerateContent", http.Header{}, Gemini, true},
		{"/v1/models/ft:gpt-4o-mini:acme::x1", http.Header{}, OpenAI, true},
		{"/upload/v1beta/files", http.Header{}, Gemini, true},
		{"/v2/whatever", http.Header{}, "", false},
	}
	for _, tc := range cases {
		first, rest := SplitPath(tc.path)
		if got, ok := Detect(first, rest, tc.h); got != tc.want || ok != tc.ok {
			t.Errorf("Detect(%q) = %q, %v; want %q, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

// TestDialects: every family's generation dialect belongs to it, and the
// client dialect of a request follows its family and path.
func TestDialects(t *testing.T) {
	for _, f := range Families {
		if !f.Known() || f.Dialect().Family() != f || f.Name() == string(f) || f.ListKey() == "" || len(f.Ping()) == 0 {
			t.Errorf("family %q: incomplete spec", f)
		}
	}
	cases := []struct {
		f            Family
		method, path string
		want         Dialect
		ok           bool
	}{
		{OpenAI, "POST", "/v1/chat/completions", ChatCompletions, true},
		{OpenAI, "POST", "/v1/responses", Responses, true},
		{OpenAI, "POST", "/v1/embeddings", ChatCompletions, true}, // converted as embeddings, by the path
		{OpenAI, "POST", "/v1/responses/input_tokens", Responses, true},
		{OpenAI, "POST", "/v1/files", "", false},
		{OpenAI, "GET", "/v1/chat/completions", "", false},
		{Anthropic, "POST", "/v1/messages", Messages, true},
		{Anthropic, "POST", "/v1/messages/count_tokens", Messages, true},
		{Anthropic, "POST", "/v1/messages/batches", "", false},
		{Gemini, "POST", "/v1beta/models/g:streamGenerateContent", GenerateContent, true},
		{Gemini, "POST", "/v1beta/models/g:countTokens", GenerateContent, true},
		{Gemini, "POST", "/v1beta/models/g:batchEmbedContents", GenerateContent, true},
		{Gemini, "POST", "/v1beta/models/g:predict", "", false},
	}
	for _, tc := range cases {
		if got, ok := ClientDialect(tc.f, tc.method, tc.path); got != tc.want || ok != tc.ok {
			t.Errorf("ClientDialect(%s %s %s) = %q, %v", tc.f, tc.method, tc.path, got, ok)
		}
	}
}

// TestCredentials: the key is read from, and written to, the header each
// family's SDK uses.
func TestCredentials(t *testing.T) {
	for _, tc := range []struct {
		f          Family
		header, in string
	}{
		{OpenAI, "Authorization", "Bearer sk-1"},
		{Anthropic, "X-Api-Key", "sk-1"},
		{Gemini, "X-Goog-Api-Key", "sk-1"},
	} {
		h := http.Header{}
		SetKey(h, tc.f, "sk-1")
		if h.Get(tc.header) != tc.in || len(h) != 1 {
			t.Errorf("SetKey(%s) = %v", tc.f, h)
		}
		if got := ClientKey(h, tc.header); got != "sk-1" {
			t.Errorf("ClientKey(%s) = %q", tc.header, got)
		}
	}
	if got := ClientKey(http.Header{"Authorization": {"Basic abc"}}, "Authorization"); got != "" {
		t.Errorf("a Basic credential read as a key: %q", got)
	}
}
