package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"google.golang.org/genai"
)

// TestConvertDocuments: a PDF sent by the OpenAI SDK (a file part) and by
// the Gemini SDK (inline application/pdf) reaches Claude as a document
// block.
func TestConvertDocuments(t *testing.T) {
	s := convertStack(t)
	ctx := testCtx(t, 20*time.Second)
	const pdf = "JVBERi0xLjQK"
	want := `{"source":{"data":"` + pdf + `","media_type":"application/pdf","type":"base64"}`

	p := chatParams
	p.Model = "claude-sonnet-4-5"
	p.Messages = []openai.ChatCompletionMessageParamUnion{openai.UserMessage([]openai.ChatCompletionContentPartUnionParam{
		openai.TextContentPart("Summarise this."),
		openai.FileContentPart(openai.ChatCompletionContentPartFileFileParam{FileData: openai.String("data:application/pdf;base64," + pdf),
			Filename: openai.String("report.pdf")}),
	})}
	if _, err := s.openai().Chat.Completions.New(ctx, p); err != nil {
		t.Fatal(err)
	}
	if body := string(lastRequest(t, s).Body); !strings.Contains(body, want) || !strings.Contains(body, `"title":"report.pdf","type":"document"`) {
		t.Fatalf("openai → claude: %s", body)
	}

	parts := []*genai.Part{genai.NewPartFromText("Summarise this."), genai.NewPartFromBytes([]byte("%PDF-1.4\n"), "application/pdf")}
	if _, err := s.gemini(t).Models.GenerateContent(ctx, "claude-sonnet-4-5", []*genai.Content{genai.NewContentFromParts(parts, genai.RoleUser)}, nil); err != nil {
		t.Fatal(err)
	}
	if body := string(lastRequest(t, s).Body); !strings.Contains(body, want) {
		t.Fatalf("gemini → claude: %s", body)
	}
}
