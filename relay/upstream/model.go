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
	"github.com/strait/strait/proto/apimodel"
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
	// ModelErr is apimodel's error when the model could not be read:
	// ErrNotJSON for a body that is not a JSON object (multipart uploads;
	// the provider judges those), ErrBadModel for one no route can judge.
	ModelErr error
	// modelInPath is set when Model came from a Gemini path.
	modelInPath bool
}

// ParseInbound finds the model and stream flag of a request with the
// parser the edge used to judge it (proto/apimodel).
func ParseInbound(h *proto.RequestHeader, body []byte) *Inbound {
	r, err := apimodel.Parse(h.Family, h.Path, body, nil)
	return &Inbound{Header: h, Body: body, Model: r.Model, Stream: r.Stream, ModelErr: err, modelInPath: r.InPath}
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
