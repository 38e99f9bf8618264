package fakeprovider

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// A scenario replaces the generated "tok0 tok1 …" answer of a generation
// endpoint (chat completions, messages, generateContent) with a fixed
// answer holding what format conversion must carry: thinking with a
// signature, parallel tool calls with streamed argument fragments, and
// usage with cache and reasoning tokens. A request selects one with the
// header X-Fake-Scenario (it passes the edge and the relay unchanged).
const ScenarioHeader = "X-Fake-Scenario"

// Scenario names.
const (
	// ScenarioTools answers with a text block and two parallel calls of
	// get_weather ({"city":"Paris"} and {"city":"Tokyo"}).
	ScenarioTools = "tools"
	// ScenarioThinking answers with a thinking block signed with
	// ThinkingSignature (Anthropic) and one get_weather call carrying
	// GeminiSignature as its thoughtSignature (Gemini).
	ScenarioThinking = "thinking"
	// ScenarioUsage answers with text and the usage of ScenarioUsageFigures.
	ScenarioUsage = "usage"
	// ScenarioStructured answers as a model made to call the structured
	// output tool Strait adds for a JSON-schema response format: one call
	// of "structured_output" with StructuredAnswer as its input.
	ScenarioStructured = "structured"
)

// Signatures the thinking scenario sends; tests look for them in the next
// turn's request.
const (
	ThinkingSignature = "EqQBCkgIfakeThinkingSignature=="
	GeminiSignature   = "CiQBfakeGeminiThoughtSignature"
)

// ScenarioUsageFigures is the usage every scenario reports, in neutral
// terms: 1000 prompt tokens of which 800 read from the cache and (Anthropic
// only) 50 written to it, 20 output tokens of which 5 reasoning (Gemini and
// OpenAI report reasoning; Anthropic does not split it).
var ScenarioUsageFigures = struct{ Input, CacheRead, CacheWrite, Output, Reasoning int }{1000, 800, 50, 20, 5}

// scItem is one block of a scenario answer.
type scItem struct {
	kind       string // "thinking", "text" or "tool"
	text, args string
	name       string
}

var scenarios = map[string][]scItem{
	ScenarioTools: {
		{kind: "text", text: "Checking both cities."},
		{kind: "tool", name: "get_weather", args: `{"city":"Paris"}`},
		{kind: "tool", name: "get_weather", args: `{"city":"Tokyo"}`},
	},
	ScenarioThinking: {
		{kind: "thinking", text: "The user wants the weather in Paris."},
		{kind: "tool", name: "get_weather", args: `{"city":"Paris"}`},
	},
	ScenarioUsage:      {{kind: "text", text: "tok0 tok1"}},
	ScenarioStructured: {{kind: "tool", name: "structured_output", args: StructuredAnswer}},
}

// StructuredAnswer is the input of ScenarioStructured's call.
const StructuredAnswer = `{"city":"Paris","temp_c":18}`

// halves splits s in two pieces so streams carry fragments.
func halves(s string) []string {
	if len(s) < 2 {
		return []string{s}
	}
	return []string{s[:len(s)/2], s[len(s)/2:]}
}

func hasTool(items []scItem) bool {
	for _, it := range items {
		if it.kind == "tool" {
			return true
		}
	}
	return false
}

