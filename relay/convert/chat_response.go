package convert

import (
	"encoding/json"

	"github.com/strait/strait/proto/llmapi"
)

type chatResponse struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Message      chatMessage `json:"message"`
		Delta        chatMessage `json:"delta"`
		FinishReason string      `json:"finish_reason"`
	} `json:"choices"`
	Usage *llmapi.ChatUsage `json:"usage"`
	Error json.RawMessage   `json:"error"`
}

func chatStop(reason string, sawTool bool) Stop {
	switch reason {
	case "length":
		return StopMaxTokens
	case "tool_calls", "function_call":
		return StopTool
	case "content_filter":
		return StopFilter
	}
	if sawTool {
		return StopTool // some compatible servers say "stop" after a tool call
	}
	return StopEnd
}

var chatFinish = map[Stop]string{StopEnd: "stop", StopSequence: "stop", StopMaxTokens: "length", StopTool: "tool_calls",
	StopFilter: "content_filter", StopNone: "stop"}

func decodeChatResponse(body []byte) (*Response, error) {
	var in chatResponse
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	out := &Response{ID: in.ID, Model: in.Model}
	if in.Usage != nil {
		out.Usage = in.Usage.Normal()
	}
	if len(in.Choices) == 0 {
		return out, nil
	}
	c := in.Choices[0]
	m := c.Message
	if t := m.thinking(); t != "" {
		out.Parts = append(out.Parts, Part{Kind: PartThinking, Text: t})
	}
	parts, err := chatContent(m.Content)
	if err != nil {
		return nil, err
	}
	out.Parts = append(out.Parts, parts...)
	if m.Refusal != "" {
		out.Parts = append(out.Parts, Part{Kind: PartRefusal, Text: m.Refusal})
	}
	for _, tc := range m.ToolCalls {
		args, err := argsObject(tc.Function.Arguments)
		if err != nil {
			args = mustJSON(obj{"_raw_arguments": tc.Function.Arguments}) // the model wrote broken JSON; keep it visible
		}
		out.Parts = append(out.Parts, Part{Kind: PartToolCall, Call: &ToolCall{ID: tc.ID, Name: tc.Function.Name, Args: args}})
	}
	out.Stop = chatStop(c.FinishReason, len(m.ToolCalls) > 0)
	return out, nil
}

func encodeChatResponse(r *Response, _ *Request) []byte {
	msg := obj{"role": "assistant", "content": nil, "refusal": nil}
	var text, refusal string
	var calls, blocks, images []any
	for _, p := range r.Parts {
		switch p.Kind {
		case PartText:
			text += p.Text
		case PartImage:
			images = append(images, chatImage(p.Image))
		case PartRefusal:
			refusal += p.Text
		case PartThinking:
			msg["reasoning_content"] = p.Text
			blocks = append(blocks, thinkingBlock{Type: "thinking", Thinking: p.Text, Signature: p.Signature})
		case PartRedactedThinking:
			blocks = append(blocks, thinkingBlock{Type: "redacted_thinking", Data: p.Text})
		case PartToolCall:
			calls = append(calls, obj{"id": p.Call.ID, "type": "function", "function": obj{"name": p.Call.Name, "arguments": string(p.Call.Args)}})
		}
	}
	if refusal != "" {
		msg["refusal"] = refusal
	}
	if text != "" || calls == nil && refusal == "" {
		msg["content"] = text // null when the answer is only a refusal or calls, as OpenAI sends it
	}
	if calls != nil {
		msg["tool_calls"] = calls
	}
	if blocks != nil {
		msg["thinking_blocks"] = blocks
	}
	if images != nil {
		msg["images"] = images
	}
	return mustJSON(obj{
		"id": r.ID, "object": "chat.completion", "created": now().Unix(), "model": r.Model,
		"choices": []any{obj{"index": 0, "message": msg, "logprobs": nil, "finish_reason": chatFinish[r.Stop]}},
		"usage":   llmapi.ChatUsageOf(r.Usage),
	})
}

// chatDecoder turns Chat Completions chunks into neutral events.
type chatDecoder struct {
	blocks
	started bool
	tools   map[int]int // OpenAI tool_calls index → block index
	sawTool bool
}

func newChatDecoder(emit emitFunc) *chatDecoder {
	return &chatDecoder{blocks: newBlocks(emit), tools: map[int]int{}}
}

func (d *chatDecoder) event(_ string, data []byte) error {
	if string(data) == "[DONE]" {
		return d.end()
	}
	if d.done {
		return nil
	}
	var c chatResponse
	if err := json.Unmarshal(data, &c); err != nil {
		return errBadEvent(err)
	}
	if len(c.Error) > 0 {
		d.done = true
		return d.emit(Event{Type: EvError, Err: ParseError(0, data)})
	}
	if !d.started {
		d.started = true
		if err := d.emit(Event{Type: EvStart, ID: c.ID, Model: c.Model}); err != nil {
			return err
		}
	}
	for _, ch := range c.Choices {
		if err := d.delta(ch.Delta); err != nil {
			return err
		}
		if ch.FinishReason != "" {
			if err := d.closeOpen(); err != nil {
				return err
			}
			d.finished = true
			if err := d.emit(Event{Type: EvFinish, Stop: chatStop(ch.FinishReason, d.sawTool)}); err != nil {
				return err
			}
		}
		break // only the first choice converts (n > 1 is refused)
	}
	if c.Usage != nil {
		return d.emit(Event{Type: EvUsage, Usage: c.Usage.Normal()})
	}
	return nil
}

