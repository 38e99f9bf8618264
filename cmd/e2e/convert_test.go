package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"

	"github.com/strait/strait/cmd/internal/relaycmd"
	"github.com/strait/strait/scripts/fakeprovider"
)

// convertStack routes deepseek-* to the OpenAI-compatible provider, so
// Anthropic and Responses clients can reach a Chat-Completions-only model;
// claude-* and gemini-* reach their providers by the default routes.
func convertStack(t *testing.T) *stack {
	return newStack(t, stackOptions{relayTLSEdit: func(f *relaycmd.File) {
		f.Routes = []relaycmd.RouteFile{{Model: "deepseek-*", Provider: "deepseek"}}
	}})
}

var weatherTool = openai.ChatCompletionFunctionTool(openai.FunctionDefinitionParam{Name: "get_weather",
	Parameters: openai.FunctionParameters{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}})

func scenario(name string) option.RequestOption {
	return option.WithHeader(fakeprovider.ScenarioHeader, name)
}

// lastRequest is the one request the fake saw since the last Reset.
func lastRequest(t *testing.T, s *stack) fakeprovider.Request {
	t.Helper()
	reqs := s.fake.Requests()
	if len(reqs) == 0 {
		t.Fatal("the fake provider saw no request")
	}
	return reqs[len(reqs)-1]
}

// TestConvertOpenAIClient: the OpenAI Go SDK calls a Claude and a Gemini
// model through edge and relay; text, streamed text with the usage chunk,
// and two parallel tool calls streamed in fragments, parsed by the SDK's
// own accumulator, with usage including cached and reasoning tokens.
func TestConvertOpenAIClient(t *testing.T) {
	s := convertStack(t)
	u := fakeprovider.ScenarioUsageFigures
	for _, tc := range []struct{ model, family, path, streamPath string }{
		{"claude-sonnet-4-5", "anthropic", "/v1/messages", "/v1/messages"},
		{"gemini-2.5-flash", "gemini", "/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/gemini-2.5-flash:streamGenerateContent"},
	} {
		t.Run(tc.family, func(t *testing.T) {
			ctx := testCtx(t, 20*time.Second)
			p := chatParams
			p.Model = tc.model
			resp, err := s.openai().Chat.Completions.New(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if c := resp.Choices[0]; c.Message.Content != fakeprovider.Text(8) || c.FinishReason != "stop" || resp.Usage.CompletionTokens != 8 || resp.Usage.PromptTokens == 0 {
				t.Fatalf("text: %q finish %q usage %+v", c.Message.Content, c.FinishReason, resp.Usage)
			}
			checkUpstream(t, lastRequest(t, s), tc.family, tc.path)

			p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
			acc, err := accumulate(ctx, s.openai(), p)
			if err != nil {
				t.Fatal(err)
			}
			if acc.Choices[0].Message.Content != fakeprovider.Text(8) || acc.Usage.CompletionTokens != 8 {
				t.Fatalf("stream: %q usage %+v", acc.Choices[0].Message.Content, acc.Usage)
			}
			checkUpstream(t, lastRequest(t, s), tc.family, tc.streamPath)

			p.Tools = []openai.ChatCompletionToolUnionParam{weatherTool}
			acc, err = accumulate(ctx, s.openai(scenario(fakeprovider.ScenarioTools)), p)
			if err != nil {
				t.Fatal(err)
			}
			calls := acc.Choices[0].Message.ToolCalls
			if len(calls) != 2 || calls[0].Function.Arguments != `{"city":"Paris"}` || calls[1].Function.Arguments != `{"city":"Tokyo"}` ||
				calls[0].ID == calls[1].ID || calls[0].Function.Name != "get_weather" {
				t.Fatalf("tool calls: %+v", calls)
			}
			if acc.Choices[0].FinishReason != "tool_calls" || acc.Choices[0].Message.Content != "Checking both cities." {
				t.Fatalf("finish %q content %q", acc.Choices[0].FinishReason, acc.Choices[0].Message.Content)
			}
			if acc.Usage.PromptTokens != int64(u.Input) || acc.Usage.PromptTokensDetails.CachedTokens != int64(u.CacheRead) ||
				acc.Usage.CompletionTokens != int64(u.Output) {
				t.Fatalf("usage %+v", acc.Usage)
			}
			if tc.family == "gemini" && acc.Usage.CompletionTokensDetails.ReasoningTokens != int64(u.Reasoning) {
				t.Fatalf("reasoning tokens %+v", acc.Usage.CompletionTokensDetails)
			}
			if body := string(lastRequest(t, s).Body); !strings.Contains(body, "get_weather") {
				t.Fatalf("tool definition not sent upstream: %s", body)
			}
		})
	}
}

// accumulate streams p and feeds every chunk to the SDK's accumulator,
// which also checks each finished tool call parses.
func accumulate(ctx context.Context, c *openai.Client, p openai.ChatCompletionNewParams) (*openai.ChatCompletionAccumulator, error) {
	stream := c.Chat.Completions.NewStreaming(ctx, p)
	defer stream.Close()
	acc := &openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	return acc, stream.Err()
}

// TestConvertAnthropicClient: the Anthropic Go SDK (as Claude Code uses it)
// calls an OpenAI-compatible model; streamed tool use is accumulated by the
// SDK, and usage comes back in Anthropic's terms (input without cache).
func TestConvertAnthropicClient(t *testing.T) {
	s := convertStack(t)
	ctx := testCtx(t, 20*time.Second)
	c := anthropic.NewClient(append(anthropicOpts(s, clientKey), anthropicopt.WithHeader(fakeprovider.ScenarioHeader, fakeprovider.ScenarioTools))...)
	p := messageParams
	p.Model = "deepseek-chat"
	p.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather",
		InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}}}}}
	stream := c.Messages.NewStreaming(ctx, p)
	defer stream.Close()
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 3 || msg.Content[0].Text != "Checking both cities." || msg.StopReason != anthropic.StopReasonToolUse {
		t.Fatalf("message: %+v", msg)
	}
	for i, city := range []string{"Paris", "Tokyo"} {
		b := msg.Content[i+1]
		var in struct{ City string }
		if b.Type != "tool_use" || b.Name != "get_weather" || json.Unmarshal(b.Input, &in) != nil || in.City != city {
			t.Fatalf("block %d: %s %s %s", i+1, b.Type, b.Name, b.Input)
		}
	}
	u := fakeprovider.ScenarioUsageFigures
	if msg.Usage.InputTokens != int64(u.Input-u.CacheRead) || msg.Usage.CacheReadInputTokens != int64(u.CacheRead) || msg.Usage.OutputTokens != int64(u.Output) {
		t.Fatalf("usage %+v", msg.Usage)
	}
	r := lastRequest(t, s)
	checkUpstream(t, r, "openai", "/v1/chat/completions")
	if !strings.Contains(string(r.Body), `"include_usage":true`) || r.Model != "deepseek-chat" {
		t.Fatalf("upstream body: %s", r.Body)
	}
}

