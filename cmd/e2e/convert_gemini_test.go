package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/strait/strait/scripts/fakeprovider"
)

// geminiWith is the stack's genai client with extra request headers (the
// fake provider's scenario and fault switches).
func (s *stack) geminiWith(t *testing.T, header ...string) *genai.Client {
	t.Helper()
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{APIKey: clientKey, Backend: genai.BackendGeminiAPI,
		HTTPClient: s.client, HTTPOptions: genai.HTTPOptions{BaseURL: s.edgeURL, Headers: h}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var weatherDecl = &genai.Tool{FunctionDeclarations: []*genai.FunctionDeclaration{{Name: "get_weather", Description: "Weather for a city",
	Parameters: &genai.Schema{Type: genai.TypeObject, Properties: map[string]*genai.Schema{"city": {Type: genai.TypeString}}}}}}

// TestConvertGeminiClient: the Gemini Go SDK (google.golang.org/genai)
// calls a Claude and a GPT model through edge and relay: whole and streamed
// text with usage metadata, parallel function calls, and Gemini's error
// shape for a provider's 429.
func TestConvertGeminiClient(t *testing.T) {
	s := convertStack(t)
	u := fakeprovider.ScenarioUsageFigures
	for _, tc := range []struct{ model, family, path string }{
		{"claude-sonnet-4-5", "anthropic", "/v1/messages"},
		{"gpt-4o-mini", "openai", "/v1/chat/completions"},
	} {
		t.Run(tc.family, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			resp, err := s.gemini(t).Models.GenerateContent(ctx, tc.model, genai.Text("Say hello"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Text() != fakeprovider.Text(8) || resp.Candidates[0].FinishReason != genai.FinishReasonStop ||
				resp.UsageMetadata.CandidatesTokenCount != 8 || resp.UsageMetadata.PromptTokenCount == 0 {
				t.Fatalf("whole: %q %+v", resp.Text(), resp.UsageMetadata)
			}
			checkUpstream(t, lastRequest(t, s), tc.family, tc.path)

			var text strings.Builder
			var last *genai.GenerateContentResponse
			for chunk, err := range s.gemini(t).Models.GenerateContentStream(ctx, tc.model, genai.Text("Say hello"), nil) {
				if err != nil {
					t.Fatal(err)
				}
				text.WriteString(chunk.Text())
				last = chunk
			}
			if text.String() != fakeprovider.Text(8) || last.UsageMetadata == nil || last.UsageMetadata.CandidatesTokenCount != 8 {
				t.Fatalf("stream: %q last %+v", text.String(), last)
			}
			checkUpstream(t, lastRequest(t, s), tc.family, tc.path)

			cfg := &genai.GenerateContentConfig{Tools: []*genai.Tool{weatherDecl}}
			resp, err = s.geminiWith(t, fakeprovider.ScenarioHeader, fakeprovider.ScenarioTools).Models.GenerateContent(ctx, tc.model,
				genai.Text("Weather in Paris and Tokyo?"), cfg)
			if err != nil {
				t.Fatal(err)
			}
			calls := resp.FunctionCalls()
			if len(calls) != 2 || calls[0].Args["city"] != "Paris" || calls[1].Args["city"] != "Tokyo" || calls[0].ID == calls[1].ID ||
				resp.Text() != "Checking both cities." {
				t.Fatalf("calls %+v text %q", calls, resp.Text())
			}
			if m := resp.UsageMetadata; m.PromptTokenCount != int32(u.Input) || m.CachedContentTokenCount != int32(u.CacheRead) {
				t.Fatalf("usage %+v", m)
			}
			if body := string(lastRequest(t, s).Body); !strings.Contains(body, "get_weather") || !strings.Contains(body, `"type":"object"`) {
				t.Fatalf("tool not converted upstream: %s", body)
			}

			_, err = s.geminiWith(t, "X-Fake-Fault", "429").Models.GenerateContent(ctx, tc.model, genai.Text("hi"), nil)
			var apiErr genai.APIError
			if !errors.As(err, &apiErr) || apiErr.Code != 429 || apiErr.Status != "RESOURCE_EXHAUSTED" {
				t.Fatalf("err = %v, want a Gemini 429 RESOURCE_EXHAUSTED", err)
			}
		})
	}
}

// TestConvertGeminiToolLoop: a Gemini SDK tool loop against a Claude
// thinking model, streamed: the SDK gets the thought and the function
// call, sends them back with its function response, and Claude receives
// its signed thinking block and a tool_result for its own tool_use id.
func TestConvertGeminiToolLoop(t *testing.T) {
	s := convertStack(t)
	ctx := testCtx(t, 20*time.Second)
	const model = "claude-sonnet-4-5"
	cfg := &genai.GenerateContentConfig{Tools: []*genai.Tool{weatherDecl},
		ThinkingConfig: &genai.ThinkingConfig{IncludeThoughts: true, ThinkingBudget: genai.Ptr[int32](2048)}}
	history := []*genai.Content{genai.NewContentFromText("Weather in Paris?", genai.RoleUser)}
	turn := &genai.Content{Role: genai.RoleModel}
	var call *genai.FunctionCall
	for chunk, err := range s.geminiWith(t, fakeprovider.ScenarioHeader, fakeprovider.ScenarioThinking).Models.GenerateContentStream(ctx, model, history, cfg) {
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range chunk.Candidates[0].Content.Parts {
			turn.Parts = append(turn.Parts, p)
			if p.FunctionCall != nil {
				call = p.FunctionCall
			}
		}
	}
	if call == nil || call.Name != "get_weather" || call.ID == "" || turn.Parts[0].Thought != true {
		t.Fatalf("turn 1: %+v", turn.Parts)
	}
	if up := string(lastRequest(t, s).Body); !strings.Contains(up, `"thinking":{"budget_tokens":2048`) {
		t.Fatalf("thinking not asked for upstream: %s", up)
	}
	// The loop answers by name, as the genai examples do, without the id.
	history = append(history, turn, genai.NewContentFromFunctionResponse("get_weather", map[string]any{"temp_c": 18}, genai.RoleUser))
	resp, err := s.gemini(t).Models.GenerateContent(ctx, model, history, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != fakeprovider.Text(8) {
		t.Fatalf("turn 2: %q", resp.Text())
	}
	var body struct {
		Messages []struct {
			Role    string
			Content []struct {
				Type, Signature, Thinking, ID string
				ToolUseID                     string `json:"tool_use_id"`
			}
		}
	}
	raw := lastRequest(t, s).Body
	if err := json.Unmarshal(raw, &body); err != nil || len(body.Messages) != 3 {
		t.Fatalf("turn 2 body: %v %s", err, raw)
	}
	asst, res := body.Messages[1].Content, body.Messages[2].Content
	if asst[0].Type != "thinking" || asst[0].Signature != fakeprovider.ThinkingSignature || asst[0].Thinking == "" {
		t.Fatalf("turn 2 lost the signed thinking block: %s", raw)
	}
	if last := asst[len(asst)-1]; last.Type != "tool_use" || last.ID != call.ID || res[0].Type != "tool_result" || res[0].ToolUseID != call.ID {
		t.Fatalf("turn 2 call/result ids: %s", raw)
	}
}

// TestConvertGeminiArrayStream: a Gemini client streaming without alt=sse
// (the REST default, used by curl and some SDKs) gets one JSON array.
func TestConvertGeminiArrayStream(t *testing.T) {
	s := convertStack(t)
	ctx := testCtx(t, 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, "POST", s.edgeURL+"/v1beta/models/claude-sonnet-4-5:streamGenerateContent",
		strings.NewReader(`{"contents":[{"role":"user","parts":[{"text":"Say hello"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("x-goog-api-key", clientKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s %v: %s", resp.StatusCode, resp.Header.Get("Content-Type"), err, raw)
	}
	var chunks []genai.GenerateContentResponse
	if err := json.Unmarshal(raw, &chunks); err != nil || len(chunks) < 2 {
		t.Fatalf("not a JSON array of chunks: %v %s", err, raw)
	}
	var text strings.Builder
	for _, c := range chunks {
		text.WriteString(c.Text())
	}
	if text.String() != fakeprovider.Text(8) || chunks[len(chunks)-1].Candidates[0].FinishReason != genai.FinishReasonStop {
		t.Fatalf("array stream: %q", text.String())
	}
}
