package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"

	"github.com/strait/strait/scripts/fakeprovider"
)

var weatherSchema = map[string]any{"type": "object", "properties": map[string]any{
	"city": map[string]any{"type": "string"}, "temp_c": map[string]any{"type": "number"}}, "required": []string{"city", "temp_c"}}

// TestConvertStructuredOutput: the OpenAI SDK asks a Claude model for a
// JSON-schema answer (Chat response_format, whole and streamed; Responses
// text.format); Claude gets a forced tool call, and the client gets the
// call's input as the message content, finished as "stop".
func TestConvertStructuredOutput(t *testing.T) {
	s := convertStack(t)
	ctx := testCtx(t, 20*time.Second)
	structured := scenario(fakeprovider.ScenarioStructured)
	p := chatParams
	p.Model = "claude-sonnet-4-5"
	p.ResponseFormat = openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONSchema: &shared.ResponseFormatJSONSchemaParam{
		JSONSchema: shared.ResponseFormatJSONSchemaJSONSchemaParam{Name: "weather", Schema: weatherSchema}}}

	resp, err := s.openai(structured).Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.Choices[0]; c.Message.Content != fakeprovider.StructuredAnswer || c.FinishReason != "stop" || len(c.Message.ToolCalls) != 0 {
		t.Fatalf("whole: %q finish %q calls %d", c.Message.Content, c.FinishReason, len(c.Message.ToolCalls))
	}
	var up struct {
		Tools []struct {
			Name        string
			InputSchema map[string]any `json:"input_schema"`
		}
		ToolChoice struct{ Type, Name string } `json:"tool_choice"`
	}
	if err := json.Unmarshal(lastRequest(t, s).Body, &up); err != nil || len(up.Tools) != 1 || up.Tools[0].Name != "structured_output" ||
		up.Tools[0].InputSchema["required"] == nil || up.ToolChoice.Type != "tool" || up.ToolChoice.Name != "structured_output" {
		t.Fatalf("upstream: %v %s", err, lastRequest(t, s).Body)
	}

	acc, err := accumulate(ctx, s.openai(structured), p)
	if err != nil {
		t.Fatal(err)
	}
	if c := acc.Choices[0]; c.Message.Content != fakeprovider.StructuredAnswer || c.FinishReason != "stop" {
		t.Fatalf("stream: %q finish %q", c.Message.Content, c.FinishReason)
	}

	rp := responses.ResponseNewParams{Model: "claude-sonnet-4-5", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Weather?")},
		Text: responses.ResponseTextConfigParam{Format: responses.ResponseFormatTextConfigParamOfJSONSchema("weather", weatherSchema)}}
	r, err := s.openai(structured).Responses.New(ctx, rp)
	if err != nil {
		t.Fatal(err)
	}
	if r.OutputText() != fakeprovider.StructuredAnswer || r.Status != "completed" {
		t.Fatalf("responses: %q %s", r.OutputText(), r.Status)
	}
	if body := string(lastRequest(t, s).Body); !strings.Contains(body, `"name":"structured_output"`) {
		t.Fatalf("responses upstream: %s", body)
	}
}
