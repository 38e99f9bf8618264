package convert

import (
	"encoding/json"
	"strings"

	"github.com/strait/strait/proto/llmapi"
)

// The Responses API as the provider's dialect, for OpenAI models served only
// there (o1-pro, o3-pro, the codex models, …): Chat, Anthropic and Gemini
// clients reach them through this encoder and the decoders below.
//
// Reasoning items go back to OpenAI only as it sent them: with their id and
// encrypted_content (requested with include, since nothing is stored). Both
// travel to the client packed in the one signature field the other
// dialects have: "<rs_id>:<encrypted_content>". A signature without that
// shape came from another provider and is not sent.

func packReasoning(id, encrypted string) string {
	if encrypted == "" {
		return ""
	}
	return id + ":" + encrypted
}

// unpackReasoning splits a signature made by packReasoning; ok is false for
// another provider's signature.
func unpackReasoning(sig string) (id, encrypted string, ok bool) {
	id, encrypted, ok = strings.Cut(sig, ":")
	return id, encrypted, ok && strings.HasPrefix(id, "rs_") && encrypted != ""
}

// withoutOpenAIReasoning leaves out thinking that OpenAI produced: no other
// provider can read its encrypted content.
func withoutOpenAIReasoning(ps []Part) []Part {
	out := ps[:0:0]
	for _, p := range ps {
		if _, _, openai := unpackReasoning(p.Signature); p.Kind == PartThinking && openai {
			continue
		}
		out = append(out, p)
	}
	return out
}

// effort is an OpenAI reasoning effort for a thinking request.
func (t *Thinking) effort() string {
	if t.Effort != "" {
		return t.Effort
	}
	switch b := t.budget(); {
	case b <= 2048:
		return "low"
	case b <= 8192:
		return "medium"
	}
	return "high"
}

func encodeResponsesRequest(r *Request) (string, string, []byte, error) {
	out := obj{"model": r.Model, "store": false}
	if len(r.System) > 0 {
		out["instructions"] = paragraphs(r.System)
	}
	input := []any{}
	for _, m := range r.Messages {
		input = appendResponsesItems(input, m)
	}
	out["input"] = input
	if len(r.Tools) > 0 {
		out["tools"] = r.toolDecls("parameters", func(_ Tool, fn obj) any { fn["type"] = "function"; return fn })
	}
	if tc := r.ToolChoice; tc != nil {
		if tc.Mode == "tool" {
			out["tool_choice"] = obj{"type": "function", "name": tc.Name}
		} else {
			out["tool_choice"] = tc.Mode
		}
	}
	if r.ParallelToolCalls != nil && len(r.Tools) > 0 {
		out["parallel_tool_calls"] = *r.ParallelToolCalls
	}
	// The Responses API has no stop sequences, top_k, seed or penalties;
	// they are left out (as the compatibility table says) rather than
	// failing every client that sends one by habit.
	setCommon(out, &Request{MaxTokens: r.MaxTokens, Temperature: r.Temperature, TopP: r.TopP}, "max_output_tokens", "temperature", "top_p", "")
	if f := r.Format; f != nil {
		format := obj{"type": "json_object"}
		if f.Schema != nil {
			format = obj{"type": "json_schema", "name": cmpOr(f.Name, "response"), "schema": f.Schema}
		}
		out["text"] = obj{"format": format}
	}
	if r.Thinking != nil {
		out["reasoning"] = obj{"effort": r.Thinking.effort(), "summary": "auto"}
		out["include"] = []string{"reasoning.encrypted_content"}
	}
	if r.Stream {
		out["stream"] = true
	}
	return "/v1/responses", "", mustJSON(out), nil
}

