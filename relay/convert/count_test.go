package convert

import (
	"net/http"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestCountTokensAcross: token counts go to the target's counting endpoint
// with the request converted and the generation-only fields left out, and
// come back in the client's shape; Chat Completions, which cannot count, is
// refused.
func TestCountTokensAcross(t *testing.T) {
	const gemini = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	const anthropic = `{"model":"m","system":"be brief","messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}`
	for _, tc := range []struct {
		name             string
		client, provider llmapi.Dialect
		path, body       string
		wantPath         string
		wantBody         string
		answer, want     string
	}{
		{"gemini to anthropic", llmapi.GenerateContent, llmapi.Messages, "/v1beta/models/claude-x:countTokens", gemini, "/v1/messages/count_tokens",
			`{"messages":[{"content":[{"text":"hi","type":"text"}],"role":"user"}],"model":"claude-x"}`, `{"input_tokens":7}`, `{"totalTokens":7}`},
		{"gemini generateContentRequest", llmapi.GenerateContent, llmapi.Messages, "/v1beta/models/claude-x:countTokens",
			`{"generateContentRequest":{"model":"models/claude-x","systemInstruction":{"parts":[{"text":"s"}]},"contents":[{"role":"user","parts":[{"text":"hi"}]}]}}`,
			"/v1/messages/count_tokens", `{"messages":[{"content":[{"text":"hi","type":"text"}],"role":"user"}],"model":"claude-x","system":[{"text":"s","type":"text"}]}`,
			`{"input_tokens":9}`, `{"totalTokens":9}`},
		{"anthropic to gemini", llmapi.Messages, llmapi.GenerateContent, "/v1/messages/count_tokens", anthropic, "/v1beta/models/gemini-x:countTokens",
			`{"generateContentRequest":{"contents":[{"parts":[{"text":"hi"}],"role":"user"}],"model":"models/gemini-x","systemInstruction":{"parts":[{"text":"be brief"}]},"tools":[{"functionDeclarations":[{"name":"f","parametersJsonSchema":{"type":"object"}}]}]}}`,
			`{"totalTokens":12}`, `{"input_tokens":12}`},
		{"anthropic to openai", llmapi.Messages, llmapi.Responses, "/v1/messages/count_tokens", anthropic, "/v1/responses/input_tokens",
			`{"input":[{"content":[{"text":"hi","type":"input_text"}],"role":"user","type":"message"}],"instructions":"be brief","model":"gpt-x","tools":[{"name":"f","parameters":{"type":"object"},"type":"function"}]}`,
			`{"object":"response.input_tokens","input_tokens":5}`, `{"input_tokens":5}`},
		{"responses to gemini", llmapi.Responses, llmapi.GenerateContent, "/v1/responses/input_tokens", `{"model":"m","input":"hi"}`, "/v1beta/models/gemini-x:countTokens",
			`{"generateContentRequest":{"contents":[{"parts":[{"text":"hi"}],"role":"user"}],"model":"models/gemini-x"}}`,
			`{"totalTokens":3}`, `{"input_tokens":3,"object":"response.input_tokens"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			model := map[llmapi.Dialect]string{llmapi.Messages: "claude-x", llmapi.GenerateContent: "gemini-x", llmapi.Responses: "gpt-x"}[tc.provider]
			p, err := NewPlanPath(tc.client, tc.provider, tc.path, "", []byte(tc.body), model)
			if err != nil {
				t.Fatal(err)
			}
			if p.Path != tc.wantPath || string(p.Body) != tc.wantBody || p.Stream {
				t.Fatalf("request %s\n%s\nwant %s", p.Path, p.Body, tc.wantBody)
			}
			var rec recorder
			if err := p.Respond(200, http.Header{}, strings.NewReader(tc.answer), &rec); err != nil || rec.body.String() != tc.want {
				t.Fatalf("answer %v %s", err, rec.body.String())
			}
		})
	}
	_, err := NewPlanPath(llmapi.GenerateContent, llmapi.ChatCompletions, "/v1beta/models/deepseek-chat:countTokens", "", []byte(gemini), "deepseek-chat")
	if err == nil || !strings.Contains(err.Error(), "no counting endpoint") {
		t.Fatalf("chat count: %v", err)
	}
}
