package guard

import (
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestInspectGeminiSingleForms: the Gemini API takes a single object where
// its schema has a repeated field ("contents": {"parts": {"text": …}}, as
// in Google's own system-instruction sample), so the guard must read those
// texts as it reads the listed ones: nothing found may cross in clear.
func TestInspectGeminiSingleForms(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}})
	const phone = "13812345678"
	for _, body := range []string{
		`{"contents":{"parts":{"text":"call ` + phone + `"}}}`,
		`{"contents":{"role":"user","parts":[{"text":"call ` + phone + `"}]}}`,
		`{"contents":[{"role":"user","parts":{"text":"call ` + phone + `"}}]}`,
		`{"system_instruction":{"parts":{"text":"owner ` + phone + `"}},"contents":[{"parts":[{"text":"hi"}]}]}`,
		`{"systemInstruction":{"parts":{"text":"owner ` + phone + `"}},"contents":[{"parts":[{"text":"hi"}]}]}`,
		`{"contents":{"parts":{"functionResponse":{"name":"f","response":{"to":"` + phone + `"}}}}}`,
		`{"contents":{"parts":{"functionCall":{"name":"f","args":{"to":"` + phone + `"}}}}}`,
	} {
		o, err := p.Inspect(llmapi.Gemini, "/v1beta/models/gemini-2.0-flash:generateContent", []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if strings.Contains(string(o.Body), phone) || !strings.Contains(string(o.Body), "⟦PHONE_1⟧") {
			t.Errorf("sent %s", o.Body)
		}
		o.Release()
	}
}

// TestInspectDocumentsAndToolInputs: an Anthropic document's text (a content
// source, its title and context), a search result's title, and a Responses
// custom tool call's input are read like any other text.
func TestInspectDocumentsAndToolInputs(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}})
	const phone = "13812345678"
	for _, tc := range []struct {
		family llmapi.Family
		path   string
		body   string
	}{
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"content","content":"call ` + phone + `"}}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"content","content":[{"type":"text","text":"call ` + phone + `"}]}}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"document","title":"notes for ` + phone + `","source":{"type":"url","url":"https://example.com/a.pdf"}}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"document","context":"owner ` + phone + `","source":{"type":"url","url":"https://example.com/a.pdf"}}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"search_result","source":"https://example.com","title":"` + phone + `","content":[{"type":"text","text":"x"}]}]}]}`},
		{llmapi.OpenAI, "/v1/responses", `{"input":[{"type":"custom_tool_call","call_id":"c1","name":"sh","input":"sms ` + phone + `"}]}`},
	} {
		o, err := p.Inspect(tc.family, tc.path, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if strings.Contains(string(o.Body), phone) || !strings.Contains(string(o.Body), "⟦PHONE_1⟧") {
			t.Errorf("sent %s", o.Body)
		}
		o.Release()
	}
}