// appendResponsesItems renders one message as input items: its text and
// images as a message item, each call, result and reasoning as its own.
func appendResponsesItems(items []any, m Message) []any {
	var content []any
	flush := func() {
		if len(content) > 0 {
			items = append(items, obj{"type": "message", "role": string(m.Role), "content": content})
			content = nil
		}
	}
	for _, p := range m.Parts {
		switch p.Kind {
		case PartText:
			if m.Role == Assistant {
				content = append(content, obj{"type": "output_text", "text": p.Text})
			} else {
				content = append(content, obj{"type": "input_text", "text": p.Text})
			}
		case PartImage:
			content = append(content, obj{"type": "input_image", "image_url": p.Image.url()})
		case PartDocument:
			content = append(content, p.responsesFile())
		case PartToolCall:
			flush()
			items = append(items, obj{"type": "function_call", "call_id": p.Call.ID, "name": p.Call.Name, "arguments": string(p.Call.Args)})
		case PartToolResult:
			flush()
			items = append(items, obj{"type": "function_call_output", "call_id": p.Result.CallID, "output": responsesResult(p.Result)})
		case PartThinking:
			id, enc, ok := unpackReasoning(p.Signature)
			if !ok {
				continue // another provider's thinking: OpenAI cannot read it
			}
			flush()
			summary := []any{}
			if p.Text != "" {
				summary = []any{obj{"type": "summary_text", "text": p.Text}}
			}
			items = append(items, obj{"type": "reasoning", "id": id, "summary": summary, "encrypted_content": enc})
		}
	}
	flush()
	return items
}

// responsesResult is a function call's output: its text, or, when the
// result holds images or documents, the list of input parts the API takes
// there, so that they reach the model too.
func responsesResult(res *ToolResult) any {
	var media []any
	for _, p := range res.Content {
		switch p.Kind {
		case PartImage:
			media = append(media, obj{"type": "input_image", "image_url": p.Image.url()})
		case PartDocument:
			media = append(media, p.responsesFile())
		}
	}
	text := resultText(res)
	if media == nil {
		return text
	}
	if text != "" {
		media = append([]any{obj{"type": "input_text", "text": text}}, media...)
	}
	return media
}

