package usage

import (
	"bytes"
	"encoding/json"

	"github.com/strait/strait/proto/llmapi"
)

// Request is what the edge needs to know about a request body before it
// goes out: the model (for allow-lists and prices) and an estimate of the
// tokens it may use (for rate limits and quota reservations).
type Request struct {
	// Request is the model and stream flag, read by the parser the relay
	// shares (proto/llmapi).
	llmapi.Request
	// MaxOutput is the client's output cap (max_tokens, max_output_tokens,
	// maxOutputTokens…); zero when it set none.
	MaxOutput int64
	// IncludeUsage is OpenAI's stream_options.include_usage as sent.
	IncludeUsage bool
}

// Inspect reads the request's model and limits in one pass over the body.
// Its errors are llmapi's: ErrBadModel for a model no policy can judge,
// ErrNotJSON for a body that is not a JSON object (then only a Gemini
// path's model is known). Limits of the wrong type are ignored: only what
// metering reads is missing then.
func Inspect(family llmapi.Family, path string, body []byte) (Request, error) {
	var r Request
	var err error
	r.Request, err = llmapi.Parse(family, path, body, func(name string, v []byte) {
		switch name {
		case "max_tokens", "max_completion_tokens", "max_output_tokens":
			var n int64
			if json.Unmarshal(v, &n) == nil {
				r.MaxOutput = max(r.MaxOutput, n)
			}
		case "generationConfig":
			var g struct {
				MaxOutputTokens int64 `json:"maxOutputTokens"`
			}
			if json.Unmarshal(v, &g) == nil {
				r.MaxOutput = max(r.MaxOutput, g.MaxOutputTokens)
			}
		case "stream_options":
			var o struct {
				IncludeUsage bool `json:"include_usage"`
			}
			if json.Unmarshal(v, &o) == nil {
				r.IncludeUsage = o.IncludeUsage
			}
		}
	})
	if err != nil {
		return Request{Request: r.Request}, err
	}
	return r, nil
}

// Estimate is the tokens a request may consume before its usage is known:
// its input estimated from its size, plus its output cap (or defaultOutput
// when it has none), at most MaxEstimate.
func (r Request) Estimate(bodyBytes int, defaultOutput int64) int64 {
	out := r.MaxOutput
	if out <= 0 {
		out = defaultOutput
	}
	return min(EstimateTokens(bodyBytes)+min(out, MaxEstimate), MaxEstimate)
}

// MaxEstimate bounds Estimate, far above any model's context (2^40, about
// 10^12 tokens). The output cap is the client's number: unbounded, a cap
// near int64's maximum wrapped the sum to a negative estimate, which
// passed every limit and gave tokens back to the buckets and the quotas,
// and a shared store's script (Lua numbers are doubles, written with 14
// digits) cannot count one past about 10^14.
const MaxEstimate = 1 << 40

// ForceIncludeUsage asks the provider for the usage chunk of an OpenAI Chat
// Completions stream whose client did not, and reports whether it changed
// the body. Everything but stream_options passes byte for byte: the member
// is inserted first, or only its value is rewritten.
func ForceIncludeUsage(body []byte) ([]byte, bool) {
	start, end, ok := llmapi.MemberSpan(body, "stream_options")
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
