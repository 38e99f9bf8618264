package convert

import (
	"encoding/json"
	"slices"
	"strings"
)

// chatRequest is the part of a Chat Completions request that converts.
type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	Tools               []chatTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls"`
	MaxTokens           int             `json:"max_tokens"`
	MaxCompletionTokens int             `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	// TopK is not OpenAI's, but OpenRouter and vLLM take it, and their
	// clients send it.
	TopK             *float64        `json:"top_k"`
	Seed             *int64          `json:"seed"`
	PresencePenalty  *float64        `json:"presence_penalty"`
	FrequencyPenalty *float64        `json:"frequency_penalty"`
	Stop             json.RawMessage `json:"stop"`
	N                int             `json:"n"`
	Stream           bool            `json:"stream"`
	StreamOptions    struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
	ReasoningEffort string `json:"reasoning_effort"`
	// Modalities and Audio ask for spoken output, which no other
	// provider's API gives; they are refused. Modalities with "image"
	// asks for generated images, which Gemini's image models make.
	Modalities []string        `json:"modalities"`
	Audio      json.RawMessage `json:"audio"`
}

type chatMessage struct {
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content"`
	ToolCalls        []chatToolCall  `json:"tool_calls"`
	ToolCallID       string          `json:"tool_call_id"`
	ReasoningContent string          `json:"reasoning_content"`
	// Reasoning is where vLLM, OpenRouter and other OpenAI-compatible
	// servers put what DeepSeek's API calls reasoning_content; read from
	// providers only, and only as a string (see thinking): raw, so that a
	// server using the name for something else fails nothing.
	Reasoning json.RawMessage `json:"reasoning"`
	// Refusal is the model declining, in place of content: in a
	// provider's answer, or in an assistant turn of a client's history.
	Refusal string `json:"refusal"`
	// ThinkingBlocks carries Anthropic thinking blocks (with signatures)
	// through OpenAI-format clients, the convention LiteLLM established.
	ThinkingBlocks []thinkingBlock `json:"thinking_blocks"`
}

