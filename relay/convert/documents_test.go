package convert

import (
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestDocumentByURL: a PDF given by URL reaches the providers that fetch
// URLs (Gemini fileData, Responses file_url, Anthropic url source).
func TestDocumentByURL(t *testing.T) {
	const doc = `{"type":"document","source":{"type":"url","url":"https://example.com/a.pdf"}}`
	for provider, want := range map[llmapi.Dialect]string{
		llmapi.GenerateContent: `{"fileData":{"fileUri":"https://example.com/a.pdf","mimeType":"application/pdf"}}`,
		llmapi.Responses:       `{"file_url":"https://example.com/a.pdf","type":"input_file"}`,
	} {
		p, err := NewPlan(llmapi.Messages, provider, []byte(`{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[`+doc+`]}]}`), "")
		if err != nil || !strings.Contains(string(p.Body), want) {
			t.Errorf("%s: %v %s", provider, err, p.Body)
		}
	}
	p, err := NewPlan(llmapi.Responses, llmapi.Messages, []byte(`{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_url":"https://example.com/a.pdf"}]}]}`), "")
	if err != nil || !strings.Contains(string(p.Body), `{"source":{"type":"url","url":"https://example.com/a.pdf"},"type":"document"}`) {
		t.Errorf("responses → anthropic: %v %s", err, p.Body)
	}
}
