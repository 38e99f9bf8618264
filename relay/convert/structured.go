package convert

import (
	"encoding/json"

	"github.com/strait/strait/proto/llmapi"
)

// Structured output for Anthropic, whose Messages API has no JSON-schema
// response format: the schema becomes a tool the model is made to call, and
// the call's arguments come back to the client as the message content, as
// a JSON-schema contract promises (the same translation LiteLLM makes).

// formatTool is the name of that tool; a call of it is the answer.
const formatTool = "structured_output"

// addFormatTool adds the format tool to an Anthropic request body and makes
// the model use it. With the client's own tools the model must call one of
// them or the format tool; a tool the client forced stays forced; and with
// extended thinking, where Anthropic refuses a forced tool, the choice
// stays automatic and the tool's description asks for it.
func addFormatTool(out obj, r *Request) error {
	if r.Format == nil {
		return nil
	}
	schema := rawOr(r.Format.Schema, `{"type":"object"}`)
	var top struct {
		Type any `json:"type"`
	}
	if json.Unmarshal(schema, &top) != nil || top.Type != "object" {
		return invalid("structured output for this model needs a JSON schema whose top level is an object")
	}
	desc := "Give your final answer by calling this tool: its input is the answer, and must match the schema."
	if r.Format.Name != "" {
		desc += " The answer is " + r.Format.Name + "."
	}
	tools, _ := out["tools"].([]any)
	out["tools"] = append(tools, obj{"name": formatTool, "description": desc, "input_schema": schema})
	if r.Thinking != nil {
		return nil
	}
	tc, _ := out["tool_choice"].(obj)
	switch {
	case tc != nil && tc["type"] == "tool":
		// the client forced its own tool
	case len(r.Tools) > 0 && (tc == nil || tc["type"] != "none"):
		out["tool_choice"] = obj{"type": "any"}
	default:
		out["tool_choice"] = obj{"type": "tool", "name": formatTool}
	}
	if tc != nil && tc["disable_parallel_tool_use"] == true {
		out["tool_choice"].(obj)["disable_parallel_tool_use"] = true
	}
	return nil
}

// formatAnswer turns a whole answer's format-tool call into text.
func formatAnswer(resp *Response) {
	other := false
	for i, p := range resp.Parts {
		switch {
		case p.Kind == PartToolCall && p.Call.Name == formatTool:
			resp.Parts[i] = Part{Kind: PartText, Text: string(p.Call.Args)}
		case p.Kind == PartToolCall:
			other = true
		}
	}
	if resp.Stop == StopTool && !other {
		resp.Stop = StopEnd
	}
}

// formatStream does the same for a stream: the format tool's block becomes
// a text block, its argument fragments text deltas, as they arrive.
type formatStream struct {
	next  emitFunc
	text  map[int]bool // blocks that were format-tool calls
	other bool         // a real tool call was made too
}

func (f *formatStream) emit(ev Event) error {
	switch {
	case ev.Type == EvBlockStart && ev.Block == BlockTool && ev.Name == formatTool:
		f.text[ev.Index] = true
		ev = Event{Type: EvBlockStart, Index: ev.Index, Block: BlockText}
	case ev.Type == EvBlockStart && ev.Block == BlockTool:
		f.other = true
	case ev.Type == EvDelta && f.text[ev.Index] && ev.Text == "":
		return nil // Anthropic opens with an empty fragment
	case ev.Type == EvFinish && ev.Stop == StopTool && !f.other && len(f.text) > 0:
		ev.Stop = StopEnd
	}
	return f.next(ev)
}

// usesFormatTool reports whether the provider gets structured output as a
// forced tool, so answers need formatAnswer / formatStream.
func (p *Plan) usesFormatTool() bool {
	return p.Provider == llmapi.Messages && p.req != nil && p.req.Format != nil
}
