package fakeprovider

import (
	"cmp"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// openAIAPI is the OpenAI API dialect: Chat Completions, Responses,
// Embeddings and Models.
type openAIAPI struct{}

func (openAIAPI) name() string { return "openai" }

func (openAIAPI) describe(_ *http.Request, body []byte) (string, bool) { return jsonModel(body) }

func (openAIAPI) setHeaders(h http.Header, c *call) {
	h.Set("x-request-id", c.id("req_"))
	h.Set("openai-version", "2020-10-01")
}

func (openAIAPI) authenticate(r *http.Request, keys Keys) *apiError {
	return checkKey(bearer(r), keys.OpenAI,
		"You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
		"Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.")
}

func (openAIAPI) route(r *http.Request) handler {
	p, get, post := r.URL.Path, r.Method == http.MethodGet, r.Method == http.MethodPost
	switch {
	case post && p == "/v1/chat/completions":
		return openAIChat
	case post && p == "/v1/responses":
		return openAIResponses
	case post && p == "/v1/embeddings":
		return openAIEmbeddings
	case get && p == "/v1/models":
		return openAIListModels
	case get && strings.HasPrefix(p, "/v1/models/") && len(p) > len("/v1/models/"):
		return openAIGetModel
	}
	return openAIFiles(r.Method, p)
}

func (openAIAPI) errorBody(_ *call, e *apiError, h http.Header) any {
	if e.retryAfter > 0 {
		// openai-go prefers this header over Retry-After for its backoff.
		h.Set("retry-after-ms", strconv.FormatInt(e.retryAfter.Milliseconds(), 10))
	}
	cl := classOf(e.status)
	return object{{"error", object{
		{"message", e.message},
		{"type", cl.openAIType},
		{"param", nullable(e.param)},
		{"code", nullable(cmp.Or(e.code, cl.openAICode))},
	}}}
}

// nullable renders "" as JSON null, as OpenAI does for absent param/code.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// requireModel answers 400 when the request names no model.
func requireModel(c *call, model string) bool {
	if model != "" {
		return true
	}
	c.fail(&apiError{status: http.StatusBadRequest, message: "you must provide a model parameter", param: "model"})
	return false
}

// --- Chat Completions ---

type chatRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	MaxTokens           int `json:"max_tokens"`
	MaxCompletionTokens int `json:"max_completion_tokens"`
}

func openAIChat(c *call) {
	var req chatRequest
	if !c.decode(&req) || !requireModel(c, req.Model) {
		return
	}
	cp := c.generate(max(req.MaxCompletionTokens, req.MaxTokens))
	if req.Stream {
		streamChat(c, &req, cp)
		return
	}
	message := object{{"role", "assistant"}, {"content", cp.text()}, {"refusal", nil}, {"annotations", []any{}}}
	c.reply(cp, append(chatEnvelope(c, &req, "chat.completion"),
		field{"choices", []any{chatChoice("message", message, chatFinish(cp))}},
		field{"usage", chatUsage(c, cp)}))
}

// streamChat sends a first chunk with the role, one chunk per piece, a
// chunk with finish_reason, the usage chunk (only when asked for) and
// [DONE]. Chunks carry "usage": null exactly when include_usage is set.
func streamChat(c *call, req *chatRequest, cp completion) {
	s := c.startStream("text/event-stream; charset=utf-8", "\n")
	chunk := func(choices []any, usage any) object {
		o := append(chatEnvelope(c, req, "chat.completion.chunk"), field{"choices", choices})
		if req.StreamOptions.IncludeUsage {
			o = append(o, field{"usage", usage})
		}
		return o
	}
	delta := func(d object, finish any) object {
		return chunk([]any{chatChoice("delta", d, finish)}, nil)
	}
	ok := s.event("", delta(object{{"role", "assistant"}, {"content", ""}, {"refusal", nil}}, nil)) &&
		s.each(cp, func(_ int, p string) bool { return s.event("", delta(object{{"content", p}}, nil)) }) &&
		s.event("", delta(object{}, chatFinish(cp)))
	if ok && req.StreamOptions.IncludeUsage {
		ok = s.event("", chunk([]any{}, chatUsage(c, cp)))
	}
	if ok && s.write([]byte("data: [DONE]\n\n")) {
		s.end()
	}
}

