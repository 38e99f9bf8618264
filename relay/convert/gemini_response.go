package convert

import (
	"encoding/json"
	"strings"

	"github.com/strait/strait/proto/llmapi"
)

type geminiResponse struct {
	Candidates []struct {
		Content struct {
			Parts []geminiPart `json:"parts"`
		} `json:"content"`
		FinishReason  string `json:"finishReason"`
		FinishMessage string `json:"finishMessage"`
	} `json:"candidates"`
	PromptFeedback *struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
	UsageMetadata *llmapi.GeminiUsage `json:"usageMetadata"`
	ModelVersion  string              `json:"modelVersion"`
	ResponseID    string              `json:"responseId"`
	Error         *struct{}           `json:"error"`
}

type geminiPart struct {
	Text             *string     `json:"text"`
	Thought          bool        `json:"thought"`
	ThoughtSignature string      `json:"thoughtSignature"`
	InlineData       *geminiBlob `json:"inlineData"`
	FunctionCall     *struct {
		ID   string          `json:"id"`
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	} `json:"functionCall"`
}

// geminiBlob is Gemini's inline data: an image, a PDF, audio.
type geminiBlob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

// image is the image the model made in p, or nil: none, one it thought
// with, which no other API can carry (see images.go), or inline data of
// another kind (a TTS model's audio: audio output is not converted).
func (p *geminiPart) image() *Image {
	if p.InlineData == nil || p.Thought || !strings.HasPrefix(p.InlineData.MimeType, "image/") {
		return nil
	}
	return &Image{MediaType: p.InlineData.MimeType, Data: p.InlineData.Data}
}

func geminiStop(reason string, sawTool bool) Stop {
	switch reason {
	case "":
		return StopNone
	case "STOP":
		if sawTool {
			return StopTool // Gemini ends a function call with STOP
		}
		return StopEnd
	case "MAX_TOKENS", "CONTINUATION": // CONTINUATION: cut at the per-request limit, not finished
		return StopMaxTokens
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
		"IMAGE_RECITATION", "LANGUAGE",
		// "All other reasons that stopped the token generation" (genai's
		// FinishReason docs), and its image twin: Gemini stopped the
		// answer without saying why, which the other APIs can only tell
		// as a filtered end (LiteLLM maps OTHER to content_filter too).
		"OTHER", "IMAGE_OTHER":
		return StopFilter
	}
	return StopEnd
}

// geminiFailures are the finish reasons of a turn that failed: the model
// wrote a function call that cannot be read or run, or the request lacked
// a thought signature. No other API has a stop reason for that, and each
// would tell a finished answer, so the client gets an error instead, of
// the kind that says whose fault it was.
//
// NO_IMAGE (an image was expected and none made) is a turn that failed
// too, and FINISH_REASON_UNSPECIFIED, the enum's zero value, which proto3
// JSON never writes for a candidate that ended well, says nothing of how
// it ended: neither may read as a finished answer.
var geminiFailures = map[string]ErrKind{"MALFORMED_FUNCTION_CALL": ErrServer, "MALFORMED_RESPONSE": ErrServer,
	"UNEXPECTED_TOOL_CALL": ErrServer, "TOO_MANY_TOOL_CALLS": ErrServer, "MISSING_THOUGHT_SIGNATURE": ErrInvalid,
	"NO_IMAGE": ErrServer, "FINISH_REASON_UNSPECIFIED": ErrServer}

// geminiFailure is the error of a candidate that ended with reason, or nil
// when the reason is not a failure; message is Gemini's finishMessage.
func geminiFailure(reason, message string) *Error {
	kind, failed := geminiFailures[reason]
	if !failed {
		return nil
	}
	e := &Error{Kind: kind, Message: "Gemini ended its answer with " + reason}
	if message != "" {
		e.Message += ": " + message
	}
	return e
}

// call returns the neutral tool call of a functionCall part.
func (p *geminiPart) call() *ToolCall {
	base := p.FunctionCall.ID
	if base == "" {
		base = "call_" + newID()
	}
	return &ToolCall{ID: callID(base, p.ThoughtSignature), Name: p.FunctionCall.Name, Args: rawOr(p.FunctionCall.Args, "{}")}
}

