package convert

import (
	"encoding/json"
	"strings"

	"github.com/strait/strait/proto/llmapi"
)

// Answers to a Gemini client: GenerateContentResponse objects, whole or one
// per stream chunk. The JSON-array framing a client asks for by leaving out
// alt=sse is applied by Plan.Translate around the same chunks.

var geminiFinish = map[Stop]string{StopNone: "STOP", StopEnd: "STOP", StopSequence: "STOP", StopTool: "STOP",
	StopMaxTokens: "MAX_TOKENS", StopFilter: "SAFETY"}

// geminiOutPart renders one part of the model's answer.
func geminiOutPart(p Part) obj {
	switch p.Kind {
	case PartText, PartRefusal: // Gemini has no refusal part
		return obj{"text": p.Text}
	case PartThinking:
		g := obj{"text": p.Text, "thought": true}
		if p.Signature != "" {
			g["thoughtSignature"] = wrapSignature(p.Signature)
		}
		return g
	case PartRedactedThinking:
		return obj{"thought": true, "thoughtSignature": wrapSignature(redactedPrefix + p.Text)}
	case PartToolCall:
		return obj{"functionCall": obj{"id": p.Call.ID, "name": p.Call.Name, "args": callArgs(string(p.Call.Args))}}
	}
	return nil
}

// callArgs is a call's arguments as the object Gemini carries; a model's
// broken JSON stays visible rather than lost.
func callArgs(s string) json.RawMessage {
	args, err := argsObject(s)
	if err != nil {
		return mustJSON(obj{"_raw_arguments": s})
	}
	return args
}

func geminiChunk(id, model string, parts []any, finish string, usage *Usage) obj {
	cand := obj{"content": obj{"role": "model", "parts": parts}, "index": 0}
	if finish != "" {
		cand["finishReason"] = finish
	}
	c := obj{"candidates": []any{cand}, "modelVersion": model, "responseId": id}
	if usage != nil {
		c["usageMetadata"] = llmapi.GeminiUsageOf(*usage)
	}
	return c
}

func geminiID(id string) string { return strings.TrimPrefix(cmpOr(id, newID()), "msg_") }

func encodeGeminiResponse(r *Response, _ *Request) []byte {
	parts := make([]any, 0, len(r.Parts))
	for _, p := range r.Parts {
		if g := geminiOutPart(p); g != nil {
			parts = append(parts, g)
		}
	}
	return mustJSON(geminiChunk(geminiID(r.ID), r.Model, parts, geminiFinish[r.Stop], &r.Usage))
}

// geminiEncoder writes neutral events as Gemini stream chunks. Text and
// thoughts go out delta by delta; a function call goes out whole when its
// block ends, because Gemini carries arguments as one object, never in
// fragments.
type geminiEncoder struct {
	w         writeFunc
	id, model string
	kinds     map[int]BlockType
	calls     map[int]*geminiCallState
	stop      Stop
	usage     Usage
}

type geminiCallState struct {
	id, name string
	args     strings.Builder
}

func newGeminiEncoder(w writeFunc, req *Request) *geminiEncoder {
	return &geminiEncoder{w: w, model: req.Model, kinds: map[int]BlockType{}, calls: map[int]*geminiCallState{}}
}

func (e *geminiEncoder) send(parts []any, finish string, usage *Usage) error {
	return e.w(sseData("", geminiChunk(e.id, e.model, parts, finish, usage)))
}

func (e *geminiEncoder) event(ev Event) error {
	switch ev.Type {
	case EvStart:
		e.id, e.model, e.usage = geminiID(ev.ID), cmpOr(ev.Model, e.model), ev.Usage
	case EvBlockStart:
		e.kinds[ev.Index] = ev.Block
		switch ev.Block {
		case BlockTool:
			e.calls[ev.Index] = &geminiCallState{id: ev.ID, name: ev.Name}
		case BlockRedacted:
			return e.send([]any{geminiOutPart(Part{Kind: PartRedactedThinking, Text: ev.ID})}, "", nil)
		}
	case EvDelta:
		if c := e.calls[ev.Index]; c != nil {
			c.args.WriteString(ev.Text)
			return nil
		}
		switch {
		case ev.Signature != "":
			return e.send([]any{obj{"thought": true, "thoughtSignature": wrapSignature(ev.Signature)}}, "", nil)
		case ev.Text == "":
			return nil
		case e.kinds[ev.Index] == BlockThinking:
			return e.send([]any{obj{"text": ev.Text, "thought": true}}, "", nil)
		}
		return e.send([]any{obj{"text": ev.Text}}, "", nil)
	case EvBlockStop:
		c := e.calls[ev.Index]
		if c == nil {
			return nil
		}
		delete(e.calls, ev.Index)
		return e.send([]any{geminiOutPart(Part{Kind: PartToolCall, Call: &ToolCall{ID: c.id, Name: c.name,
			Args: json.RawMessage(c.args.String())}})}, "", nil)
	case EvFinish:
		e.stop = ev.Stop
	case EvUsage:
		e.usage = ev.Usage
	case EvEnd:
		return e.send([]any{}, geminiFinish[e.stop], &e.usage)
	case EvError:
		return e.w(llmapi.ErrorEvent(llmapi.Gemini, ev.Err.Body(llmapi.GenerateContent)))
	}
	return nil
}