func chatEnvelope(c *call, req *chatRequest, objectType string) object {
	return object{
		{"id", c.id("chatcmpl-")},
		{"object", objectType},
		{"created", c.start.Unix()},
		{"model", req.Model},
		{"service_tier", "default"},
		{"system_fingerprint", "fp_fake"},
	}
}

func chatChoice(key string, content object, finish any) object {
	return object{{"index", 0}, {key, content}, {"logprobs", nil}, {"finish_reason", finish}}
}

func chatFinish(cp completion) string {
	if cp.truncated {
		return "length"
	}
	return "stop"
}

func chatUsage(c *call, cp completion) object {
	in, out := c.promptTokens(), len(cp.pieces)
	return object{
		{"prompt_tokens", in},
		{"completion_tokens", out},
		{"total_tokens", in + out},
		{"prompt_tokens_details", object{{"cached_tokens", 0}, {"audio_tokens", 0}}},
		{"completion_tokens_details", object{{"reasoning_tokens", 0}, {"audio_tokens", 0}, {"accepted_prediction_tokens", 0}, {"rejected_prediction_tokens", 0}}},
	}
}

// --- Responses ---

type responsesRequest struct {
	Model           string `json:"model"`
	Stream          bool   `json:"stream"`
	MaxOutputTokens int    `json:"max_output_tokens"`
}

// response is one Responses API answer under construction.
type response struct {
	c   *call
	req *responsesRequest
	cp  completion
}

func openAIResponses(c *call) {
	var req responsesRequest
	if !c.decode(&req) || !requireModel(c, req.Model) {
		return
	}
	rs := &response{c: c, req: &req, cp: c.generate(req.MaxOutputTokens)}
	if req.Stream {
		rs.stream()
		return
	}
	c.reply(rs.cp, rs.final())
}

// stream sends the documented event sequence for one text message; every
// event repeats its type in the data and carries a sequence number.
func (rs *response) stream() {
	s := rs.c.startStream("text/event-stream; charset=utf-8", "\n")
	seq := 0
	emit := func(typ string, fields ...field) bool {
		o := append(object{{"type", typ}, {"sequence_number", seq}}, fields...)
		seq++
		return s.event(typ, o)
	}
	at := []field{{"item_id", rs.c.id("msg_")}, {"output_index", 0}, {"content_index", 0}}
	text := rs.cp.text()
	ok := emit("response.created", field{"response", rs.envelope("in_progress", []any{}, nil)}) &&
		emit("response.in_progress", field{"response", rs.envelope("in_progress", []any{}, nil)}) &&
		emit("response.output_item.added", field{"output_index", 0}, field{"item", rs.message("in_progress", []any{})}) &&
		emit("response.content_part.added", append(at, field{"part", outputText("")})...) &&
		s.each(rs.cp, func(_ int, p string) bool {
			return emit("response.output_text.delta", append(at, field{"delta", p}, field{"logprobs", []any{}})...)
		}) &&
		emit("response.output_text.done", append(at, field{"text", text}, field{"logprobs", []any{}})...) &&
		emit("response.content_part.done", append(at, field{"part", outputText(text)})...) &&
		emit("response.output_item.done", field{"output_index", 0}, field{"item", rs.message("completed", []any{outputText(text)})}) &&
		emit("response."+rs.status(), field{"response", rs.final()})
	if ok {
		s.end()
	}
}

// status is "completed", or "incomplete" when max_output_tokens cut the
// answer short; it doubles as the name of the final stream event.
func (rs *response) status() string {
	if rs.cp.truncated {
		return "incomplete"
	}
	return "completed"
}

func (rs *response) final() object {
	in, out := rs.c.promptTokens(), len(rs.cp.pieces)
	usage := object{
		{"input_tokens", in},
		{"input_tokens_details", object{{"cached_tokens", 0}}},
		{"output_tokens", out},
		{"output_tokens_details", object{{"reasoning_tokens", 0}}},
		{"total_tokens", in + out},
	}
	output := []any{rs.message("completed", []any{outputText(rs.cp.text())})}
	return rs.envelope(rs.status(), output, usage)
}

