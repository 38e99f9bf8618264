package convert

import (
	"encoding/json"
	"net/url"
	"strings"

	"github.com/strait/strait/proto/llmapi"
)

// Token counting across APIs: Gemini's countTokens, Anthropic's
// /v1/messages/count_tokens and OpenAI's /v1/responses/input_tokens answer
// for one another's models by the target's own counting endpoint, with the
// request converted as a generation request would be. Chat Completions has
// no counting endpoint, so OpenAI-compatible providers are refused clearly.

// isCountPath reports a token-counting endpoint of any API.
func isCountPath(path string) bool {
	return strings.HasSuffix(path, ":countTokens") || path == "/v1/messages/count_tokens" || path == "/v1/responses/input_tokens"
}

// IsCountPath reports a token-counting endpoint: the caller picks the
// Responses dialect for an OpenAI provider, whose counting lives there.
func IsCountPath(path string) bool { return isCountPath(path) }

// countFields are the generation fields the counting endpoints refuse.
var countFields = map[llmapi.Dialect][]string{
	llmapi.Messages:  {"max_tokens", "stream", "temperature", "top_p", "stop_sequences"},
	llmapi.Responses: {"stream", "store", "include", "max_output_tokens", "temperature", "top_p"},
}

func newCountPlan(client, provider llmapi.Dialect, body []byte, model string) (*Plan, error) {
	if provider == llmapi.ChatCompletions {
		return nil, invalid("token counting is not available for this model: its provider's API (Chat Completions) has no counting endpoint")
	}
	if client == provider || requestDecoders[client] == nil {
		return nil, invalid("converting %s token counts to %s is not supported", client, provider)
	}
	if client == llmapi.GenerateContent {
		// countTokens takes {contents} or a whole generateContentRequest.
		var v struct {
			GenerateContentRequest json.RawMessage `json:"generateContentRequest"`
		}
		if json.Unmarshal(body, &v) == nil && len(v.GenerateContentRequest) > 0 {
			body = v.GenerateContentRequest
		}
	}
	req, err := decodeRequest(client, body, model)
	if err != nil {
		return nil, err
	}
	req.Stream = false
	_, _, gen, err := requestEncoders[provider](req)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(gen, &fields); err != nil {
		return nil, err
	}
	for _, f := range countFields[provider] {
		delete(fields, f)
	}
	var path string
	var out []byte
	switch provider {
	case llmapi.Messages:
		path, out = "/v1/messages/count_tokens", mustJSON(fields)
	case llmapi.Responses:
		path, out = "/v1/responses/input_tokens", mustJSON(fields)
	case llmapi.GenerateContent:
		fields["model"] = mustJSON("models/" + req.Model)
		path, out = "/v1beta/models/"+url.PathEscape(req.Model)+":countTokens", mustJSON(obj{"generateContentRequest": fields})
	}
	return &Plan{Client: client, Provider: provider, Path: path, Body: out, count: true, req: req}, nil
}

// countAnswer converts a counting answer: Anthropic's and OpenAI's
// input_tokens, Gemini's totalTokens.
func countAnswer(client llmapi.Dialect, body []byte) ([]byte, error) {
	var in struct {
		InputTokens *int `json:"input_tokens"`
		TotalTokens *int `json:"totalTokens"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	n := in.InputTokens
	if n == nil {
		n = in.TotalTokens
	}
	if n == nil {
		return nil, errMissing("input_tokens or totalTokens")
	}
	switch client {
	case llmapi.GenerateContent:
		return mustJSON(obj{"totalTokens": *n}), nil
	case llmapi.Responses:
		return mustJSON(obj{"object": "response.input_tokens", "input_tokens": *n}), nil
	}
	return mustJSON(obj{"input_tokens": *n}), nil
}
