package convert

import (
	"strings"

	"github.com/strait/strait/proto/llmapi"
)

// responsesEnvelope is the response object around the output items.
func responsesEnvelope(id, model, status string, output []any, stop Stop, usage *Usage, req *Request) obj {
	var incomplete, u any
	if status == "incomplete" {
		reason := "max_output_tokens"
		if stop == StopFilter {
			reason = "content_filter"
		}
		incomplete = obj{"reason": reason}
	}
	if usage != nil {
		u = llmapi.ResponsesUsageOf(*usage)
	}
	var maxOut any
	if req.MaxTokens > 0 {
		maxOut = req.MaxTokens
	}
	return obj{"id": id, "object": "response", "created_at": now().Unix(), "status": status, "model": model,
		"output": output, "incomplete_details": incomplete, "error": nil, "usage": u, "max_output_tokens": maxOut,
		"parallel_tool_calls": req.ParallelToolCalls == nil || *req.ParallelToolCalls, "tool_choice": "auto", "tools": []any{},
		"text": obj{"format": obj{"type": "text"}}, "metadata": obj{}}
}

func responsesStatus(s Stop) string {
	if s == StopMaxTokens || s == StopFilter {
		return "incomplete"
	}
	return "completed"
}

func responsesID(id string) string {
	if strings.HasPrefix(id, "resp_") {
		return id
	}
	return "resp_" + newID()
}

func outputText(text string) obj {
	return obj{"type": "output_text", "text": text, "annotations": []any{}}
}

// refusalPart is the content part the Responses API gives a refusal.
func refusalPart(text string) obj {
	return obj{"type": "refusal", "refusal": text}
}

// messagePart is the content part of a message block: its text, or its
// refusal.
func messagePart(kind BlockType, text string) obj {
	if kind == BlockRefusal {
		return refusalPart(text)
	}
	return outputText(text)
}

// messageItem is a message output item; part is its content, nil while the
// item is in progress.
func messageItem(id, status string, part obj) obj {
	content := []any{}
	if part != nil {
		content = []any{part}
	}
	return obj{"id": id, "type": "message", "status": status, "role": "assistant", "content": content}
}

func callItem(id, status, callID, name, args string) obj {
	return obj{"id": id, "type": "function_call", "status": status, "call_id": callID, "name": name, "arguments": args}
}

func reasoningItem(id, text, signature string) obj {
	summary := []any{}
	if text != "" {
		summary = []any{obj{"type": "summary_text", "text": text}}
	}
	it := obj{"id": id, "type": "reasoning", "summary": summary}
	if signature != "" {
		it["encrypted_content"] = signature
	}
	return it
}

func encodeResponsesResponse(r *Response, req *Request) []byte {
	var out []any
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			out = append(out, messageItem("msg_"+newID(), "completed", outputText(text.String())))
			text.Reset()
		}
	}
	for _, p := range r.Parts {
		switch p.Kind {
		case PartText:
			text.WriteString(p.Text)
		case PartRefusal:
			flush()
			out = append(out, messageItem("msg_"+newID(), "completed", refusalPart(p.Text)))
		case PartThinking:
			flush()
			out = append(out, reasoningItem("rs_"+newID(), p.Text, p.Signature))
		case PartRedactedThinking:
			flush()
			out = append(out, reasoningItem("rs_"+newID(), "", redactedPrefix+p.Text))
		case PartToolCall:
			flush()
			out = append(out, callItem("fc_"+newID(), "completed", p.Call.ID, p.Call.Name, string(p.Call.Args)))
		case PartImage:
			flush()
			out = append(out, imageItem("ig_"+newID(), "completed", p.Image.Data))
		}
	}
	flush()
	if out == nil {
		out = []any{}
	}
	return mustJSON(responsesEnvelope(responsesID(r.ID), r.Model, responsesStatus(r.Stop), out, r.Stop, &r.Usage, req))
}

// responsesItemState is one output item while it streams.
type responsesItemState struct {
	id, callID, name string
	kind             BlockType
	output           int // output_index
	text, sig        strings.Builder
}

// responsesEncoder writes neutral events as a Responses API stream. Deltas
// go out at once; the text of each item is also kept, because the *.done
// events and response.completed repeat it.
type responsesEncoder struct {
	w     writeFunc
	req   *Request
	seq   int
	id    string
	model string
	items map[int]*responsesItemState // by neutral block index
	done  []any                       // finished output items
	stop  Stop
	usage Usage
}

func newResponsesEncoder(w writeFunc, req *Request) *responsesEncoder {
	return &responsesEncoder{w: w, req: req, model: req.Model, items: map[int]*responsesItemState{}}
}

func (e *responsesEncoder) send(typ string, fields obj) error {
	fields["type"], fields["sequence_number"] = typ, e.seq
	e.seq++
	return e.w(sseData(typ, fields))
}

func (e *responsesEncoder) envelope(status string, usage *Usage) obj {
	out := e.done
	if out == nil {
		out = []any{}
	}
	return responsesEnvelope(e.id, e.model, status, out, e.stop, usage, e.req)
}

