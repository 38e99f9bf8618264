package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
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
		client := llmapi.Dialect(parts[1])
		for _, provider := range []llmapi.Dialect{llmapi.ChatCompletions, llmapi.Messages, llmapi.GenerateContent} {
			if !Supported(client, provider) {
				continue
			}
			n++
			t.Run(parts[0]+"/"+string(provider), func(t *testing.T) {
				src, err := os.ReadFile(in)
				if err != nil {
					t.Fatal(err)
				}
				p, err := NewPlan(client, provider, src, "")
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
	if n < 7 {
		t.Fatalf("only %d conversions ran", n)
	}
}

// TestRequestErrors proves bad client input becomes a 400-class *Error with
// a clear message, never a panic or a silently dropped field.
func TestRequestErrors(t *testing.T) {
	cases := []struct {
		name             string
		client, provider llmapi.Dialect
		body, want       string
	}{
		{"not json", llmapi.ChatCompletions, llmapi.Messages, `{`, "not valid JSON"},
		{"n>1", llmapi.ChatCompletions, llmapi.GenerateContent, `{"model":"m","n":2,"messages":[]}`, "n > 1"},
		{"bad arguments", llmapi.ChatCompletions, llmapi.Messages, `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "JSON object"},
		{"unknown role", llmapi.ChatCompletions, llmapi.Messages, `{"model":"m","messages":[{"role":"wizard","content":"x"}]}`, "role"},
		{"audio part", llmapi.ChatCompletions, llmapi.GenerateContent, `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "input_audio"},
		{"bad image url", llmapi.ChatCompletions, llmapi.Messages, `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}`, "image URL"},
		{"no model", llmapi.Messages, llmapi.ChatCompletions, `{"max_tokens":1,"messages":[]}`, "model is required"},
		{"server tool", llmapi.Messages, llmapi.ChatCompletions, `{"model":"m","max_tokens":1,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[]}`, "server tool"},
		{"document block", llmapi.Messages, llmapi.GenerateContent, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document"}]}]}`, "document"},
		{"previous_response_id", llmapi.Responses, llmapi.ChatCompletions, `{"model":"m","input":"hi","previous_response_id":"resp_1"}`, "previous_response_id"},
		{"builtin tool", llmapi.Responses, llmapi.Messages, `{"model":"m","input":"hi","tools":[{"type":"web_search"}]}`, "web_search"},
		{"gemini client", llmapi.GenerateContent, llmapi.ChatCompletions, `{}`, "not supported"},
		{"same dialect", llmapi.ChatCompletions, llmapi.ChatCompletions, `{}`, "not supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPlan(tc.client, tc.provider, []byte(tc.body), "")
			var e *Error
			if !errors.As(err, &e) || e.Status(tc.client) != 400 || !strings.Contains(e.Message, tc.want) {
				t.Fatalf("got %v, want a 400 mentioning %q", err, tc.want)
			}
		})
	}
}
