package usage

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
)

// Request is what the edge needs to know about a request body before it
// goes out: the model (for allow-lists and prices) and an estimate of the
// tokens it may use (for rate limits and quota reservations).
type Request struct {
	Model  string
	Stream bool
	// MaxOutput is the client's output cap (max_tokens, max_output_tokens,
	// maxOutputTokens…); zero when it set none.
	MaxOutput int64
	// IncludeUsage is OpenAI's stream_options.include_usage as sent.
	IncludeUsage bool
}

type wireRequest struct {
	Model               string `json:"model"`
	Stream              bool   `json:"stream"`
	MaxTokens           int64  `json:"max_tokens"`
	MaxCompletionTokens int64  `json:"max_completion_tokens"`
	MaxOutputTokens     int64  `json:"max_output_tokens"`
	StreamOptions       struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	GenerationConfig struct {
		MaxOutputTokens int64 `json:"maxOutputTokens"`
	} `json:"generationConfig"`
}

// Inspect reads the request's model and limits. Gemini names the model in
// the path (/v1beta/models/{model}:generateContent); a body that is not
// JSON yields only that. declaredJSON says the client sent the body as
// application/json: then a malformed body is an error, so the edge needs no
// second pass over the body to validate it.
func Inspect(path string, body []byte, declaredJSON bool) (Request, error) {
	var w wireRequest
	if len(body) > 0 && (declaredJSON || body[0] == '{') {
		// A valid body of another shape (a type mismatch) is not an
		// error: only what metering reads is missing then.
		var syntax *json.SyntaxError
		if err := json.Unmarshal(body, &w); declaredJSON && errors.As(err, &syntax) {
			return Request{}, err
		}
	}
	r := Request{Model: w.Model, Stream: w.Stream, IncludeUsage: w.StreamOptions.IncludeUsage,
		MaxOutput: max(w.MaxTokens, w.MaxCompletionTokens, w.MaxOutputTokens, w.GenerationConfig.MaxOutputTokens)}
	if m, ok := geminiModel(path); ok {
		r.Model = m
		r.Stream = strings.HasSuffix(path, ":streamGenerateContent")
	}
	return r, nil
}

// geminiModel extracts {model} from .../models/{model}:{method}.
func geminiModel(path string) (string, bool) {
	i := strings.LastIndex(path, "/models/")
	if i < 0 {
		return "", false
	}
	rest := path[i+len("/models/"):]
	model, _, ok := strings.Cut(rest, ":")
	return model, ok && model != ""
}

// Estimate is the tokens a request may consume before its usage is known:
// its input estimated from its size, plus its output cap (or defaultOutput
// when it has none).
func (r Request) Estimate(bodyBytes int, defaultOutput int64) int64 {
	out := r.MaxOutput
	if out <= 0 {
		out = defaultOutput
	}
	return EstimateTokens(bodyBytes) + out
}

// ForceIncludeUsage asks the provider for the usage chunk of an OpenAI Chat
// Completions stream whose client did not, and reports whether it changed
// the body. Everything but stream_options passes byte for byte: the member
// is inserted first, or only its value is rewritten.
func ForceIncludeUsage(body []byte) ([]byte, bool) {
	start, end, ok := memberValue(body, "stream_options")
	if !ok {
		i := bytes.IndexByte(body, '{')
		if i < 0 {
			return body, false
		}
		sep := ","
		if rest := bytes.TrimSpace(body[i+1:]); len(rest) > 0 && rest[0] == '}' {
			sep = ""
		}
		out := make([]byte, 0, len(body)+40)
		out = append(out, body[:i+1]...)
		out = append(out, `"stream_options":{"include_usage":true}`+sep...)
		return append(out, body[i+1:]...), true
	}
	var opts map[string]json.RawMessage
	if json.Unmarshal(body[start:end], &opts) != nil || opts == nil {
		opts = map[string]json.RawMessage{} // null or not an object: replace it
	}
	opts["include_usage"] = json.RawMessage("true")
	val, err := json.Marshal(opts)
	if err != nil {
		return body, false
	}
	out := make([]byte, 0, len(body)+len(val))
	out = append(out, body[:start]...)
	out = append(out, val...)
	return append(out, body[end:]...), true
}

// memberValue finds the byte range of a top-level member's value.
func memberValue(body []byte, name string) (start, end int, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, 0, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, 0, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return 0, 0, false
		}
		if t == name {
			end := int(dec.InputOffset())
			return end - len(raw), end, true
		}
	}
	return 0, 0, false
}