// responsesOutput is a Responses API response object (whole, or inside the
// created / completed stream events).
type responsesOutput struct {
	ID     string `json:"id"`
	Model  string `json:"model"`
	Status string `json:"status"`
	Output []struct {
		Type      string `json:"type"`
		ID        string `json:"id"`
		CallID    string `json:"call_id"`
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
		Content   []struct {
			Type    string `json:"type"`
			Text    string `json:"text"`
			Refusal string `json:"refusal"`
		} `json:"content"`
		Summary []struct {
			Text string `json:"text"`
		} `json:"summary"`
		EncryptedContent string `json:"encrypted_content"`
	} `json:"output"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Usage *llmapi.ResponsesUsage `json:"usage"`
	Error json.RawMessage        `json:"error"`
}

func (o *responsesOutput) usage() Usage {
	if o.Usage == nil {
		return Usage{}
	}
	return o.Usage.Normal()
}

// stop is why the response ended; sawTool when it made a call.
func (o *responsesOutput) stop(sawTool bool) Stop {
	if o.Status == "incomplete" {
		if d := o.IncompleteDetails; d != nil && d.Reason == "content_filter" {
			return StopFilter
		}
		return StopMaxTokens
	}
	if sawTool {
		return StopTool
	}
	return StopEnd
}

func decodeResponsesResponse(body []byte) (*Response, error) {
	var in responsesOutput
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	out := &Response{ID: in.ID, Model: in.Model, Usage: in.usage()}
	sawTool := false
	for _, it := range in.Output {
		switch it.Type {
		case "message":
			for _, c := range it.Content {
				if c.Type == "refusal" {
					out.Parts = append(out.Parts, Part{Kind: PartRefusal, Text: c.Refusal})
				} else {
					out.Parts = append(out.Parts, Part{Kind: PartText, Text: c.Text})
				}
			}
		case "reasoning":
			var text strings.Builder
			for _, s := range it.Summary {
				text.WriteString(s.Text)
			}
			out.Parts = append(out.Parts, Part{Kind: PartThinking, Text: text.String(), Signature: packReasoning(it.ID, it.EncryptedContent)})
		case "function_call":
			sawTool = true
			out.Parts = append(out.Parts, Part{Kind: PartToolCall, Call: &ToolCall{ID: it.CallID, Name: it.Name, Args: callArgs(it.Arguments)}})
		}
	}
	out.Stop = in.stop(sawTool)
	return out, nil
}

// responsesEvent is any Responses stream event.
type responsesEvent struct {
	Type        string           `json:"type"`
	OutputIndex int              `json:"output_index"`
	Delta       string           `json:"delta"`
	Response    *responsesOutput `json:"response"`
	// Part is the content part a response.content_part.added event opens.
	Part *struct {
		Type string `json:"type"`
	} `json:"part"`
	Item *struct {
		Type             string `json:"type"`
		ID               string `json:"id"`
		CallID           string `json:"call_id"`
		Name             string `json:"name"`
		EncryptedContent string `json:"encrypted_content"`
	} `json:"item"`
}

// responsesDecoder turns Responses stream events into neutral events. Output
// items stream one after the other, so each is one block, except that a
// message item's content parts (its text, or a refusal) are a block each,
// of their own kind. A reasoning item's encrypted content arrives with the
// item's done event and goes out as the block's signature.
type responsesDecoder struct {
	blocks
	sawTool bool
}

func newResponsesDecoder(emit emitFunc) *responsesDecoder {
	return &responsesDecoder{blocks: newBlocks(emit)}
}

var responsesBlockTypes = map[string]BlockType{"message": BlockText, "reasoning": BlockThinking, "function_call": BlockTool}

// messagePartBlocks are the blocks of a message item's content parts: a
// refusal keeps its kind, for the clients whose API has a refusal form.
var messagePartBlocks = map[string]BlockType{"output_text": BlockText, "refusal": BlockRefusal}

func (d *responsesDecoder) event(name string, data []byte) error {
	if d.done {
		return nil
	}
	var ev responsesEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return errBadEvent(err)
	}
	if ev.Type == "" {
		ev.Type = name
	}
	switch ev.Type {
	case "response.created":
		if ev.Response == nil {
			return errBadEvent(errMissing("response"))
		}
		return d.emit(Event{Type: EvStart, ID: ev.Response.ID, Model: ev.Response.Model})
	case "response.output_item.added":
		if ev.Item == nil {
			return errBadEvent(errMissing("item"))
		}
		t, ok := responsesBlockTypes[ev.Item.Type]
		if !ok {
			return nil // built-in tool items do not convert
		}
		switch t {
		case BlockText:
			return d.closeOpen() // its content parts open the blocks
		case BlockTool:
			d.sawTool = true
		}
		_, err := d.start(t, ev.Item.CallID, ev.Item.Name)
		return err
	case "response.content_part.added":
		if ev.Part == nil {
			return nil
		}
		if t, ok := messagePartBlocks[ev.Part.Type]; ok {
			return d.ensure(t)
		}
		return nil
	case "response.output_text.delta":
		return d.text(BlockText, ev.Delta)
	case "response.refusal.delta":
		return d.text(BlockRefusal, ev.Delta)
	case "response.reasoning_summary_text.delta", "response.function_call_arguments.delta":
		if d.open < 0 || ev.Delta == "" {
			return nil
		}
		return d.emit(Event{Type: EvDelta, Index: d.open, Text: ev.Delta})
	case "response.reasoning_summary_part.added":
		return nil
	case "response.output_item.done":
		if ev.Item != nil && ev.Item.Type == "reasoning" && d.open >= 0 {
			if sig := packReasoning(ev.Item.ID, ev.Item.EncryptedContent); sig != "" {
				if err := d.emit(Event{Type: EvDelta, Index: d.open, Signature: sig}); err != nil {
					return err
				}
			}
		}
		return d.closeOpen()
	case "response.completed", "response.incomplete":
		if ev.Response == nil {
			return errBadEvent(errMissing("response"))
		}
		if err := d.closeOpen(); err != nil {
			return err
		}
		d.finished = true
		if err := d.emit(Event{Type: EvFinish, Stop: ev.Response.stop(d.sawTool)}); err != nil {
			return err
		}
		if err := d.emit(Event{Type: EvUsage, Usage: ev.Response.usage()}); err != nil {
			return err
		}
		return d.end()
	case "response.failed":
		d.done = true
		body := []byte(`{}`)
		if ev.Response != nil && len(ev.Response.Error) > 0 {
			body = mustJSON(obj{"error": ev.Response.Error})
		}
		return d.emit(Event{Type: EvError, Err: ParseError(0, body)})
	case "error":
		d.done = true
		return d.emit(Event{Type: EvError, Err: ParseError(0, mustJSON(obj{"error": json.RawMessage(data)}))})
	}
	return nil
}