// serveScenario answers c from its scenario; false when it asks for none
// or the endpoint does not generate.
func serveScenario(c *call) bool {
	name := c.r.Header.Get(ScenarioHeader)
	items, ok := scenarios[name]
	if !ok || c.r.Method != http.MethodPost {
		return false
	}
	var v struct {
		Stream        bool `json:"stream"`
		StreamOptions struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(c.body, &v)
	sc := &scenarioCall{c: c, items: items}
	switch {
	case c.d.name() == "openai" && c.r.URL.Path == "/v1/chat/completions":
		sc.chat(v.Stream, v.StreamOptions.IncludeUsage)
	case c.d.name() == "anthropic" && c.r.URL.Path == "/v1/messages":
		sc.anthropic(v.Stream)
	case c.d.name() == "gemini" && strings.HasSuffix(c.r.URL.Path, ":generateContent"):
		c.writeJSON(http.StatusOK, sc.geminiChunk(sc.geminiParts(), true))
	case c.d.name() == "gemini" && strings.HasSuffix(c.r.URL.Path, ":streamGenerateContent"):
		sc.geminiStream(c.r.URL.Query().Get("alt") == "sse")
	default:
		return false
	}
	return true
}

type scenarioCall struct {
	c     *call
	items []scItem
}

func (sc *scenarioCall) toolID(prefix string, i int) string {
	return fmt.Sprintf("%sfake%d_%d", prefix, sc.c.seq, i)
}

// --- Anthropic ---

func (sc *scenarioCall) anthropicUsage(output int) object {
	u := ScenarioUsageFigures
	return object{{"input_tokens", u.Input - u.CacheRead - u.CacheWrite}, {"cache_creation_input_tokens", u.CacheWrite},
		{"cache_read_input_tokens", u.CacheRead}, {"output_tokens", output}}
}

func (sc *scenarioCall) anthropicStop() string {
	if hasTool(sc.items) {
		return "tool_use"
	}
	return "end_turn"
}

func (sc *scenarioCall) anthropicMessage(content []any, stop any, output int) object {
	var v struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(sc.c.body, &v)
	return object{{"id", sc.c.id("msg_")}, {"type", "message"}, {"role", "assistant"}, {"model", v.Model},
		{"content", content}, {"stop_reason", stop}, {"stop_sequence", nil}, {"usage", sc.anthropicUsage(output)}}
}

func (sc *scenarioCall) anthropic(stream bool) {
	if !stream {
		content := make([]any, len(sc.items))
		for i, it := range sc.items {
			switch it.kind {
			case "thinking":
				content[i] = object{{"type", "thinking"}, {"thinking", it.text}, {"signature", ThinkingSignature}}
			case "text":
				content[i] = object{{"type", "text"}, {"text", it.text}}
			default:
				content[i] = object{{"type", "tool_use"}, {"id", sc.toolID("toolu_", i)}, {"name", it.name}, {"input", json.RawMessage(it.args)}}
			}
		}
		sc.c.writeJSON(http.StatusOK, sc.anthropicMessage(content, sc.anthropicStop(), ScenarioUsageFigures.Output))
		return
	}
	s := sc.c.startStream("text/event-stream; charset=utf-8", "\n")
	ev := func(typ string, fields ...field) bool { return s.event(typ, append(object{{"type", typ}}, fields...)) }
	delta := func(i int, d object) bool { return ev("content_block_delta", field{"index", i}, field{"delta", d}) }
	ok := ev("message_start", field{"message", sc.anthropicMessage([]any{}, nil, 1)})
	for i, it := range sc.items {
		if !ok {
			break
		}
		var block object
		var deltas []object
		switch it.kind {
		case "thinking":
			block = object{{"type", "thinking"}, {"thinking", ""}, {"signature", ""}}
			for _, p := range halves(it.text) {
				deltas = append(deltas, object{{"type", "thinking_delta"}, {"thinking", p}})
			}
			deltas = append(deltas, object{{"type", "signature_delta"}, {"signature", ThinkingSignature}})
		case "text":
			block = object{{"type", "text"}, {"text", ""}}
			for _, p := range halves(it.text) {
				deltas = append(deltas, object{{"type", "text_delta"}, {"text", p}})
			}
		default:
			block = object{{"type", "tool_use"}, {"id", sc.toolID("toolu_", i)}, {"name", it.name}, {"input", object{}}}
			for _, p := range halves(it.args) {
				deltas = append(deltas, object{{"type", "input_json_delta"}, {"partial_json", p}})
			}
		}
		ok = ev("content_block_start", field{"index", i}, field{"content_block", block})
		for _, d := range deltas {
			ok = ok && delta(i, d)
		}
		ok = ok && ev("content_block_stop", field{"index", i})
	}
	ok = ok && ev("message_delta", field{"delta", object{{"stop_reason", sc.anthropicStop()}, {"stop_sequence", nil}}},
		field{"usage", object{{"output_tokens", ScenarioUsageFigures.Output}}}) && ev("message_stop")
	if ok {
		s.end()
	}
}

// --- OpenAI Chat Completions ---

func (sc *scenarioCall) chatUsage() object {
	u := ScenarioUsageFigures
	return object{{"prompt_tokens", u.Input}, {"completion_tokens", u.Output}, {"total_tokens", u.Input + u.Output},
		{"prompt_tokens_details", object{{"cached_tokens", u.CacheRead}}},
		{"completion_tokens_details", object{{"reasoning_tokens", u.Reasoning}}}}
}

func (sc *scenarioCall) chatFinish() string {
	if hasTool(sc.items) {
		return "tool_calls"
	}
	return "stop"
}

func (sc *scenarioCall) chat(stream, includeUsage bool) {
	var v struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(sc.c.body, &v)
	envelope := func(kind string) object {
		return object{{"id", sc.c.id("chatcmpl-")}, {"object", kind}, {"created", sc.c.start.Unix()}, {"model", v.Model}}
	}
	if !stream {
		msg := object{{"role", "assistant"}}
		var text string
		var calls []any
		for i, it := range sc.items {
			switch it.kind {
			case "thinking":
				msg = append(msg, field{"reasoning_content", it.text})
			case "text":
				text += it.text
			default:
				calls = append(calls, object{{"id", sc.toolID("call_", i)}, {"type", "function"},
					{"function", object{{"name", it.name}, {"arguments", it.args}}}})
			}
		}
		msg = append(msg, field{"content", text})
		if calls != nil {
			msg = append(msg, field{"tool_calls", calls})
		}
		sc.c.writeJSON(http.StatusOK, append(envelope("chat.completion"),
			field{"choices", []any{object{{"index", 0}, {"message", msg}, {"finish_reason", sc.chatFinish()}}}},
			field{"usage", sc.chatUsage()}))
		return
	}
	s := sc.c.startStream("text/event-stream; charset=utf-8", "\n")
	chunk := func(delta object, finish any) bool {
		return s.event("", append(envelope("chat.completion.chunk"),
			field{"choices", []any{object{{"index", 0}, {"delta", delta}, {"finish_reason", finish}}}}))
	}
	ok := chunk(object{{"role", "assistant"}, {"content", ""}}, nil)
	tool := 0
	for i, it := range sc.items {
		for j, p := range halves(cmpStr(it.args, it.text)) {
			switch {
			case it.kind == "thinking":
				ok = ok && chunk(object{{"reasoning_content", p}}, nil)
			case it.kind == "text":
				ok = ok && chunk(object{{"content", p}}, nil)
			case j == 0:
				ok = ok && chunk(object{{"tool_calls", []any{object{{"index", tool}, {"id", sc.toolID("call_", i)}, {"type", "function"},
					{"function", object{{"name", it.name}, {"arguments", p}}}}}}}, nil)
			default:
				ok = ok && chunk(object{{"tool_calls", []any{object{{"index", tool}, {"function", object{{"arguments", p}}}}}}}, nil)
			}
		}
		if it.kind == "tool" {
			tool++
		}
	}
	ok = ok && chunk(object{}, sc.chatFinish())
	if includeUsage {
		ok = ok && s.event("", append(envelope("chat.completion.chunk"), field{"choices", []any{}}, field{"usage", sc.chatUsage()}))
	}
	if ok && s.write([]byte("data: [DONE]\n\n")) {
		s.end()
	}
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// --- Gemini ---

func (sc *scenarioCall) geminiParts() []any {
	var parts []any
	for _, it := range sc.items {
		switch it.kind {
		case "thinking":
			parts = append(parts, object{{"text", it.text}, {"thought", true}})
		case "text":
			parts = append(parts, object{{"text", it.text}})
		default:
			p := object{{"functionCall", object{{"name", it.name}, {"args", json.RawMessage(it.args)}}}}
			if sc.c.r.Header.Get(ScenarioHeader) == ScenarioThinking {
				p = append(p, field{"thoughtSignature", GeminiSignature})
			}
			parts = append(parts, p)
		}
	}
	return parts
}

func (sc *scenarioCall) geminiChunk(parts []any, final bool) object {
	cand := object{{"content", object{{"parts", parts}, {"role", "model"}}}}
	if final {
		cand = append(cand, field{"finishReason", "STOP"})
	}
	out := object{{"candidates", []any{append(cand, field{"index", 0})}}}
	if final {
		u := ScenarioUsageFigures
		out = append(out, field{"usageMetadata", object{{"promptTokenCount", u.Input}, {"candidatesTokenCount", u.Output - u.Reasoning},
			{"totalTokenCount", u.Input + u.Output}, {"cachedContentTokenCount", u.CacheRead}, {"thoughtsTokenCount", u.Reasoning}}})
	}
	model, _ := geminiTarget(sc.c.r.URL.Path)
	return append(out, field{"modelVersion", model}, field{"responseId", sc.c.id("resp_")})
}

// geminiStream sends one chunk per part, the last with finishReason and
// usage, as SSE or as one JSON array.
func (sc *scenarioCall) geminiStream(sseFraming bool) {
	parts := sc.geminiParts()
	var s *streamer
	if sseFraming {
		s = sc.c.startStream("text/event-stream", "\r\n")
	} else {
		s = sc.c.startStream("application/json; charset=UTF-8", "")
	}
	ok := true
	for i, p := range parts {
		chunk := sc.geminiChunk([]any{p}, i == len(parts)-1)
		switch {
		case sseFraming:
			ok = ok && s.event("", chunk)
		case i == 0:
			ok = ok && s.write(append([]byte("["), mustJSON(chunk)...))
		default:
			ok = ok && s.write(append([]byte("\n,"), mustJSON(chunk)...))
		}
	}
	if ok && (sseFraming || s.write([]byte("]"))) {
		s.end()
	}
}