// thinking is a provider's reasoning text in m, under either name Chat
// providers use.
func (m *chatMessage) thinking() string {
	if m.ReasoningContent != "" || len(m.Reasoning) == 0 {
		return m.ReasoningContent
	}
	var s string
	_ = json.Unmarshal(m.Reasoning, &s) // not a string: not reasoning text
	return s
}

func (d *chatDecoder) delta(m chatMessage) error {
	var text string
	if len(m.Content) > 0 {
		_ = json.Unmarshal(m.Content, &text) // not a string: no text in this chunk
	}
	for _, x := range []struct {
		t    BlockType
		text string
	}{{BlockThinking, m.thinking()}, {BlockText, text}, {BlockRefusal, m.Refusal}} {
		if err := d.text(x.t, x.text); err != nil {
			return err
		}
	}
	for i, tc := range m.ToolCalls {
		idx := i
		if tc.Index != nil {
			idx = *tc.Index
		}
		block, known := d.tools[idx]
		if !known {
			var err error
			if block, err = d.start(BlockTool, tc.ID, tc.Function.Name); err != nil {
				return err
			}
			d.tools[idx], d.sawTool = block, true
		}
		if tc.Function.Arguments != "" {
			if err := d.emit(Event{Type: EvDelta, Index: block, Text: tc.Function.Arguments}); err != nil {
				return err
			}
		}
	}
	return nil
}

// chatEncoder writes neutral events as Chat Completions chunks.
type chatEncoder struct {
	w            writeFunc
	includeUsage bool
	id, model    string
	created      int64
	tools        map[int]int // block index → tool_calls index
	kinds        map[int]BlockType
	stop         Stop
	usage        Usage
}

func newChatEncoder(w writeFunc, req *Request) *chatEncoder {
	return &chatEncoder{w: w, includeUsage: req.IncludeUsage, model: req.Model, tools: map[int]int{}, kinds: map[int]BlockType{}}
}

func (e *chatEncoder) chunk(delta obj, finish any) error {
	c := obj{"id": e.id, "object": "chat.completion.chunk", "created": e.created, "model": e.model,
		"choices": []any{obj{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}}
	if e.includeUsage {
		c["usage"] = nil
	}
	return e.w(sseData("", c))
}

func (e *chatEncoder) event(ev Event) error {
	switch ev.Type {
	case EvStart:
		e.id, e.created = cmpOr(ev.ID, "chatcmpl-"+newID()), now().Unix()
		if ev.Model != "" {
			e.model = ev.Model
		}
		return e.chunk(obj{"role": "assistant", "content": ""}, nil)
	case EvBlockStart:
		e.kinds[ev.Index] = ev.Block
		switch ev.Block {
		case BlockTool:
			n := len(e.tools)
			e.tools[ev.Index] = n
			return e.chunk(obj{"tool_calls": []any{obj{"index": n, "id": ev.ID, "type": "function",
				"function": obj{"name": ev.Name, "arguments": ""}}}}, nil)
		case BlockRedacted:
			return e.chunk(obj{"thinking_blocks": []any{thinkingBlock{Type: "redacted_thinking", Data: ev.ID}}}, nil)
		case BlockImage:
			return e.chunk(obj{"images": []any{chatImage(&Image{MediaType: ev.Name, Data: ev.Text})}}, nil)
		}
	case EvDelta:
		if n, ok := e.tools[ev.Index]; ok {
			return e.chunk(obj{"tool_calls": []any{obj{"index": n, "function": obj{"arguments": ev.Text}}}}, nil)
		}
		if ev.Signature != "" {
			return e.chunk(obj{"thinking_blocks": []any{thinkingBlock{Type: "thinking", Signature: ev.Signature}}}, nil)
		}
		switch e.kinds[ev.Index] {
		case BlockThinking:
			return e.chunk(obj{"reasoning_content": ev.Text}, nil)
		case BlockRefusal:
			return e.chunk(obj{"refusal": ev.Text}, nil)
		}
		return e.chunk(obj{"content": ev.Text}, nil)
	case EvFinish:
		e.stop = ev.Stop
		return e.chunk(obj{}, chatFinish[ev.Stop])
	case EvUsage:
		e.usage = ev.Usage
	case EvEnd:
		if e.includeUsage {
			c := obj{"id": e.id, "object": "chat.completion.chunk", "created": e.created, "model": e.model,
				"choices": []any{}, "usage": llmapi.ChatUsageOf(e.usage)}
			if err := e.w(sseData("", c)); err != nil {
				return err
			}
		}
		return e.w([]byte("data: [DONE]\n\n"))
	case EvError:
		return e.w(llmapi.ErrorEvent(llmapi.OpenAI, ev.Err.Body(llmapi.ChatCompletions)))
	}
	return nil
}
