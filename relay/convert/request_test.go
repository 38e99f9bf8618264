package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRequestGolden converts each recorded-style client request into every
// provider dialect and compares path, query and (indented) body.
func TestRequestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/request/*.json")
	n := 0
	for _, in := range files {
		parts := strings.Split(filepath.Base(in), ".")
		if len(parts) != 3 {
			continue // a golden output
		}
		client := Dialect(parts[1])
		for _, provider := range []Dialect{Chat, Anthropic, Gemini, Responses} {
			if !Supported(client, provider) {
				continue
			}
			n++
			t.Run(parts[0]+"/"+string(provider), func(t *testing.T) {
				src, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				p, err := fixturePlan(client, provider, src)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				out.WriteString("POST " + p.Path)
				if p.RawQuery != "" {
					out.WriteString("?" + p.RawQuery)
				}
				out.WriteString("\n")
				if err := json.Indent(&out, p.Body, "", "  "); err != nil {
					t.Fatal(err)
				}
				out.WriteString("\n")
				golden(t, strings.TrimSuffix(in, ".json")+".to."+string(provider)+".golden", out.Bytes())
			})
		}
	}
	if n < 12 {
		t.Fatalf("only %d conversions ran", n)
	}
}

// TestRequestErrors proves bad client input becomes a 400-class *Error with
// a clear message, never a panic or a silently dropped field.
func TestRequestErrors(t *testing.T) {
	cases := []struct {
		name             string
		client, provider Dialect
		body, want       string
	}{
		{"not json", Chat, Anthropic, `{`, "not valid JSON"},
		{"n>1", Chat, Gemini, `{"model":"m","n":2,"messages":[]}`, "n > 1"},
		{"bad arguments", Chat, Anthropic, `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "JSON object"},
		{"unknown role", Chat, Anthropic, `{"model":"m","messages":[{"role":"wizard","content":"x"}]}`, "role"},
		{"audio part", Chat, Gemini, `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "input_audio"},
		{"bad image url", Chat, Anthropic, `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}`, "image URL"},
		{"no model", Anthropic, Chat, `{"max_tokens":1,"messages":[]}`, "model is required"},
		{"server tool", Anthropic, Chat, `{"model":"m","max_tokens":1,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[]}`, "server tool"},
		{"document block", Anthropic, Gemini, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document"}]}]}`, "document"},
		{"previous_response_id", Responses, Chat, `{"model":"m","input":"hi","previous_response_id":"resp_1"}`, "previous_response_id"},
		{"builtin tool", Responses, Anthropic, `{"model":"m","input":"hi","tools":[{"type":"web_search"}]}`, "web_search"},
		{"gemini candidates", Gemini, Chat, `{"contents":[],"generationConfig":{"candidateCount":2}}`, "candidateCount"},
		{"gemini search tool", Gemini, Anthropic, `{"contents":[],"tools":[{"googleSearch":{}}]}`, "functionDeclarations"},
		{"gemini audio", Gemini, Anthropic, `{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"audio/wav","data":"AA=="}}]}]}`, "audio/wav"},
		{"gemini files api", Gemini, Anthropic, `{"contents":[{"role":"user","parts":[{"fileData":{"mimeType":"image/png","fileUri":"files/abc"}}]}]}`, "Files API"},
		{"gemini orphan response", Gemini, Anthropic, `{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, "answers no earlier"},
		{"gemini not json", Gemini, Chat, `{`, "not valid JSON"},
		{"same dialect", Chat, Chat, `{}`, "not supported"},
		{"pdf by url to chat", Anthropic, Chat, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}`, "by URL"},
		{"provider file id", Chat, Anthropic, `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}`, "file-abc"},
		{"docx", Chat, Gemini, `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/msword;base64,AA=="}}]}]}`, "application/msword"},
		{"anthropic files api", Anthropic, Gemini, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"f"}}]}]}`, "inline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			model := ""
			if tc.client == Gemini {
				model = "m" // from the path
			}
			_, err := NewPlan(tc.client, tc.provider, []byte(tc.body), model)
			var e *Error
			if !errors.As(err, &e) || e.Status(tc.client) != 400 || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("got %v, want a 400 mentioning %q", err, tc.want)
			}
		})
	}
}

// fixturePlan converts a client fixture; a Gemini client's model and
// streaming come from its path, as they would from the URL.
func fixturePlan(client, provider Dialect, src []byte) (*Plan, error) {
	if client == Gemini {
		return NewPlanPath(client, provider, "/v1beta/models/claude-sonnet-4-5:streamGenerateContent", "alt=sse", src, "claude-sonnet-4-5")
	}
	return NewPlan(client, provider, src, "")
}
