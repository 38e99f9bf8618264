package upstream

import (
	"net/url"
	"strings"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/proto/llmapi"
)

// Inbound is a client request as the relay reads it once: the header the
// edge framed, the whole body, and the model and stream flag found in it.
type Inbound struct {
	Header *proto.RequestHeader
	Body   []byte
	// Model is the body's "model" (OpenAI, Anthropic) or the {model} of a
	// Gemini path; empty when the request names none.
	Model string
	// Stream is true for "stream": true and Gemini's streamGenerateContent.
	Stream bool
	// ModelErr is llmapi.Parse's error when the model could not be read:
	// ErrNotJSON for a body that is not a JSON object (multipart uploads;
	// the provider judges those), ErrBadModel for one no route can judge.
	ModelErr error
	// modelInPath is set when Model came from a Gemini path.
	modelInPath bool
}

// ParseInbound finds the model and stream flag of a request with the
// parser the edge used to judge it (proto/llmapi).
func ParseInbound(h *proto.RequestHeader, body []byte) *Inbound {
	r, err := llmapi.Parse(llmapi.Family(h.Family), h.Path, body, nil)
	return &Inbound{Header: h, Body: body, Model: r.Model, Stream: r.Stream, ModelErr: err, modelInPath: r.InPath}
}

// withModel returns the request's path and body with the model replaced.
// Only the model's bytes change; everything else stays the client's.
func (in *Inbound) withModel(model string) (string, []byte, error) {
	if in.modelInPath {
		return llmapi.ReplacePathModel(in.Header.Path, in.Model, model), in.Body, nil
	}
	body, err := llmapi.ReplaceModel(in.Body, model)
	return in.Header.Path, body, err
}

// azurePath maps an OpenAI path to Azure's deployment URL: /v1/X becomes
// /openai/deployments/{model}/X, or /openai/X when no model is named.
func azurePath(p, model string) string {
	rest := strings.TrimPrefix(p, "/v1")
	if model == "" {
		return "/openai" + rest
	}
	return "/openai/deployments/" + model + rest
}

func azureQuery(q, version string) string {
	v, _ := url.ParseQuery(q)
	if v == nil {
		v = url.Values{}
	}
	v.Set("api-version", version)
	return v.Encode()
}