func (rs *response) envelope(status string, output []any, usage any) object {
	var incomplete, completedAt, maxOut any
	switch status {
	case "incomplete":
		incomplete = object{{"reason", "max_output_tokens"}}
	case "completed":
		completedAt = rs.c.start.Unix()
	}
	if rs.req.MaxOutputTokens > 0 {
		maxOut = rs.req.MaxOutputTokens
	}
	return object{
		{"id", rs.c.id("resp_")},
		{"object", "response"},
		{"created_at", rs.c.start.Unix()},
		{"status", status},
		{"background", false},
		{"completed_at", completedAt},
		{"error", nil},
		{"incomplete_details", incomplete},
		{"instructions", nil},
		{"max_output_tokens", maxOut},
		{"model", rs.req.Model},
		{"output", output},
		{"parallel_tool_calls", true},
		{"previous_response_id", nil},
		{"reasoning", object{{"effort", nil}, {"summary", nil}}},
		{"service_tier", "default"},
		{"store", true},
		{"temperature", 1.0},
		{"text", object{{"format", object{{"type", "text"}}}}},
		{"tool_choice", "auto"},
		{"tools", []any{}},
		{"top_p", 1.0},
		{"truncation", "disabled"},
		{"usage", usage},
		{"user", nil},
		{"metadata", object{}},
	}
}

func (rs *response) message(status string, content []any) object {
	return object{{"id", rs.c.id("msg_")}, {"type", "message"}, {"status", status}, {"content", content}, {"role", "assistant"}}
}

func outputText(text string) object {
	return object{{"type", "output_text"}, {"annotations", []any{}}, {"logprobs", []any{}}, {"text", text}}
}

// --- Embeddings ---

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     int             `json:"dimensions"`
}

// openAIEmbeddings answers with float arrays by default (openai-go sends no
// encoding_format) and with base64 little-endian float32s when asked.
func openAIEmbeddings(c *call) {
	var req embeddingRequest
	if !c.decode(&req) || !requireModel(c, req.Model) {
		return
	}
	inputs, ok := embeddingInputs(req.Input)
	if !ok {
		c.fail(&apiError{status: http.StatusBadRequest, message: "'input' must be a non-empty string or array", param: "input"})
		return
	}
	if req.EncodingFormat != "" && req.EncodingFormat != "float" && req.EncodingFormat != "base64" {
		c.fail(&apiError{status: http.StatusBadRequest, message: "'encoding_format' must be 'float' or 'base64'", param: "encoding_format"})
		return
	}
	dims := cmpOr(req.Dimensions, 1536)
	data := make([]any, len(inputs))
	for i, in := range inputs {
		var embedding any = vector(in, dims)
		if req.EncodingFormat == "base64" {
			embedding = base64Vector(vector(in, dims))
		}
		data[i] = object{{"object", "embedding"}, {"index", i}, {"embedding", embedding}}
	}
	tokens := c.promptTokens()
	c.writeJSON(http.StatusOK, object{
		{"object", "list"},
		{"data", data},
		{"model", req.Model},
		{"usage", object{{"prompt_tokens", tokens}, {"total_tokens", tokens}}},
	})
}

// embeddingInputs splits "input" into the items that each get a vector: a
// string, an array of strings, one token array or an array of token arrays.
func embeddingInputs(raw json.RawMessage) ([]string, bool) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, one != ""
	}
	var many []json.RawMessage
	if json.Unmarshal(raw, &many) != nil || len(many) == 0 {
		return nil, false
	}
	if first := strings.TrimSpace(string(many[0])); first != "" && strings.ContainsRune("-0123456789", rune(first[0])) {
		return []string{string(raw)}, true // a single token array
	}
	out := make([]string, len(many))
	for i, m := range many {
		out[i] = string(m)
	}
	return out, true
}

func cmpOr(v, fallback int) int {
	if v > 0 {
		return v
	}
	return fallback
}

// --- Models ---

// openAIModels is the catalogue GET /v1/models lists; GET /v1/models/{id}
// answers for any id, because every model name is served.
var openAIModels = []string{"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-5", "gpt-5-mini", "text-embedding-3-small", "text-embedding-3-large"}

func openAIListModels(c *call) {
	data := make([]any, len(openAIModels))
	for i, id := range openAIModels {
		data[i] = openAIModel(id)
	}
	c.writeJSON(http.StatusOK, object{{"object", "list"}, {"data", data}})
}

func openAIGetModel(c *call) {
	c.writeJSON(http.StatusOK, openAIModel(strings.TrimPrefix(c.r.URL.Path, "/v1/models/")))
}

func openAIModel(id string) object {
	return object{{"id", id}, {"object", "model"}, {"created", 1715367049}, {"owned_by", "system"}}
}
