package convert

import (
	"encoding/json"
)

// anthropicRequest is the part of a Messages request that converts.
type anthropicRequest struct {
	Model         string             `json:"model"`
	System        json.RawMessage    `json:"system"`
	Messages      []anthropicMessage `json:"messages"`
	MaxTokens     int                `json:"max_tokens"`
	StopSequences []string           `json:"stop_sequences"`
	Temperature   *float64           `json:"temperature"`
	TopP          *float64           `json:"top_p"`
	TopK          *float64           `json:"top_k"`
	Stream        bool               `json:"stream"`
	Tools         []struct {
		Type         string          `json:"type"`
		Name         string          `json:"name"`
		Description  string          `json:"description"`
		InputSchema  json.RawMessage `json:"input_schema"`
		CacheControl json.RawMessage `json:"cache_control"`
	} `json:"tools"`
	ToolChoice *struct {
		Type                   string `json:"type"`
		Name                   string `json:"name"`
		DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
	} `json:"tool_choice"`
	Thinking *struct {
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	} `json:"thinking"`
}

type anthropicMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// anthropicBlock is any content block.
type anthropicBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text"`
	Thinking     string          `json:"thinking"`
	Signature    string          `json:"signature"`
	Data         string          `json:"data"`
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Input        json.RawMessage `json:"input"`
	ToolUseID    string          `json:"tool_use_id"`
	Content      json.RawMessage `json:"content"`
	IsError      bool            `json:"is_error"`
	CacheControl json.RawMessage `json:"cache_control"`
	Title        string          `json:"title"`
	Source       *struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	} `json:"source"`
}

func decodeAnthropicRequest(body []byte) (*Request, error) {
	var in anthropicRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, invalid("request body is not valid JSON: %v", err)
	}
	r := &Request{Model: in.Model, MaxTokens: in.MaxTokens, Stop: in.StopSequences, Temperature: in.Temperature,
		TopP: in.TopP, TopK: in.TopK, Stream: in.Stream}
	var err error
	if r.System, err = anthropicContent(in.System); err != nil {
		return nil, err
	}
	for _, t := range in.Tools {
		if t.Type != "" && t.Type != "custom" {
			return nil, invalid("server tool %q is not supported for this model", t.Type)
		}
		r.Tools = append(r.Tools, Tool{Name: t.Name, Description: t.Description,
			Schema: rawOr(t.InputSchema, `{"type":"object","properties":{}}`), Cache: t.CacheControl})
	}
	if tc := in.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto", "none":
			r.ToolChoice = &ToolChoice{Mode: tc.Type}
		case "any":
			r.ToolChoice = &ToolChoice{Mode: "required"}
		case "tool":
			r.ToolChoice = &ToolChoice{Mode: "tool", Name: tc.Name}
		}
		if tc.DisableParallelToolUse {
			f := false
			r.ParallelToolCalls = &f
		}
	}
	if th := in.Thinking; th != nil && th.Type == "enabled" {
		r.Thinking = &Thinking{Budget: th.BudgetTokens}
	}
	for _, m := range in.Messages {
		parts, err := anthropicContent(m.Content)
		if err != nil {
			return nil, err
		}
		role := User
		if m.Role == "assistant" {
			role = Assistant
		}
		r.Messages = appendMessage(r.Messages, Message{Role: role, Parts: parts})
	}
	return r, nil
}

