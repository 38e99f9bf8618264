package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/strait/strait/proto/llmapi"
)

// Supported reports whether requests from client dialect to provider
// dialect can be converted.
func Supported(client, provider llmapi.Dialect) bool {
	return client != provider && requestDecoders[client] != nil && requestEncoders[provider] != nil
}

// requestDecoders parse a client body into neutral form.
var requestDecoders = map[llmapi.Dialect]func([]byte) (*Request, error){
	llmapi.ChatCompletions: decodeChatRequest,
	llmapi.Messages:        decodeAnthropicRequest,
	llmapi.Responses:       decodeResponsesRequest,
	llmapi.GenerateContent: decodeGeminiRequest,
}

// requestEncoders build the provider body, path and query.
var requestEncoders = map[llmapi.Dialect]func(*Request) (path, query string, body []byte, err error){
	llmapi.ChatCompletions: encodeChatRequest,
	llmapi.Messages:        encodeAnthropicRequest,
	llmapi.GenerateContent: encodeGeminiRequest,
	llmapi.Responses:       encodeResponsesRequest,
}

// mustJSON marshals values this package built from plain types; HTML
// characters stay as they are, like the providers send them.
func mustJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("convert: marshal %T: %v", v, err)) // only plain values reach here
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// obj is a JSON object under construction.
type obj = map[string]any

// rawOr returns raw, or def when raw is empty or null.
func rawOr(raw json.RawMessage, def string) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return json.RawMessage(def)
	}
	return raw
}

// argsObject turns a tool call's argument string into a JSON object; an
// empty string is {}. Invalid JSON is an error of the caller's request.
func argsObject(s string) (json.RawMessage, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid([]byte(s)) || s[0] != '{' {
		return nil, invalid("tool call arguments must be a JSON object, got %.80q", s)
	}
	return json.RawMessage(s), nil
}

// paragraphs is the text of ps as the one string a target takes where the
// source had several pieces: a Chat system message or Responses
// instructions (Anthropic's system blocks, several system or developer
// messages), a tool result's text blocks in a Chat tool message, a
// Responses function_call_output or a Gemini functionResponse. The
// non-empty pieces are joined as paragraphs, so that the last word of one
// does not run into the first of the next.
func paragraphs(ps []Part) string {
	var texts []string
	for _, p := range ps {
		if p.Kind == PartText && p.Text != "" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n\n")
}

// appendMessage adds m to msgs, merging it into the last message when the
// role is the same: Anthropic and Gemini want alternating turns, and every
// tool result of a turn in one user message.
func appendMessage(msgs []Message, m Message) []Message {
	if len(m.Parts) == 0 {
		return msgs
	}
	if n := len(msgs); n > 0 && msgs[n-1].Role == m.Role {
		msgs[n-1].Parts = append(msgs[n-1].Parts, m.Parts...)
		return msgs
	}
	return append(msgs, m)
}

// parseDataURL splits "data:image/png;base64,AAAA" into media type and data.
func parseDataURL(u string) (mediaType, data string, ok bool) {
	rest, found := strings.CutPrefix(u, "data:")
	if !found {
		return "", "", false
	}
	meta, data, found := strings.Cut(rest, ",")
	mediaType, b64 := strings.CutSuffix(meta, ";base64")
	if !found || !b64 {
		return "", "", false
	}
	return mediaType, data, true
}

// imageURL renders img as a URL: its own, or a data URL.
func (img *Image) url() string {
	if img.URL != "" {
		return img.URL
	}
	return "data:" + img.MediaType + ";base64," + img.Data
}

// imageFromURL builds an Image from a data URL or an http(s) URL.
func imageFromURL(u string) (*Image, error) {
	if mt, data, ok := parseDataURL(u); ok {
		return &Image{MediaType: mt, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &Image{URL: u}, nil
	}
	return nil, invalid("image URL must be an http(s) or base64 data URL")
}

func jsonValid(b []byte) bool { return json.Valid(b) }

// toolDecls renders the tools as {name, description, <schemaKey>} objects,
// each passed through wrap for the dialect's envelope.
func (r *Request) toolDecls(schemaKey string, wrap func(Tool, obj) any) []any {
	out := make([]any, len(r.Tools))
	for i, t := range r.Tools {
		d := obj{"name": t.Name, schemaKey: t.Schema}
		if t.Description != "" {
			d["description"] = t.Description
		}
		out[i] = wrap(t, d)
	}
	return out
}