func (e *responsesEncoder) event(ev Event) error {
	switch ev.Type {
	case EvStart:
		e.id, e.model = responsesID(ev.ID), cmpOr(ev.Model, e.model)
		if err := e.send("response.created", obj{"response": e.envelope("in_progress", nil)}); err != nil {
			return err
		}
		return e.send("response.in_progress", obj{"response": e.envelope("in_progress", nil)})
	case EvBlockStart:
		return e.startItem(ev)
	case EvDelta:
		return e.delta(ev)
	case EvBlockStop:
		return e.finishItem(ev.Index)
	case EvFinish:
		e.stop = ev.Stop
	case EvUsage:
		e.usage = ev.Usage
	case EvEnd:
		status := responsesStatus(e.stop)
		return e.send("response."+status, obj{"response": e.envelope(status, &e.usage)})
	case EvError:
		body := ev.Err
		return e.send("error", obj{"code": llmapi.OpenAIErrorType(kinds[body.Kind].status), "message": body.Message, "param": nil})
	}
	return nil
}

func (e *responsesEncoder) startItem(ev Event) error {
	it := &responsesItemState{kind: ev.Block, output: len(e.done), callID: ev.ID, name: ev.Name}
	e.items[ev.Index] = it
	var item obj
	switch ev.Block {
	case BlockTool:
		it.id = "fc_" + newID()
		item = callItem(it.id, "in_progress", it.callID, it.name, "")
	case BlockThinking, BlockRedacted:
		it.id = "rs_" + newID()
		item = reasoningItem(it.id, "", "")
		if ev.Block == BlockRedacted {
			// Anthropic wants the block back on the next turn: its data
			// travels as the item's encrypted_content, marked as Gemini
			// clients get it (see decodeResponsesRequest).
			it.sig.WriteString(redactedPrefix + ev.ID)
		}
	case BlockImage:
		it.id = "ig_" + newID()
		item = imageItem(it.id, "in_progress", "")
		it.text.WriteString(ev.Text) // the result of the finished item
	default:
		it.id = "msg_" + newID()
		item = messageItem(it.id, "in_progress", nil)
	}
	if err := e.send("response.output_item.added", obj{"output_index": it.output, "item": item}); err != nil {
		return err
	}
	switch ev.Block {
	case BlockText, BlockRefusal:
		return e.send("response.content_part.added", obj{"item_id": it.id, "output_index": it.output, "content_index": 0, "part": messagePart(ev.Block, "")})
	case BlockThinking:
		return e.send("response.reasoning_summary_part.added", obj{"item_id": it.id, "output_index": it.output, "summary_index": 0,
			"part": obj{"type": "summary_text", "text": ""}})
	}
	return nil
}

func (e *responsesEncoder) delta(ev Event) error {
	it := e.items[ev.Index]
	if it == nil {
		return nil
	}
	if ev.Signature != "" {
		it.sig.WriteString(ev.Signature)
		return nil // sent with the finished reasoning item, as encrypted_content
	}
	it.text.WriteString(ev.Text)
	at := obj{"item_id": it.id, "output_index": it.output, "delta": ev.Text}
	switch it.kind {
	case BlockTool:
		return e.send("response.function_call_arguments.delta", at)
	case BlockThinking:
		at["summary_index"] = 0
		return e.send("response.reasoning_summary_text.delta", at)
	}
	at["content_index"] = 0
	if it.kind == BlockRefusal {
		return e.send("response.refusal.delta", at)
	}
	return e.send("response.output_text.delta", at)
}

func (e *responsesEncoder) finishItem(index int) error {
	it := e.items[index]
	if it == nil {
		return nil
	}
	delete(e.items, index)
	text := it.text.String()
	at := obj{"item_id": it.id, "output_index": it.output}
	var item obj
	var err error
	switch it.kind {
	case BlockTool:
		item = callItem(it.id, "completed", it.callID, it.name, text)
		at["arguments"] = text
		err = e.send("response.function_call_arguments.done", at)
	case BlockImage:
		item = imageItem(it.id, "completed", text)
	case BlockThinking, BlockRedacted:
		item = reasoningItem(it.id, text, it.sig.String())
		if it.kind == BlockThinking {
			at["summary_index"], at["text"] = 0, text
			err = e.send("response.reasoning_summary_text.done", at)
		}
	default:
		part := messagePart(it.kind, text)
		item = messageItem(it.id, "completed", part)
		at["content_index"] = 0
		if it.kind == BlockRefusal {
			at["refusal"] = text
			err = e.send("response.refusal.done", at)
		} else {
			at["text"] = text
			err = e.send("response.output_text.done", at)
		}
		if err == nil {
			err = e.send("response.content_part.done", obj{"item_id": it.id, "output_index": it.output, "content_index": 0, "part": part})
		}
	}
	if err != nil {
		return err
	}
	e.done = append(e.done, item)
	return e.send("response.output_item.done", obj{"output_index": it.output, "item": item})
}