func decodeGeminiResponse(body []byte) (*Response, error) {
	var in geminiResponse
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	out := &Response{ID: in.ResponseID, Model: in.ModelVersion}
	if in.UsageMetadata != nil {
		out.Usage = in.UsageMetadata.Normal()
	}
	if pf := in.PromptFeedback; pf != nil && pf.BlockReason != "" && len(in.Candidates) == 0 {
		out.Stop = StopFilter
		return out, nil
	}
	if len(in.Candidates) == 0 {
		return out, nil
	}
	c := in.Candidates[0]
	if e := geminiFailure(c.FinishReason, c.FinishMessage); e != nil {
		return nil, e
	}
	sawTool := false
	for _, p := range c.Content.Parts {
		switch {
		case p.FunctionCall != nil:
			sawTool = true
			out.Parts = append(out.Parts, Part{Kind: PartToolCall, Call: p.call()})
		case p.image() != nil:
			out.Parts = append(out.Parts, Part{Kind: PartImage, Image: p.image()})
		case p.Text != nil && p.Thought:
			out.Parts = append(out.Parts, Part{Kind: PartThinking, Text: *p.Text, Signature: p.ThoughtSignature})
		case p.Text != nil:
			out.Parts = append(out.Parts, Part{Kind: PartText, Text: *p.Text})
		}
	}
	out.Stop = geminiStop(c.FinishReason, sawTool)
	return out, nil
}

// geminiDecoder turns streamed GenerateContentResponse chunks (SSE data or
// JSON array elements) into neutral events. Each chunk holds whole parts:
// text arrives in pieces of consecutive text parts, a function call in one
// part with its arguments as an object.
type geminiDecoder struct {
	blocks
	started bool
	sawTool bool
}

func newGeminiDecoder(emit emitFunc) *geminiDecoder { return &geminiDecoder{blocks: newBlocks(emit)} }

func (d *geminiDecoder) event(_ string, data []byte) error {
	if d.done {
		return nil
	}
	var c geminiResponse
	if err := json.Unmarshal(data, &c); err != nil {
		return errBadEvent(err)
	}
	if c.Error != nil {
		d.done = true
		return d.emit(Event{Type: EvError, Err: ParseError(0, data)})
	}
	if !d.started {
		d.started = true
		start := Event{Type: EvStart, ID: c.ResponseID, Model: c.ModelVersion}
		if c.UsageMetadata != nil {
			start.Usage = c.UsageMetadata.Normal() // the prompt count, for Anthropic's message_start
		}
		if err := d.emit(start); err != nil {
			return err
		}
	}
	if len(c.Candidates) > 0 {
		cand := c.Candidates[0]
		for i := range cand.Content.Parts {
			if err := d.part(&cand.Content.Parts[i]); err != nil {
				return err
			}
		}
		if e := geminiFailure(cand.FinishReason, cand.FinishMessage); e != nil {
			d.done = true
			return d.emit(Event{Type: EvError, Err: e})
		}
		if cand.FinishReason != "" {
			if err := d.finish(geminiStop(cand.FinishReason, d.sawTool)); err != nil {
				return err
			}
		}
	} else if pf := c.PromptFeedback; pf != nil && pf.BlockReason != "" {
		if err := d.finish(StopFilter); err != nil {
			return err
		}
	}
	if c.UsageMetadata != nil {
		return d.emit(Event{Type: EvUsage, Usage: c.UsageMetadata.Normal()})
	}
	return nil
}

func (d *geminiDecoder) part(p *geminiPart) error {
	switch {
	case p.FunctionCall != nil:
		call := p.call()
		d.sawTool = true
		i, err := d.start(BlockTool, call.ID, call.Name)
		if err != nil {
			return err
		}
		if err := d.emit(Event{Type: EvDelta, Index: i, Text: string(call.Args)}); err != nil {
			return err
		}
		return d.closeOpen()
	case p.image() != nil:
		return d.image(p.image())
	case p.Text != nil && p.Thought:
		if err := d.ensure(BlockThinking); err != nil {
			return err
		}
		if *p.Text != "" {
			if err := d.emit(Event{Type: EvDelta, Index: d.open, Text: *p.Text}); err != nil {
				return err
			}
		}
		if p.ThoughtSignature != "" {
			return d.emit(Event{Type: EvDelta, Index: d.open, Signature: p.ThoughtSignature})
		}
	case p.Text != nil && *p.Text != "":
		if err := d.ensure(BlockText); err != nil {
			return err
		}
		return d.emit(Event{Type: EvDelta, Index: d.open, Text: *p.Text})
	}
	return nil
}

func (d *geminiDecoder) finish(s Stop) error {
	if d.finished {
		return nil
	}
	if err := d.closeOpen(); err != nil {
		return err
	}
	d.finished = true
	return d.emit(Event{Type: EvFinish, Stop: s})
}
