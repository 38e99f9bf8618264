package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/strait/strait/proto"
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
	// modelInPath is set when Model came from a Gemini path.
	modelInPath bool
}

// ParseInbound finds the model and stream flag of a request. It never
// fails: a body that is not JSON (multipart uploads) simply names no model,
// and the provider judges it.
func ParseInbound(h *proto.RequestHeader, body []byte) *Inbound {
	in := &Inbound{Header: h, Body: body}
	if m, method, ok := geminiModel(h.Path); ok && h.Family == string(Gemini) {
		in.Model, in.modelInPath = m, true
		in.Stream = method == "streamGenerateContent"
		return in
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		var v struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		if json.Unmarshal(body, &v) == nil {
			in.Model, in.Stream = v.Model, v.Stream
		}
	}
	return in
}

// geminiModel splits /v1beta/models/{model}:{method} (also /v1/..., and
// GET /v1beta/models/{model} without a method).
func geminiModel(p string) (model, method string, ok bool) {
	model, method, ok = proto.GeminiModelPath(p)
	if ok && strings.HasPrefix(p, "/v1/") && method == "" {
		return "", "", false // OpenAI's GET /v1/models/{id}: the edge's Gemini family uses a method
	}
	return model, method, ok
}

// withModel returns the request's path and body with the model replaced.
// Only the model's bytes change; everything else stays the client's.
func (in *Inbound) withModel(model string) (string, []byte, error) {
	if in.modelInPath {
		i := strings.Index(in.Header.Path, "/models/") + len("/models/")
		rest := in.Header.Path[i+len(in.Model):]
		return in.Header.Path[:i] + model + rest, in.Body, nil
	}
	body, err := replaceModel(in.Body, model)
	return in.Header.Path, body, err
}

// replaceModel swaps the value of the top-level "model" member of a JSON
// object, leaving every other byte in place.
func replaceModel(body []byte, model string) ([]byte, error) {
	start, end, err := modelSpan(body)
	if err != nil {
		return nil, err
	}
	v, _ := json.Marshal(model) // a string always marshals
	out := make([]byte, 0, len(body)-(end-start)+len(v))
	out = append(append(append(out, body[:start]...), v...), body[end:]...)
	return out, nil
}

var errNoModel = errors.New("request body has no top-level model")

// modelSpan finds the byte range of the top-level "model" value.
func modelSpan(body []byte) (start, end int, err error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, 0, fmt.Errorf("%w: %v", errNoModel, err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, 0, err
		}
		afterKey := int(dec.InputOffset())
		if tok == "model" {
			var s string
			if err := dec.Decode(&s); err != nil {
				return 0, 0, fmt.Errorf("model: %w", err)
			}
			end := int(dec.InputOffset())
			// The value starts after the colon and any whitespace.
			start := afterKey + bytes.IndexByte(body[afterKey:end], ':') + 1
			for start < end && strings.IndexByte(" \t\r\n", body[start]) >= 0 {
				start++
			}
			return start, end, nil
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return 0, 0, err
		}
	}
	_, err = dec.Token()
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, 0, err
	}
	return 0, 0, errNoModel
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
