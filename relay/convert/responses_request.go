package convert

import (
	"encoding/json"
	"strings"
)

// responsesRequest is the part of a Responses API request that converts.
type responsesRequest struct {
	Model              string          `json:"model"`
	Instructions       string          `json:"instructions"`
	Input              json.RawMessage `json:"input"`
	Tools              []responsesTool `json:"tools"`
	ToolChoice         json.RawMessage `json:"tool_choice"`
	ParallelToolCalls  *bool           `json:"parallel_tool_calls"`
	MaxOutputTokens    int             `json:"max_output_tokens"`
	Temperature        *float64        `json:"temperature"`
	TopP               *float64        `json:"top_p"`
	Stream             bool            `json:"stream"`
	PreviousResponseID string          `json:"previous_response_id"`
	Text               *struct {
		Format struct {
			Type   string          `json:"type"`
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
		} `json:"format"`
	} `json:"text"`
	Reasoning *struct {
		Effort string `json:"effort"`
	} `json:"reasoning"`
}

type responsesTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
}

// responsesItem is any input item.
type responsesItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
	Summary   []struct {
		Text string `json:"text"`
	} `json:"summary"`
	EncryptedContent string `json:"encrypted_content"`
}

type responsesPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL string `json:"image_url"`
	FileData string `json:"file_data"`
	FileURL  string `json:"file_url"`
	FileID   string `json:"file_id"`
	Filename string `json:"filename"`
	Refusal  string `json:"refusal"`
}

func decodeResponsesRequest(body []byte) (*Request, error) {
	var in responsesRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, invalid("request body is not valid JSON: %v", err)
	}
	if in.PreviousResponseID != "" {
		return nil, invalid("previous_response_id is not supported for this model: send the whole conversation as input")
	}
	r := &Request{Model: in.Model, MaxTokens: in.MaxOutputTokens, Temperature: in.Temperature, TopP: in.TopP,
		Stream: in.Stream, ParallelToolCalls: in.ParallelToolCalls}
	if in.Instructions != "" {
		r.System = []Part{{Kind: PartText, Text: in.Instructions}}
	}
	for _, t := range in.Tools {
		if t.Type != "function" {
			return nil, invalid("tool type %q is not supported for this model", t.Type)
		}
		r.Tools = append(r.Tools, Tool{Name: t.Name, Description: t.Description, Schema: rawOr(t.Parameters, `{"type":"object","properties":{}}`)})
	}
	var err error
	if r.ToolChoice, err = chatToolChoice(in.ToolChoice); err != nil {
		return nil, err
	}
	if in.Text != nil && (in.Text.Format.Type == "json_object" || in.Text.Format.Type == "json_schema") {
		r.Format = &Format{Name: in.Text.Format.Name, Schema: in.Text.Format.Schema}
	}
	if in.Reasoning != nil && in.Reasoning.Effort != "" && in.Reasoning.Effort != "none" {
		r.Thinking = &Thinking{Effort: in.Reasoning.Effort}
	}
	if err := r.addResponsesInput(in.Input); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Request) addResponsesInput(raw json.RawMessage) error {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		r.Messages = appendMessage(r.Messages, Message{Role: User, Parts: []Part{{Kind: PartText, Text: s}}})
		return nil
	}
	var items []responsesItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return invalid("input must be a string or an array of items")
	}
	for _, it := range items {
		switch it.Type {
		case "", "message":
			parts, err := responsesContent(it.Content)
			if err != nil {
				return err
			}
			switch it.Role {
			case "system", "developer":
				r.System = append(r.System, parts...)
			case "assistant":
				r.Messages = appendMessage(r.Messages, Message{Role: Assistant, Parts: parts})
			default:
				r.Messages = appendMessage(r.Messages, Message{Role: User, Parts: parts})
			}
		case "function_call":
			args, err := argsObject(it.Arguments)
			if err != nil {
				return err
			}
			r.Messages = appendMessage(r.Messages, Message{Role: Assistant, Parts: []Part{{Kind: PartToolCall,
				Call: &ToolCall{ID: it.CallID, Name: it.Name, Args: args}}}})
		case "function_call_output":
			parts, err := responsesContent(it.Output)
			if err != nil {
				return err
			}
			r.Messages = appendMessage(r.Messages, Message{Role: User, Parts: []Part{{Kind: PartToolResult,
				Result: &ToolResult{CallID: it.CallID, Content: parts}}}})
		case "reasoning":
			if data, ok := strings.CutPrefix(it.EncryptedContent, redactedPrefix); ok {
				// Anthropic's redacted thinking, as the relay sent it.
				r.Messages = appendMessage(r.Messages, Message{Role: Assistant, Parts: []Part{{Kind: PartRedactedThinking, Text: data}}})
				continue
			}
			var text string
			for _, s := range it.Summary {
				text += s.Text
			}
			r.Messages = appendMessage(r.Messages, Message{Role: Assistant, Parts: []Part{{Kind: PartThinking,
				Text: text, Signature: it.EncryptedContent}}})
		case "image_generation_call":
			// An image an earlier answer made, sent back with the rest of
			// that answer (or kept by the conversation store): no provider
			// of another family takes it back, so it is left out.
			continue
		default:
			return invalid("input item type %q is not supported for this model", it.Type)
		}
	}
	return nil
}

// responsesContent reads a string or an array of input/output parts.
func responsesContent(raw json.RawMessage) ([]Part, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []Part{{Kind: PartText, Text: s}}, nil
	}
	var ps []responsesPart
	if err := json.Unmarshal(raw, &ps); err != nil {
		return nil, invalid("content must be a string or an array of parts")
	}
	var out []Part
	for _, p := range ps {
		switch p.Type {
		case "input_text", "output_text":
			out = append(out, Part{Kind: PartText, Text: p.Text})
		case "input_image":
			img, err := imageFromURL(p.ImageURL)
			if err != nil {
				return nil, err
			}
			out = append(out, Part{Kind: PartImage, Image: img})
		case "input_file":
			if p.FileID != "" {
				return nil, fileRef(p.FileID)
			}
			d, err := document(p.Filename, p.FileData+p.FileURL)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		case "refusal":
			// An assistant turn in which the model declined: what it said.
			out = append(out, Part{Kind: PartText, Text: p.Refusal})
		default:
			return nil, invalid("content part type %q is not supported for this model", p.Type)
		}
	}
	return out, nil
}
