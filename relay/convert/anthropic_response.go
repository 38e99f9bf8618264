package convert

import (
	"encoding/json"

	"github.com/strait/strait/proto/llmapi"
)

type anthropicResponse struct {
	ID           string                `json:"id"`
	Model        string                `json:"model"`
	Content      []anthropicBlock      `json:"content"`
	StopReason   string                `json:"stop_reason"`
	StopSequence string                `json:"stop_sequence"`
	Usage        llmapi.AnthropicUsage `json:"usage"`
}

var anthropicStops = map[string]Stop{"end_turn": StopEnd, "max_tokens": StopMaxTokens, "stop_sequence": StopSequence,
	"tool_use": StopTool, "refusal": StopFilter, "pause_turn": StopEnd, "model_context_window_exceeded": StopMaxTokens}

var anthropicStopNames = map[Stop]string{StopEnd: "end_turn", StopNone: "end_turn", StopMaxTokens: "max_tokens",
	StopSequence: "stop_sequence", StopTool: "tool_use", StopFilter: "refusal"}

func decodeAnthropicResponse(body []byte) (*Response, error) {
	var in anthropicResponse
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	out := &Response{ID: in.ID, Model: in.Model, Stop: anthropicStops[in.StopReason], StopSeq: in.StopSequence, Usage: in.Usage.Normal()}
	for _, b := range in.Content {
		if p, err := b.part(); err == nil {
			out.Parts = append(out.Parts, p)
		}
	}
	return out, nil
}

func encodeAnthropicResponse(r *Response, _ *Request) []byte {
	var seq any
	if r.StopSeq != "" {
		seq = r.StopSeq
	}
	return mustJSON(obj{"id": anthropicID(r.ID), "type": "message", "role": "assistant", "model": r.Model,
		"content": anthropicBlocks(anthropicAnswerParts(r.Parts)), "stop_reason": anthropicStopNames[r.Stop], "stop_sequence": seq,
		"usage": llmapi.AnthropicUsageOf(r.Usage)})
}

func anthropicID(id string) string {
	if id == "" {
		return "msg_" + newID()
	}
	return id
}

// anthropicEvent is any Messages stream event.
type anthropicEvent struct {
	Type    string `json:"type"`
	Index   int    `json:"index"`
	Message *struct {
		ID    string                `json:"id"`
		Model string                `json:"model"`
		Usage llmapi.AnthropicUsage `json:"usage"`
	} `json:"message"`
	ContentBlock *anthropicBlock `json:"content_block"`
	Delta        *struct {
		Type         string `json:"type"`
		Text         string `json:"text"`
		PartialJSON  string `json:"partial_json"`
		Thinking     string `json:"thinking"`
		Signature    string `json:"signature"`
		StopReason   string `json:"stop_reason"`
		StopSequence string `json:"stop_sequence"`
	} `json:"delta"`
	Usage *struct {
		InputTokens              *int64 `json:"input_tokens"`
		CacheCreationInputTokens *int64 `json:"cache_creation_input_tokens"`
		CacheReadInputTokens     *int64 `json:"cache_read_input_tokens"`
		OutputTokens             int64  `json:"output_tokens"`
	} `json:"usage"`
}

// anthropicDecoder turns Messages stream events into neutral events; the
// API's own events are already blocks, so the state is the usage so far
// and whether message_stop arrived.
type anthropicDecoder struct {
	emit  emitFunc
	usage llmapi.AnthropicUsage
	done  bool
}

func newAnthropicDecoder(emit emitFunc) *anthropicDecoder { return &anthropicDecoder{emit: emit} }

var anthropicBlockTypes = map[string]BlockType{"text": BlockText, "thinking": BlockThinking, "tool_use": BlockTool,
	"redacted_thinking": BlockRedacted}

func (d *anthropicDecoder) event(name string, data []byte) error {
	if d.done {
		return nil
	}
	var ev anthropicEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return errBadEvent(err)
	}
	if ev.Type == "" {
		ev.Type = name
	}
	switch ev.Type {
	case "message_start":
		if ev.Message == nil {
			return errBadEvent(errMissing("message"))
		}
		d.usage = ev.Message.Usage
		return d.emit(Event{Type: EvStart, ID: ev.Message.ID, Model: ev.Message.Model, Usage: d.usage.Normal()})
	case "content_block_start":
		b := ev.ContentBlock
		if b == nil {
			return errBadEvent(errMissing("content_block"))
		}
		t, ok := anthropicBlockTypes[b.Type]
		if !ok {
			t = BlockText // server tool blocks and the like: an empty text block keeps indexes aligned
		}
		start := Event{Type: EvBlockStart, Index: ev.Index, Block: t, ID: b.ID, Name: b.Name}
		if t == BlockRedacted {
			start.ID = b.Data
		}
		if err := d.emit(start); err != nil {
			return err
		}
		if b.Type == "text" && b.Text != "" {
			return d.emit(Event{Type: EvDelta, Index: ev.Index, Text: b.Text})
		}
		return nil
	case "content_block_delta":
		x := ev.Delta
		if x == nil {
			return errBadEvent(errMissing("delta"))
		}
		out := Event{Type: EvDelta, Index: ev.Index}
		switch x.Type {
		case "text_delta":
			out.Text = x.Text
		case "input_json_delta":
			out.Text = x.PartialJSON
		case "thinking_delta":
			out.Text = x.Thinking
		case "signature_delta":
			out.Signature = x.Signature
		default:
			return nil // citations and future deltas do not convert
		}
		return d.emit(out)
	case "content_block_stop":
		return d.emit(Event{Type: EvBlockStop, Index: ev.Index})
	case "message_delta":
		if u := ev.Usage; u != nil {
			d.usage.OutputTokens = u.OutputTokens
			setIf(&d.usage.InputTokens, u.InputTokens)
			setIf(&d.usage.CacheCreationInputTokens, u.CacheCreationInputTokens)
			setIf(&d.usage.CacheReadInputTokens, u.CacheReadInputTokens)
		}
		if ev.Delta != nil && ev.Delta.StopReason != "" {
			if err := d.emit(Event{Type: EvFinish, Stop: anthropicStops[ev.Delta.StopReason], StopSeq: ev.Delta.StopSequence}); err != nil {
				return err
			}
		}
		return d.emit(Event{Type: EvUsage, Usage: d.usage.Normal()})
	case "message_stop":
		d.done = true
		return d.emit(Event{Type: EvEnd})
	case "error":
		d.done = true
		return d.emit(Event{Type: EvError, Err: ParseError(0, data)})
	}
	return nil // ping and unknown events
}

