package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"google.golang.org/genai"
)

// TestConvertCountTokens: the Gemini SDK counts tokens for a Claude model
// (Anthropic's count_tokens answers), the Anthropic SDK for a Gemini model
// (Gemini's countTokens answers), and a count for a Chat-Completions-only
// model is refused in Gemini's error shape.
func TestConvertCountTokens(t *testing.T) {
	s := convertStack(t)
	ctx := testCtx(t, 20*time.Second)
	n, err := s.gemini(t).Models.CountTokens(ctx, "claude-sonnet-4-5", genai.Text("How many tokens is this?"), nil)
	if err != nil || n.TotalTokens == 0 {
		t.Fatalf("gemini → claude: %v %+v", err, n)
	}
	checkUpstream(t, lastRequest(t, s), "anthropic", "/v1/messages/count_tokens")

	c, err := s.anthropic().Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: "gemini-2.5-flash",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("How many tokens is this?"))}})
	if err != nil || c.InputTokens == 0 {
		t.Fatalf("anthropic → gemini: %v %+v", err, c)
	}
	checkUpstream(t, lastRequest(t, s), "gemini", "/v1beta/models/gemini-2.5-flash:countTokens")

	_, err = s.gemini(t).Models.CountTokens(ctx, "deepseek-chat", genai.Text("hi"), nil)
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 400 || !strings.Contains(apiErr.Message, "no counting endpoint") {
		t.Fatalf("count for a chat-only model: %v", err)
	}
}
