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
		for _, provider := range []llmapi.Dialect{llmapi.ChatCompletions, llmapi.Messages, llmapi.GenerateContent, llmapi.Responses} {
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
		client, provider llmapi.Dialect
		body, want       string
	}{
		{"not json", llmapi.ChatCompletions, llmapi.Messages, `{`, "not valid JSON"},
		{"n>1", llmapi.ChatCompletions, llmapi.GenerateContent, `{"model":"m","n":2,"messages":[]}`, "n > 1"},
		{"bad arguments", llmapi.ChatCompletions, llmapi.Messages, `{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "JSON object"},
		{"unknown role", llmapi.ChatCompletions, llmapi.Messages, `{"model":"m","messages":[{"role":"wizard","content":"x"}]}`, "role"},
		{"audio output", llmapi.ChatCompletions, llmapi.Messages, `{"model":"m","modalities":["text","audio"],"audio":{"voice":"alloy","format":"wav"},"messages":[{"role":"user","content":"x"}]}`, "audio output"},
		{"audio voice only", llmapi.ChatCompletions, llmapi.Responses, `{"model":"m","audio":{"voice":"alloy","format":"mp3"},"messages":[{"role":"user","content":"x"}]}`, "audio output"},
		{"gemini audio output", llmapi.GenerateContent, llmapi.ChatCompletions, `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"generationConfig":{"responseModalities":["AUDIO"]}}`, "AUDIO"},
		{"gemini image output", llmapi.GenerateContent, llmapi.Messages, `{"contents":[{"role":"user","parts":[{"text":"x"}]}],"generation_config":{"response_modalities":["TEXT","IMAGE"]}}`, "IMAGE"},
		{"audio part", llmapi.ChatCompletions, llmapi.GenerateContent, `{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "input_audio"},
		{"bad image url", llmapi.ChatCompletions, llmapi.Messages, `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}`, "image URL"},
		{"no model", llmapi.Messages, llmapi.ChatCompletions, `{"max_tokens":1,"messages":[]}`, "model is required"},
		{"server tool", llmapi.Messages, llmapi.ChatCompletions, `{"model":"m","max_tokens":1,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[]}`, "server tool"},
		{"document block", llmapi.Messages, llmapi.GenerateContent, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document"}]}]}`, "document"},
		{"previous_response_id", llmapi.Responses, llmapi.ChatCompletions, `{"model":"m","input":"hi","previous_response_id":"resp_1"}`, "previous_response_id"},
		{"builtin tool", llmapi.Responses, llmapi.Messages, `{"model":"m","input":"hi","tools":[{"type":"web_search"}]}`, "web_search"},
		{"gemini candidates", llmapi.GenerateContent, llmapi.ChatCompletions, `{"contents":[],"generationConfig":{"candidateCount":2}}`, "candidateCount"},
		{"gemini search tool", llmapi.GenerateContent, llmapi.Messages, `{"contents":[],"tools":[{"googleSearch":{}}]}`, "functionDeclarations"},
		{"gemini audio", llmapi.GenerateContent, llmapi.Messages, `{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"audio/wav","data":"AA=="}}]}]}`, "audio/wav"},
		{"gemini files api", llmapi.GenerateContent, llmapi.Messages, `{"contents":[{"role":"user","parts":[{"fileData":{"mimeType":"image/png","fileUri":"files/abc"}}]}]}`, "Files API"},
		{"gemini orphan response", llmapi.GenerateContent, llmapi.Messages, `{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}`, "answers no earlier"},
		{"gemini not json", llmapi.GenerateContent, llmapi.ChatCompletions, `{`, "not valid JSON"},
		{"same dialect", llmapi.ChatCompletions, llmapi.ChatCompletions, `{}`, "not supported"},
		{"pdf by url to chat", llmapi.Messages, llmapi.ChatCompletions, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}`, "by URL"},
		{"provider file id", llmapi.ChatCompletions, llmapi.Messages, `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}`, "file-abc"},
		{"docx", llmapi.ChatCompletions, llmapi.GenerateContent, `{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/msword;base64,AA=="}}]}]}`, "application/msword"},
		{"anthropic image file", llmapi.Messages, llmapi.ChatCompletions, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"file_01"}}]}]}`, "inline"},
		{"anthropic image source", llmapi.Messages, llmapi.GenerateContent, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"cloud","uri":"x"}}]}]}`, "cloud"},
		{"anthropic files api", llmapi.Messages, llmapi.GenerateContent, `{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"f"}}]}]}`, "inline"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			model := ""
			if tc.client == llmapi.GenerateContent {
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
func fixturePlan(client, provider llmapi.Dialect, src []byte) (*Plan, error) {
	if client == llmapi.GenerateContent {
		return NewPlanPath(client, provider, "/v1beta/models/claude-sonnet-4-5:streamGenerateContent", "alt=sse", src, "claude-sonnet-4-5")
	}
	return NewPlan(client, provider, src, "")
}

// TestAnthropicNoEmptyText proves no empty text block reaches Anthropic,
// which refuses one with a 400 ("text content blocks must be non-empty"),
// whether the client sent an empty tool output or an empty text part; an
// empty tool result goes without content, which the API allows.
func TestAnthropicNoEmptyText(t *testing.T) {
	cases := []struct {
		name   string
		client llmapi.Dialect
		body   string
	}{
		{"responses empty tool output", llmapi.Responses, `{"model":"m","input":[{"role":"user","content":"run it"},` +
			`{"type":"function_call","call_id":"c1","name":"sh","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":""}]}`},
		{"responses empty text part", llmapi.Responses, `{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":""},{"type":"input_text","text":"hi"}]}]}`},
		{"chat empty tool output", llmapi.ChatCompletions, `{"model":"m","messages":[{"role":"user","content":"run it"},` +
			`{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"sh","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":""}]}`},
		{"chat empty text part", llmapi.ChatCompletions, `{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":""}]},` +
			`{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"hi"}]}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(tc.client, llmapi.Messages, []byte(tc.body), "")
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				System   []map[string]any `json:"system"`
				Messages []struct {
					Content []map[string]any `json:"content"`
				} `json:"messages"`
			}
			if err := json.Unmarshal(p.Body, &body); err != nil {
				t.Fatal(err)
			}
			blocks := body.System
			for _, m := range body.Messages {
				blocks = append(blocks, m.Content...)
			}
			for len(blocks) > 0 {
				b := blocks[0]
				blocks = blocks[1:]
				if b["type"] == "text" && b["text"] == "" {
					t.Fatalf("empty text block sent to Anthropic: %s", p.Body)
				}
				if c, ok := b["content"]; ok {
					inner, _ := c.([]any)
					if len(inner) == 0 {
						t.Fatalf("tool_result with empty content list: %s", p.Body)
					}
					for _, x := range inner {
						blocks = append(blocks, x.(map[string]any))
					}
				}
			}
		})
	}
}

// TestToolResultMedia proves an image a tool returned (Claude Code's Read of
// a screenshot) reaches a Chat, Responses or Gemini provider instead of
// vanishing: Chat tool messages hold text only, so the image follows in a
// user message; a Responses function_call_output takes it as an input
// part; Gemini gets it as a part after the functionResponse, in the same
// user turn.
func TestToolResultMedia(t *testing.T) {
	const body = `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"look"},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"read","input":{"path":"a.png"}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"a.png"},` +
		`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0K"}}]}]}]}`
	cases := []struct {
		provider llmapi.Dialect
		want     []string // in this order
	}{
		{llmapi.ChatCompletions, []string{`{"content":"a.png","role":"tool","tool_call_id":"t1"}`,
			`{"content":[{"image_url":{"url":"data:image/png;base64,iVBORw0K"},"type":"image_url"}],"role":"user"}`}},
		{llmapi.Responses, []string{`{"call_id":"t1","output":[{"text":"a.png","type":"input_text"},` +
			`{"image_url":"data:image/png;base64,iVBORw0K","type":"input_image"}],"type":"function_call_output"}`}},
		{llmapi.GenerateContent, []string{`{"parts":[{"functionResponse":{"name":"read","response":{"result":"a.png"}}},` +
			`{"inlineData":{"data":"iVBORw0K","mimeType":"image/png"}}],"role":"user"}`}},
	}
	for _, tc := range cases {
		t.Run(string(tc.provider), func(t *testing.T) {
			p, err := NewPlan(llmapi.Messages, tc.provider, []byte(body), "")
			if err != nil {
				t.Fatal(err)
			}
			rest := string(p.Body)
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("missing %s in\n%s", w, p.Body)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestSystemJoined: a system prompt in several pieces (Anthropic system
// blocks, Gemini systemInstruction parts, several system or developer
// messages) becomes the one string of a Chat system message or Responses
// instructions with the pieces as paragraphs, not run together.
func TestSystemJoined(t *testing.T) {
	const joined = `You are terse.\n\nAnswer in French.`
	cases := []struct {
		name             string
		client, provider llmapi.Dialect
		body, want       string
	}{
		{"anthropic blocks to chat", llmapi.Messages, llmapi.ChatCompletions, `{"model":"m","max_tokens":10,` +
			`"system":[{"type":"text","text":"You are terse."},{"type":"text","text":"Answer in French."}],"messages":[{"role":"user","content":"hi"}]}`,
			`{"content":"` + joined + `","role":"system"}`},
		{"anthropic blocks to responses", llmapi.Messages, llmapi.Responses, `{"model":"m","max_tokens":10,` +
			`"system":[{"type":"text","text":"You are terse."},{"type":"text","text":"Answer in French."}],"messages":[{"role":"user","content":"hi"}]}`,
			`"instructions":"` + joined + `"`},
		{"chat system and developer to responses", llmapi.ChatCompletions, llmapi.Responses, `{"model":"m","messages":[` +
			`{"role":"system","content":"You are terse."},{"role":"developer","content":[{"type":"text","text":"Answer in French."}]},{"role":"user","content":"hi"}]}`,
			`"instructions":"` + joined + `"`},
		{"gemini parts to chat", llmapi.GenerateContent, llmapi.ChatCompletions, `{"systemInstruction":{"parts":[{"text":"You are terse."},` +
			`{"text":""},{"text":"Answer in French."}]},"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`,
			`{"content":"` + joined + `","role":"system"}`},
		{"responses instructions and developer to chat", llmapi.Responses, llmapi.ChatCompletions, `{"model":"m","instructions":"You are terse.",` +
			`"input":[{"role":"developer","content":"Answer in French."},{"role":"user","content":"hi"}]}`,
			`{"content":"` + joined + `","role":"system"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(tc.client, tc.provider, []byte(tc.body), "m")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(p.Body), tc.want) {
				t.Fatalf("missing %s in\n%s", tc.want, p.Body)
			}
		})
	}
}

// TestSamplingParams: top_k, seed and the presence and frequency penalties
// reach the providers whose API has them (Gemini all four, Anthropic
// top_k, Chat the seed and penalties) and no other, where an unknown
// field would be a 400; nor top_k to Anthropic while thinking, which it
// refuses.
func TestSamplingParams(t *testing.T) {
	const chat = `{"model":"m","messages":[{"role":"user","content":"hi"}],"top_k":40,"seed":7,"presence_penalty":0.5,"frequency_penalty":0.25}`
	const anthropic = `{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}],"top_k":5}`
	const gemini = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"topK":3.0,"seed":9,"presencePenalty":0.1,"frequencyPenalty":0.2}}`
	cases := []struct {
		name             string
		client, provider llmapi.Dialect
		body             string
		want, not        []string
	}{
		{"chat to gemini", llmapi.ChatCompletions, llmapi.GenerateContent, chat,
			[]string{`"topK":40`, `"seed":7`, `"presencePenalty":0.5`, `"frequencyPenalty":0.25`}, nil},
		{"chat to anthropic", llmapi.ChatCompletions, llmapi.Messages, chat, []string{`"top_k":40`}, []string{"seed", "penalty"}},
		{"chat to responses", llmapi.ChatCompletions, llmapi.Responses, chat, nil, []string{"top_k", "seed", "penalty"}},
		{"anthropic to gemini", llmapi.Messages, llmapi.GenerateContent, anthropic, []string{`"topK":5`}, nil},
		{"anthropic to chat", llmapi.Messages, llmapi.ChatCompletions, anthropic, nil, []string{"top_k"}},
		{"gemini to chat", llmapi.GenerateContent, llmapi.ChatCompletions, gemini,
			[]string{`"seed":9`, `"presence_penalty":0.1`, `"frequency_penalty":0.2`}, []string{"top_k"}},
		{"gemini to anthropic", llmapi.GenerateContent, llmapi.Messages, gemini, []string{`"top_k":3`}, []string{"seed", "penalty"}},
		{"chat with reasoning to anthropic", llmapi.ChatCompletions, llmapi.Messages,
			`{"model":"m","messages":[{"role":"user","content":"hi"}],"top_k":40,"reasoning_effort":"low"}`, []string{`"thinking"`}, []string{"top_k"}},
		{"gemini snake_case to anthropic", llmapi.GenerateContent, llmapi.Messages,
			`{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generation_config":{"top_k":4}}`, []string{`"top_k":4`}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { convertedHas(t, tc.client, tc.provider, tc.body, tc.want, tc.not) })
	}
}

// convertedHas converts the client's request body for the provider and
// checks that the provider's body holds each of want and none of not.
func convertedHas(t *testing.T, client, provider llmapi.Dialect, body string, want, not []string) {
	t.Helper()
	p, err := NewPlan(client, provider, []byte(body), "m")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(string(p.Body), w) {
			t.Errorf("missing %s in\n%s", w, p.Body)
		}
	}
	for _, n := range not {
		if strings.Contains(string(p.Body), n) {
			t.Errorf("%s sent:\n%s", n, p.Body)
		}
	}
}

// TestThinkingSampling: with thinking on, Anthropic answers 400 to a
// temperature other than 1 and to a top_p under 0.95, which clients of the
// other APIs send beside their reasoning settings. The temperature is left
// out and top_p raised to 0.95; without thinking both go as they are.
func TestThinkingSampling(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	cases := []struct {
		name      string
		client    llmapi.Dialect
		body      string
		want, not []string
	}{
		{"chat reasoning", llmapi.ChatCompletions, `{"model":"m",` + user + `,"reasoning_effort":"low","temperature":0.2,"top_p":0.5}`,
			[]string{`"thinking":{`, `"top_p":0.95`}, []string{`"temperature"`}},
		{"chat reasoning at temperature 1", llmapi.ChatCompletions, `{"model":"m",` + user + `,"reasoning_effort":"low","temperature":1,"top_p":0.97}`,
			[]string{`"thinking":{`, `"top_p":0.97`}, []string{`"temperature"`}},
		{"chat without reasoning", llmapi.ChatCompletions, `{"model":"m",` + user + `,"temperature":0.2,"top_p":0.5}`,
			[]string{`"temperature":0.2`, `"top_p":0.5`}, []string{`"thinking"`}},
		{"gemini thinking budget", llmapi.GenerateContent, `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],` +
			`"generationConfig":{"temperature":0.5,"topP":0.9,"thinkingConfig":{"thinkingBudget":2048}}}`,
			[]string{`"thinking":{`, `"top_p":0.95`}, []string{`"temperature"`}},
		{"responses reasoning", llmapi.Responses, `{"model":"m","input":"hi","temperature":0.5,"reasoning":{"effort":"high"}}`,
			[]string{`"thinking":{`}, []string{`"temperature"`, `"top_p"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { convertedHas(t, tc.client, llmapi.Messages, tc.body, tc.want, tc.not) })
	}
}

// TestAssistantRefusalHistory: an assistant turn in which the model
// declined has its refusal and no content (Chat's message.refusal, a
// Responses refusal content part). It is what the model said, so it goes
// to the provider as the assistant's text, not dropped with its turn.
func TestAssistantRefusalHistory(t *testing.T) {
	const refused = "I can't help with that."
	chat := `{"model":"m","messages":[{"role":"user","content":"hi"},` +
		`{"role":"assistant","content":null,"refusal":"` + refused + `"},{"role":"user","content":"why?"}]}`
	responses := `{"model":"m","input":[{"role":"user","content":"hi"},` +
		`{"type":"message","role":"assistant","content":[{"type":"refusal","refusal":"` + refused + `"}]},{"role":"user","content":"why?"}]}`
	cases := []struct {
		name             string
		client, provider llmapi.Dialect
		body, want       string
	}{
		{"chat to anthropic", llmapi.ChatCompletions, llmapi.Messages, chat, `{"content":[{"text":"` + refused + `","type":"text"}],"role":"assistant"}`},
		{"chat to gemini", llmapi.ChatCompletions, llmapi.GenerateContent, chat, `{"parts":[{"text":"` + refused + `"}],"role":"model"}`},
		{"chat to responses", llmapi.ChatCompletions, llmapi.Responses, chat, `"content":[{"text":"` + refused + `","type":"output_text"}],"role":"assistant"`},
		{"responses to chat", llmapi.Responses, llmapi.ChatCompletions, responses, `{"content":"` + refused + `","role":"assistant"}`},
		{"responses to anthropic", llmapi.Responses, llmapi.Messages, responses, `{"content":[{"text":"` + refused + `","type":"text"}],"role":"assistant"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { convertedHas(t, tc.client, tc.provider, tc.body, []string{tc.want}, nil) })
	}
}

// TestToolResultJoined: a tool result in several text blocks (Anthropic's
// tool_result content, a Responses function_call_output's parts) becomes
// the one string a Chat tool message, a Responses output or a Gemini
// functionResponse takes with the blocks as paragraphs, as the system
// prompt's pieces are (TestSystemJoined), not run together.
func TestToolResultJoined(t *testing.T) {
	const joined = `line one\n\nline two`
	anthropic := `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"read"},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"read","input":{}}]},` +
		`{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"line one"},{"type":"text","text":"line two"}]}]}]}`
	responses := `{"model":"m","input":[{"role":"user","content":"read"},{"type":"function_call","call_id":"t1","name":"read","arguments":"{}"},` +
		`{"type":"function_call_output","call_id":"t1","output":[{"type":"input_text","text":"line one"},{"type":"input_text","text":"line two"}]}]}`
	cases := []struct {
		name             string
		client, provider llmapi.Dialect
		body, want       string
	}{
		{"anthropic to chat", llmapi.Messages, llmapi.ChatCompletions, anthropic, `{"content":"` + joined + `","role":"tool","tool_call_id":"t1"}`},
		{"anthropic to responses", llmapi.Messages, llmapi.Responses, anthropic, `{"call_id":"t1","output":"` + joined + `","type":"function_call_output"}`},
		{"anthropic to gemini", llmapi.Messages, llmapi.GenerateContent, anthropic, `"response":{"result":"` + joined + `"}`},
		{"responses to chat", llmapi.Responses, llmapi.ChatCompletions, responses, `{"content":"` + joined + `","role":"tool","tool_call_id":"t1"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { convertedHas(t, tc.client, tc.provider, tc.body, []string{tc.want}, nil) })
	}
}