type thinkingBlock struct {
	Type      string `json:"type"` // "thinking" or "redacted_thinking"
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`
}

type chatToolCall struct {
	Index    *int   `json:"index,omitempty"`
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Function struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

type chatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

type chatPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL struct {
		URL string `json:"url"`
	} `json:"image_url"`
	CacheControl json.RawMessage `json:"cache_control"`
	File         struct {
		FileData string `json:"file_data"`
		FileID   string `json:"file_id"`
		Filename string `json:"filename"`
	} `json:"file"`
}

func decodeChatRequest(body []byte) (*Request, error) {
	var in chatRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, invalid("request body is not valid JSON: %v", err)
	}
	if in.N > 1 {
		return nil, invalid("n > 1 is not supported for this model")
	}
	if slices.Contains(in.Modalities, "audio") || len(in.Audio) > 0 && string(in.Audio) != "null" {
		return nil, invalid("audio output (modalities, audio) is not supported for this model")
	}
	r := &Request{Model: in.Model, ParallelToolCalls: in.ParallelToolCalls, Temperature: in.Temperature, TopP: in.TopP,
		Stream: in.Stream, IncludeUsage: in.StreamOptions.IncludeUsage, MaxTokens: max(in.MaxCompletionTokens, in.MaxTokens),
		TopK: in.TopK, Seed: in.Seed, PresencePenalty: in.PresencePenalty, FrequencyPenalty: in.FrequencyPenalty}
	var err error
	if r.Stop, err = stringOrList(in.Stop); err != nil {
		return nil, err
	}
	for _, t := range in.Tools {
		if t.Type != "function" {
			return nil, invalid("tool type %q is not supported for this model", t.Type)
		}
		r.Tools = append(r.Tools, Tool{Name: t.Function.Name, Description: t.Function.Description,
			Schema: rawOr(t.Function.Parameters, `{"type":"object","properties":{}}`)})
	}
	if r.ToolChoice, err = chatToolChoice(in.ToolChoice); err != nil {
		return nil, err
	}
	if f := in.ResponseFormat; f != nil && f.Type != "text" && f.Type != "" {
		r.Format = &Format{Name: f.JSONSchema.Name, Schema: f.JSONSchema.Schema}
	}
	if in.ReasoningEffort != "" && in.ReasoningEffort != "none" {
		r.Thinking = &Thinking{Effort: in.ReasoningEffort}
	}
	if slices.Contains(in.Modalities, "image") {
		for _, m := range in.Modalities {
			if m == "text" || m == "image" {
				r.Modalities = append(r.Modalities, m)
			}
		}
	}
	for _, m := range in.Messages {
		if err := r.addChatMessage(m); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Request) addChatMessage(m chatMessage) error {
	parts, err := chatContent(m.Content)
	if err != nil {
		return err
	}
	switch m.Role {
	case "system", "developer":
		r.System = append(r.System, parts...)
	case "user":
		r.Messages = appendMessage(r.Messages, Message{Role: User, Parts: parts})
	case "tool":
		res := &ToolResult{CallID: m.ToolCallID, Content: parts}
		r.Messages = appendMessage(r.Messages, Message{Role: User, Parts: []Part{{Kind: PartToolResult, Result: res}}})
	case "assistant":
		var out []Part
		for _, tb := range m.ThinkingBlocks {
			if tb.Type == "redacted_thinking" {
				out = append(out, Part{Kind: PartRedactedThinking, Text: tb.Data})
			} else {
				out = append(out, Part{Kind: PartThinking, Text: tb.Thinking, Signature: tb.Signature})
			}
		}
		out = append(out, parts...)
		if m.Refusal != "" {
			// The model declined in an earlier turn; it is what the model
			// said, and without it the turn would vanish from the history.
			out = append(out, Part{Kind: PartText, Text: m.Refusal})
		}
		for _, tc := range m.ToolCalls {
			args, err := argsObject(tc.Function.Arguments)
			if err != nil {
				return err
			}
			out = append(out, Part{Kind: PartToolCall, Call: &ToolCall{ID: tc.ID, Name: tc.Function.Name, Args: args}})
		}
		r.Messages = appendMessage(r.Messages, Message{Role: Assistant, Parts: out})
	default:
		return invalid("message role %q is not supported", m.Role)
	}
	return nil
}

// chatContent reads a string or an array of content parts.
func chatContent(raw json.RawMessage) ([]Part, error) {
	var s string
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil
		}
		return []Part{{Kind: PartText, Text: s}}, nil
	}
	var ps []chatPart
	if err := json.Unmarshal(raw, &ps); err != nil {
		return nil, invalid("message content must be a string or an array of parts")
	}
	var out []Part
	for _, p := range ps {
		switch p.Type {
		case "text":
			out = append(out, Part{Kind: PartText, Text: p.Text, Cache: p.CacheControl})
		case "image_url":
			img, err := imageFromURL(p.ImageURL.URL)
			if err != nil {
				return nil, err
			}
			out = append(out, Part{Kind: PartImage, Image: img, Cache: p.CacheControl})
		case "file":
			if p.File.FileID != "" {
				return nil, fileRef(p.File.FileID)
			}
			d, err := document(p.File.Filename, p.File.FileData)
			if err != nil {
				return nil, err
			}
			d.Cache = p.CacheControl
			out = append(out, d)
		default:
			return nil, invalid("content part type %q is not supported for this model", p.Type)
		}
	}
	return out, nil
}

func stringOrList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []string{s}, nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, invalid("stop must be a string or an array of strings")
	}
	return l, nil
}

func chatToolChoice(raw json.RawMessage) (*ToolChoice, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto", "none", "required":
			return &ToolChoice{Mode: s}, nil
		}
		return nil, invalid("tool_choice %q is not supported", s)
	}
	var v struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &v) != nil || (v.Function.Name == "" && v.Name == "") {
		return nil, invalid("tool_choice must name a function")
	}
	return &ToolChoice{Mode: "tool", Name: v.Function.Name + v.Name}, nil
}

// encodeChatRequest builds a Chat Completions request. Usage is always
// asked for in streams, so that a client of another dialect gets it; the
// chat encoder drops the usage chunk again for a chat client that did not
// ask (never the case here: chat to chat is not converted).
func encodeChatRequest(r *Request) (string, string, []byte, error) {
	out := obj{"model": r.Model}
	var msgs []any
	if len(r.System) > 0 {
		msgs = append(msgs, obj{"role": "system", "content": paragraphs(r.System)})
	}
	for _, m := range r.Messages {
		var err error
		if msgs, err = appendChatMessages(msgs, m); err != nil {
			return "", "", nil, err
		}
	}
	out["messages"] = msgs
	if len(r.Tools) > 0 {
		out["tools"] = r.toolDecls("parameters", func(_ Tool, fn obj) any { return obj{"type": "function", "function": fn} })
	}
	if tc := r.ToolChoice; tc != nil {
		if tc.Mode == "tool" {
			out["tool_choice"] = obj{"type": "function", "function": obj{"name": tc.Name}}
		} else {
			out["tool_choice"] = tc.Mode
		}
	}
	if r.ParallelToolCalls != nil && len(r.Tools) > 0 {
		out["parallel_tool_calls"] = *r.ParallelToolCalls
	}
	setCommon(out, r, "max_tokens", "temperature", "top_p", "stop")
	// OpenAI's API has no top_k, and refuses a field it does not know.
	setSampling(out, r, "", "seed", "presence_penalty", "frequency_penalty")
	if r.Format != nil {
		if r.Format.Schema != nil {
			out["response_format"] = obj{"type": "json_schema", "json_schema": obj{"name": cmpOr(r.Format.Name, "response"), "schema": r.Format.Schema}}
		} else {
			out["response_format"] = obj{"type": "json_object"}
		}
	}
	if r.Thinking != nil && r.Thinking.Effort != "" {
		out["reasoning_effort"] = r.Thinking.Effort
	}
	if r.Stream {
		out["stream"] = true
		out["stream_options"] = obj{"include_usage": true}
	}
	return "/v1/chat/completions", "", mustJSON(out), nil
}

// setCommon writes max tokens, temperature, top_p and stop sequences under
// the given names.
func setCommon(out obj, r *Request, maxName, tempName, topPName, stopName string) {
	if r.MaxTokens > 0 {
		out[maxName] = r.MaxTokens
	}
	if r.Temperature != nil {
		out[tempName] = *r.Temperature
	}
	if r.TopP != nil {
		out[topPName] = *r.TopP
	}
	if len(r.Stop) > 0 {
		out[stopName] = r.Stop
	}
}

// setSampling writes top_k, the seed and the penalties under the given
// names; an empty name is one the target's API does not have.
func setSampling(out obj, r *Request, topKName, seedName, presenceName, frequencyName string) {
	setPtr(out, topKName, r.TopK)
	setPtr(out, seedName, r.Seed)
	setPtr(out, presenceName, r.PresencePenalty)
	setPtr(out, frequencyName, r.FrequencyPenalty)
}

// setPtr writes *v under name when both are set.
func setPtr[T any](out obj, name string, v *T) {
	if name != "" && v != nil {
		out[name] = *v
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// appendChatMessages renders one neutral message as chat messages: a user
// message's tool results become separate "tool" messages first.
func appendChatMessages(msgs []any, m Message) ([]any, error) {
	if m.Role == Assistant {
		am := obj{"role": "assistant"}
		var calls []any
		var text strings.Builder
		for _, p := range m.Parts {
			switch p.Kind {
			case PartText:
				text.WriteString(p.Text)
			case PartToolCall:
				calls = append(calls, obj{"id": p.Call.ID, "type": "function",
					"function": obj{"name": p.Call.Name, "arguments": string(p.Call.Args)}})
			}
		}
		am["content"] = nil
		if text.Len() > 0 {
			am["content"] = text.String()
		}
		if calls != nil {
			am["tool_calls"] = calls
		}
		return append(msgs, am), nil
	}
	var content []any
	var err error
	for _, p := range m.Parts {
		if p.Kind != PartToolResult {
			if content, err = appendChatPart(content, p); err != nil {
				return nil, err
			}
			continue
		}
		msgs = append(msgs, obj{"role": "tool", "tool_call_id": p.Result.CallID, "content": resultText(p.Result)})
		// A tool message holds text only: the result's images and
		// documents follow in the user message after the tool messages.
		for _, rp := range p.Result.media() {
			if content, err = appendChatPart(content, rp); err != nil {
				return nil, err
			}
		}
	}
	if len(content) > 0 {
		msgs = append(msgs, obj{"role": "user", "content": content})
	}
	return msgs, nil
}

// appendChatPart adds a user message's text, image or document part.
func appendChatPart(content []any, p Part) ([]any, error) {
	switch p.Kind {
	case PartText:
		content = append(content, obj{"type": "text", "text": p.Text})
	case PartImage:
		content = append(content, obj{"type": "image_url", "image_url": obj{"url": p.Image.url()}})
	case PartDocument:
		f, err := p.chatFile()
		if err != nil {
			return nil, err
		}
		content = append(content, f)
	}
	return content, nil
}

// media are the parts of a tool result other than its text: the images
// and documents, for the dialects whose tool results hold text only.
func (res *ToolResult) media() []Part {
	var out []Part
	for _, p := range res.Content {
		if p.Kind != PartText {
			out = append(out, p)
		}
	}
	return out
}

// resultText is a tool result as one string; an error result says so,
// because chat tool messages have no error flag.
func resultText(res *ToolResult) string {
	t := paragraphs(res.Content)
	if res.IsError {
		return "Error: " + t
	}
	return t
}