// TestConvertResponsesClient: the OpenAI SDK's Responses API against a
// Chat-Completions-only provider, plain and streamed with tool calls.
func TestConvertResponsesClient(t *testing.T) {
	s := convertStack(t)
	ctx := testCtx(t, 20*time.Second)
	params := responses.ResponseNewParams{Model: "deepseek-chat", Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello")}}
	resp, err := s.openai().Responses.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if resp.OutputText() != fakeprovider.Text(8) || resp.Usage.OutputTokens != 8 {
		t.Fatalf("text %q usage %+v", resp.OutputText(), resp.Usage)
	}
	checkUpstream(t, lastRequest(t, s), "openai", "/v1/chat/completions")

	params.Tools = []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{Name: "get_weather",
		Parameters: map[string]any{"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}}}}}
	stream := s.openai(scenario(fakeprovider.ScenarioTools)).Responses.NewStreaming(ctx, params)
	defer stream.Close()
	var args strings.Builder
	var final responses.Response
	for stream.Next() {
		switch ev := stream.Current(); ev.Type {
		case "response.function_call_arguments.delta":
			args.WriteString(ev.Delta)
		case "response.completed":
			final = ev.Response
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if args.String() != `{"city":"Paris"}{"city":"Tokyo"}` {
		t.Fatalf("argument deltas %q", args.String())
	}
	var calls []string
	for _, item := range final.Output {
		if item.Type == "function_call" {
			calls = append(calls, item.Name+item.Arguments.OfString)
		}
	}
	if strings.Join(calls, " ") != `get_weather{"city":"Paris"} get_weather{"city":"Tokyo"}` || final.Usage.InputTokensDetails.CachedTokens != 800 {
		t.Fatalf("completed response: %v usage %+v", calls, final.Usage)
	}
}

// TestConvertThinkingTwoTurns: a tool conversation with a thinking model
// through the OpenAI SDK; the second turn carries the model's signature
// back, as the provider requires (Gemini: the thoughtSignature on the
// function call, carried in the tool call id; Claude: the signed thinking
// block, carried in thinking_blocks).
func TestConvertThinkingTwoTurns(t *testing.T) {
	s := convertStack(t)
	ctx := testCtx(t, 20*time.Second)
	first := chatParams
	first.Tools = []openai.ChatCompletionToolUnionParam{weatherTool}

	t.Run("gemini", func(t *testing.T) {
		p := first
		p.Model = "gemini-2.5-pro"
		acc, err := accumulate(ctx, s.openai(scenario(fakeprovider.ScenarioThinking)), p)
		if err != nil {
			t.Fatal(err)
		}
		msg := acc.Choices[0].Message
		if len(msg.ToolCalls) != 1 {
			t.Fatalf("turn 1: %+v", msg)
		}
		p.Messages = append(p.Messages, msg.ToParam(), openai.ToolMessage(`{"temp_c":18}`, msg.ToolCalls[0].ID))
		if _, err := s.openai().Chat.Completions.New(ctx, p); err != nil {
			t.Fatal(err)
		}
		var body struct {
			Contents []struct {
				Role  string
				Parts []struct {
					ThoughtSignature string
					FunctionCall     *struct{ Name string }
					FunctionResponse *struct {
						Name     string
						Response map[string]any
					}
				}
			}
		}
		if err := json.Unmarshal(lastRequest(t, s).Body, &body); err != nil || len(body.Contents) != 3 {
			t.Fatalf("turn 2 body: %v %s", err, lastRequest(t, s).Body)
		}
		call, res := body.Contents[1].Parts[0], body.Contents[2].Parts[0]
		if call.FunctionCall == nil || call.ThoughtSignature != fakeprovider.GeminiSignature {
			t.Fatalf("turn 2 function call lost its thoughtSignature: %s", lastRequest(t, s).Body)
		}
		if res.FunctionResponse == nil || res.FunctionResponse.Name != "get_weather" || res.FunctionResponse.Response["temp_c"] != 18.0 {
			t.Fatalf("turn 2 function response: %s", lastRequest(t, s).Body)
		}
	})

	t.Run("anthropic client, gemini", func(t *testing.T) {
		c := anthropic.NewClient(append(anthropicOpts(s, clientKey), anthropicopt.WithHeader(fakeprovider.ScenarioHeader, fakeprovider.ScenarioThinking))...)
		p := messageParams
		p.Model = "gemini-2.5-pro"
		p.Tools = []anthropic.ToolUnionParam{{OfTool: &anthropic.ToolParam{Name: "get_weather",
			InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}}}}}
		stream := c.Messages.NewStreaming(ctx, p)
		var msg anthropic.Message
		for stream.Next() {
			if err := msg.Accumulate(stream.Current()); err != nil {
				t.Fatal(err)
			}
		}
		stream.Close()
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		n := len(msg.Content)
		if n < 2 || msg.Content[0].Type != "thinking" || msg.Content[n-1].Type != "tool_use" || msg.StopReason != anthropic.StopReasonToolUse {
			t.Fatalf("turn 1: %+v", msg)
		}
		p.Messages = append(p.Messages, msg.ToParam(),
			anthropic.NewUserMessage(anthropic.NewToolResultBlock(msg.Content[n-1].ID, `{"temp_c":18}`, false)))
		if _, err := s.anthropic().Messages.New(ctx, p); err != nil {
			t.Fatal(err)
		}
		if body := string(lastRequest(t, s).Body); !strings.Contains(body, `"thoughtSignature":"`+fakeprovider.GeminiSignature+`"`) ||
			!strings.Contains(body, `"functionResponse":{"name":"get_weather"`) {
			t.Fatalf("turn 2 lost the signature or the call's name: %s", body)
		}
	})

	t.Run("claude", func(t *testing.T) {
		p := first
		p.Model = "claude-sonnet-4-5"
		resp, err := s.openai(scenario(fakeprovider.ScenarioThinking)).Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		msg := resp.Choices[0].Message
		blocks := msg.JSON.ExtraFields["thinking_blocks"].Raw()
		if len(msg.ToolCalls) != 1 || !strings.Contains(blocks, fakeprovider.ThinkingSignature) {
			t.Fatalf("turn 1: tool calls %d, thinking_blocks %s", len(msg.ToolCalls), blocks)
		}
		asst := msg.ToAssistantMessageParam()
		asst.SetExtraFields(map[string]any{"thinking_blocks": json.RawMessage(blocks)})
		p.Messages = append(p.Messages, openai.ChatCompletionMessageParamUnion{OfAssistant: &asst},
			openai.ToolMessage(`{"temp_c":18}`, msg.ToolCalls[0].ID))
		if _, err := s.openai().Chat.Completions.New(ctx, p); err != nil {
			t.Fatal(err)
		}
		var body struct {
			Messages []struct {
				Role    string
				Content []struct{ Type, Signature, Thinking, ID string }
			}
		}
		if err := json.Unmarshal(lastRequest(t, s).Body, &body); err != nil || len(body.Messages) != 3 {
			t.Fatalf("turn 2 body: %v %s", err, lastRequest(t, s).Body)
		}
		c := body.Messages[1].Content
		if len(c) != 2 || c[0].Type != "thinking" || c[0].Signature != fakeprovider.ThinkingSignature || c[0].Thinking == "" ||
			c[1].Type != "tool_use" || c[1].ID != msg.ToolCalls[0].ID {
			t.Fatalf("turn 2 assistant turn: %+v", c)
		}
	})
}

// TestConvertFailures: provider errors and failures on a converted call
// reach the client in its own format: an overloaded Anthropic (retried,
// then given up) as an OpenAI 503, a 400 as a 400, a stream cut by the
// provider as an error after the text so far, never a clean end; and a
// client that hangs up mid-stream cancels the provider call.
func TestConvertFailures(t *testing.T) {
	s := convertStack(t)
	fault := func(v string) option.RequestOption { return option.WithHeader("X-Fake-Fault", v) }
	p := chatParams
	p.Model = "claude-sonnet-4-5"

	t.Run("overloaded", func(t *testing.T) {
		_, err := s.openai(fault("529")).Chat.Completions.New(testCtx(t, 20*time.Second), p)
		wantOpenAIError(t, err, 503, "Overloaded")
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := s.openai(fault("400")).Chat.Completions.New(testCtx(t, 20*time.Second), p)
		wantOpenAIError(t, err, 400, "Invalid request")
	})
	t.Run("rate limited, anthropic client", func(t *testing.T) {
		c := anthropic.NewClient(append(anthropicOpts(s, clientKey), anthropicopt.WithHeader("X-Fake-Fault", "429"))...)
		mp := messageParams
		mp.Model = "deepseek-chat"
		_, err := c.Messages.New(testCtx(t, 20*time.Second), mp)
		var e *anthropic.Error
		if !errors.As(err, &e) || e.StatusCode != 429 || !strings.Contains(e.RawJSON(), "rate_limit_error") {
			t.Fatalf("err = %v, want an Anthropic 429 rate_limit_error", err)
		}
	})
	t.Run("cut mid-stream", func(t *testing.T) {
		stream := s.openai(option.WithHeader("X-Fake-Break-After", "3")).Chat.Completions.NewStreaming(testCtx(t, 20*time.Second), p)
		defer stream.Close()
		var text strings.Builder
		for stream.Next() {
			if ch := stream.Current(); len(ch.Choices) > 0 {
				text.WriteString(ch.Choices[0].Delta.Content)
			}
		}
		if stream.Err() == nil || !strings.HasPrefix(fakeprovider.Text(8), text.String()) || text.Len() == len(fakeprovider.Text(8)) {
			t.Fatalf("cut stream: err %v after %q", stream.Err(), text.String())
		}
	})
	t.Run("client hangs up", func(t *testing.T) {
		s.fake.Reset()
		ctx, cancel := context.WithCancel(testCtx(t, 20*time.Second))
		stream := s.openai(slow(100, 100*time.Millisecond)...).Chat.Completions.NewStreaming(ctx, p)
		if !stream.Next() {
			t.Fatalf("no first chunk: %v", stream.Err())
		}
		cancel()
		stream.Close()
		req := s.fake.Requests()[0]
		select {
		case <-req.Done:
		case <-time.After(2 * time.Second):
			t.Fatal("upstream handler still running 2s after the client hung up")
		}
		if _, ok := req.Canceled(); !ok {
			t.Fatal("the fake provider never saw the cancellation")
		}
	})
}