// anthropicContent reads a string or an array of blocks.
func anthropicContent(raw json.RawMessage) ([]Part, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil
		}
		return []Part{{Kind: PartText, Text: s}}, nil
	}
	var blocks []anthropicBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, invalid("content must be a string or an array of content blocks")
	}
	out := make([]Part, 0, len(blocks))
	for _, b := range blocks {
		p, err := b.part()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func (b *anthropicBlock) part() (Part, error) {
	p := Part{Cache: b.CacheControl}
	switch b.Type {
	case "text":
		p.Kind, p.Text = PartText, b.Text
	case "image":
		switch s := b.Source; {
		case s == nil:
			return p, invalid("image block without source")
		case s.Type == "base64":
			p.Kind, p.Image = PartImage, &Image{MediaType: s.MediaType, Data: s.Data}
		case s.Type == "url":
			p.Kind, p.Image = PartImage, &Image{URL: s.URL}
		case s.Type == "file":
			return p, fileRef("(Anthropic Files API)")
		default:
			return p, invalid("image source type %q is not supported for this model", s.Type)
		}
	case "tool_use":
		p.Kind, p.Call = PartToolCall, &ToolCall{ID: b.ID, Name: b.Name, Args: rawOr(b.Input, "{}")}
	case "tool_result":
		content, err := anthropicContent(b.Content)
		if err != nil {
			return p, err
		}
		p.Kind, p.Result = PartToolResult, &ToolResult{CallID: b.ToolUseID, Content: content, IsError: b.IsError}
	case "thinking":
		p.Kind, p.Text, p.Signature = PartThinking, b.Thinking, b.Signature
	case "redacted_thinking":
		p.Kind, p.Text = PartRedactedThinking, b.Data
	case "document":
		s := b.Source
		switch {
		case s == nil:
			return p, invalid("document block without source")
		case s.Type == "base64":
			d, err := document(b.Title, "data:"+s.MediaType+";base64,"+s.Data)
			d.Cache = b.CacheControl
			return d, err
		case s.Type == "url":
			d, err := document(b.Title, s.URL)
			d.Cache = b.CacheControl
			return d, err
		case s.Type == "file":
			return p, fileRef("(Anthropic Files API)")
		}
		return p, invalid("document source type %q is not supported for this model", s.Type)
	default:
		return p, invalid("content block type %q is not supported for this model", b.Type)
	}
	return p, nil
}

// defaultMaxTokens is sent to Anthropic, which requires max_tokens, when the
// client set none.
const defaultMaxTokens = 4096

// effortBudgets maps an OpenAI reasoning effort to an Anthropic or Gemini
// thinking budget.
var effortBudgets = map[string]int{"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}

func (t *Thinking) budget() int {
	if t.Budget > 0 {
		return t.Budget
	}
	return cmpInt(effortBudgets[t.Effort], 8192)
}

func cmpInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func encodeAnthropicRequest(r *Request) (string, string, []byte, error) {
	out := obj{"model": r.Model}
	if system := anthropicBlocks(r.System); len(system) > 0 {
		out["system"] = system
	}
	msgs := make([]any, 0, len(r.Messages))
	for _, m := range r.Messages {
		msgs = append(msgs, obj{"role": string(m.Role), "content": anthropicBlocks(withoutOpenAIReasoning(m.Parts))})
	}
	out["messages"] = msgs
	maxTokens := cmpInt(r.MaxTokens, defaultMaxTokens)
	if r.Thinking != nil {
		// Anthropic wants budget_tokens ≥ 1024 and < max_tokens; OpenAI's
		// max tokens include the reasoning, so the budget shrinks to fit.
		b := r.Thinking.budget()
		if r.MaxTokens > 0 {
			b = min(b, r.MaxTokens/2)
		}
		b = max(1024, b)
		if maxTokens <= b {
			maxTokens = b + 1024
		}
		out["thinking"] = obj{"type": "enabled", "budget_tokens": b}
	}
	rr := *r
	rr.MaxTokens = maxTokens
	if r.Thinking != nil {
		rr.Temperature, rr.TopP = nil, thinkingTopP(r.TopP)
	}
	setCommon(out, &rr, "max_tokens", "temperature", "top_p", "stop_sequences")
	if r.Thinking == nil {
		// Anthropic has no seed or penalties, and refuses top_k while
		// thinking: a hint the model cannot take should not fail the call.
		setSampling(out, r, "top_k", "", "", "")
	}
	if len(r.Tools) > 0 {
		out["tools"] = r.toolDecls("input_schema", func(t Tool, o obj) any {
			if t.Cache != nil {
				o["cache_control"] = t.Cache
			}
			return o
		})
	}
	if tc := anthropicToolChoice(r); tc != nil {
		out["tool_choice"] = tc
	}
	if err := addFormatTool(out, r); err != nil {
		return "", "", nil, err
	}
	if r.Stream {
		out["stream"] = true
	}
	return "/v1/messages", "", mustJSON(out), nil
}

// minThinkingTopP is the lowest top_p Anthropic takes while thinking.
const minThinkingTopP = 0.95

// thinkingTopP is the top_p sent with a thinking request. While thinking,
// Anthropic answers 400 to a temperature other than its default 1 and to a
// top_p under 0.95; a client asks for thinking from another API, where its
// sampling values are allowed, so the temperature is left out (1 is what
// the model then uses) and a lower top_p is raised to the nearest value
// Anthropic takes, rather than the call failing.
func thinkingTopP(p *float64) *float64 {
	if p == nil || *p >= minThinkingTopP {
		return p
	}
	v := minThinkingTopP
	return &v
}

func anthropicToolChoice(r *Request) obj {
	if r.ToolChoice == nil && r.ParallelToolCalls == nil {
		return nil
	}
	tc := obj{"type": "auto"}
	if c := r.ToolChoice; c != nil {
		switch c.Mode {
		case "none":
			return obj{"type": "none"}
		case "required":
			tc["type"] = "any"
		case "tool":
			tc["type"], tc["name"] = "tool", c.Name
		}
	}
	if r.ParallelToolCalls != nil && !*r.ParallelToolCalls {
		tc["disable_parallel_tool_use"] = true
	}
	return tc
}

// anthropicBlocks renders parts as content blocks.
func anthropicBlocks(ps []Part) []any {
	out := make([]any, 0, len(ps))
	for _, p := range ps {
		var b obj
		switch p.Kind {
		case PartText, PartRefusal: // Anthropic has no refusal block: the refusal is what the model said
			if p.Text == "" {
				continue // Anthropic refuses empty text blocks ("text content blocks must be non-empty")
			}
			b = obj{"type": "text", "text": p.Text}
		case PartImage:
			if p.Image.URL != "" {
				b = obj{"type": "image", "source": obj{"type": "url", "url": p.Image.URL}}
			} else {
				b = obj{"type": "image", "source": obj{"type": "base64", "media_type": p.Image.MediaType, "data": p.Image.Data}}
			}
		case PartToolCall:
			b = obj{"type": "tool_use", "id": p.Call.ID, "name": p.Call.Name, "input": p.Call.Args}
		case PartToolResult:
			b = obj{"type": "tool_result", "tool_use_id": p.Result.CallID}
			if content := anthropicBlocks(p.Result.Content); len(content) > 0 {
				b["content"] = content // optional: a tool that printed nothing has none
			}
			if p.Result.IsError {
				b["is_error"] = true
			}
		case PartThinking:
			if p.Signature == "" {
				continue // Anthropic rejects unsigned thinking; it came from another provider
			}
			b = obj{"type": "thinking", "thinking": p.Text, "signature": p.Signature}
		case PartRedactedThinking:
			b = obj{"type": "redacted_thinking", "data": p.Text}
		case PartDocument:
			b = p.anthropicDocument()
		default:
			continue
		}
		if p.Cache != nil {
			b["cache_control"] = p.Cache
		}
		out = append(out, b)
	}
	return out
}