func setIf(dst *int64, v *int64) {
	if v != nil {
		*dst = *v
	}
}

func (d *anthropicDecoder) end() error {
	if !d.done {
		return ErrTruncated
	}
	return nil
}

type missingField string

func (m missingField) Error() string { return "missing field " + string(m) }

func errMissing(f string) error { return missingField(f) }

// anthropicEncoder writes neutral events as a Messages stream. It numbers
// blocks itself, so the client always sees 0, 1, 2, … whatever the source.
type anthropicEncoder struct {
	w       writeFunc
	model   string
	index   map[int]int       // neutral block index → Anthropic index
	types   map[int]BlockType // Anthropic index → block type
	open    int               // Anthropic index of the open block, or -1
	stop    Stop
	stopSeq string
	usage   Usage
}

func newAnthropicEncoder(w writeFunc, req *Request) *anthropicEncoder {
	return &anthropicEncoder{w: w, model: req.Model, index: map[int]int{}, types: map[int]BlockType{}, open: -1}
}

func (e *anthropicEncoder) send(typ string, fields obj) error {
	fields["type"] = typ
	return e.w(sseData(typ, fields))
}

func (e *anthropicEncoder) event(ev Event) error {
	switch ev.Type {
	case EvStart:
		e.usage = ev.Usage
		model := cmpOr(ev.Model, e.model)
		u := llmapi.AnthropicUsageOf(e.usage)
		return e.send("message_start", obj{"message": obj{"id": anthropicID(ev.ID), "type": "message", "role": "assistant",
			"model": model, "content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": u}})
	case EvBlockStart:
		if err := e.closeOpen(); err != nil {
			return err
		}
		i := len(e.index)
		e.index[ev.Index], e.types[i], e.open = i, ev.Block, i
		var block obj
		switch ev.Block {
		case BlockText, BlockRefusal, BlockImage:
			block = obj{"type": "text", "text": ""}
		case BlockThinking:
			block = obj{"type": "thinking", "thinking": "", "signature": ""}
		case BlockTool:
			block = obj{"type": "tool_use", "id": ev.ID, "name": ev.Name, "input": obj{}}
		case BlockRedacted:
			block = obj{"type": "redacted_thinking", "data": ev.ID}
		}
		if err := e.send("content_block_start", obj{"index": i, "content_block": block}); err != nil || ev.Block != BlockImage {
			return err
		}
		// An answer cannot hold an image: its block says one was left out.
		return e.send("content_block_delta", obj{"index": i, "delta": obj{"type": "text_delta", "text": imageOmitted(ev.Name)}})
	case EvDelta:
		i, ok := e.index[ev.Index]
		if !ok {
			return nil
		}
		var d obj
		switch {
		case ev.Signature != "":
			d = obj{"type": "signature_delta", "signature": ev.Signature}
		case e.blockType(i) == BlockTool:
			d = obj{"type": "input_json_delta", "partial_json": ev.Text}
		case e.blockType(i) == BlockThinking:
			d = obj{"type": "thinking_delta", "thinking": ev.Text}
		default:
			d = obj{"type": "text_delta", "text": ev.Text}
		}
		return e.send("content_block_delta", obj{"index": i, "delta": d})
	case EvBlockStop:
		if i, ok := e.index[ev.Index]; ok && i == e.open {
			return e.closeOpen()
		}
	case EvFinish:
		e.stop, e.stopSeq = ev.Stop, ev.StopSeq
	case EvUsage:
		e.usage = ev.Usage
	case EvEnd:
		if err := e.closeOpen(); err != nil {
			return err
		}
		var seq any
		if e.stopSeq != "" {
			seq = e.stopSeq
		}
		if err := e.send("message_delta", obj{"delta": obj{"stop_reason": anthropicStopNames[e.stop], "stop_sequence": seq},
			"usage": llmapi.AnthropicUsageOf(e.usage)}); err != nil {
			return err
		}
		return e.send("message_stop", obj{})
	case EvError:
		return e.w(llmapi.ErrorEvent(llmapi.Anthropic, ev.Err.Body(llmapi.Messages)))
	}
	return nil
}

func (e *anthropicEncoder) blockType(i int) BlockType { return e.types[i] }

func (e *anthropicEncoder) closeOpen() error {
	if e.open < 0 {
		return nil
	}
	i := e.open
	e.open = -1
	return e.send("content_block_stop", obj{"index": i})
}
