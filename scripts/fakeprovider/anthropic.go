package fakeprovider

import (
	"net/http"
	"strings"
)

// anthropicAPI is the Anthropic Messages API dialect.
type anthropicAPI struct{}

func (anthropicAPI) name() string { return "anthropic" }

func (anthropicAPI) describe(_ *http.Request, body []byte) (string, bool) { return jsonModel(body) }

func (anthropicAPI) setHeaders(h http.Header, c *call) { h.Set("request-id", c.id("req_")) }

// authenticate requires anthropic-version like the real API, and accepts the
// key in x-api-key or, as for OAuth clients such as Claude Code, as a
// bearer token.
func (anthropicAPI) authenticate(r *http.Request, keys Keys) *apiError {
	if r.Header.Get("anthropic-version") == "" {
		return &apiError{status: http.StatusBadRequest, message: "anthropic-version: header is required"}
	}
	key := r.Header.Get("x-api-key")
	if key == "" {
		key = bearer(r)
	}
	return checkKey(key, keys.Anthropic, "x-api-key header is required", "invalid x-api-key")
}

func (anthropicAPI) route(r *http.Request) handler {
	p, get, post := r.URL.Path, r.Method == http.MethodGet, r.Method == http.MethodPost
	switch {
	case post && p == "/v1/messages":
		return anthropicMessages
	case post && p == "/v1/messages/count_tokens":
		return anthropicCountTokens
	case get && p == "/v1/models":
		return anthropicListModels
	case get && strings.HasPrefix(p, "/v1/models/") && len(p) > len("/v1/models/"):
		return anthropicGetModel
	}
	return nil
}

func (anthropicAPI) errorBody(c *call, e *apiError, _ http.Header) any {
	return object{
		{"type", "error"},
		{"error", object{{"type", classOf(e.status).anthropicType}, {"message", e.message}}},
		{"request_id", c.id("req_")},
	}
}

type messagesRequest struct {
	Model     string `json:"model"`
	Stream    bool   `json:"stream"`
	MaxTokens int    `json:"max_tokens"`
}

// decodeMessages parses and validates a messages or count_tokens body.
func decodeMessages(c *call, needMaxTokens bool) (*messagesRequest, bool) {
	var req messagesRequest
	if !c.decode(&req) {
		return nil, false
	}
	switch {
	case req.Model == "":
		c.fail(&apiError{status: http.StatusBadRequest, message: "model: Field required"})
	case needMaxTokens && req.MaxTokens <= 0:
		c.fail(&apiError{status: http.StatusBadRequest, message: "max_tokens: Field required"})
	default:
		return &req, true
	}
	return nil, false
}

func anthropicMessages(c *call) {
	req, ok := decodeMessages(c, true)
	if !ok {
		return
	}
	cp := c.generate(req.MaxTokens)
	if req.Stream {
		streamMessage(c, req, cp)
		return
	}
	content := []any{object{{"type", "text"}, {"text", cp.text()}}}
	c.reply(cp, anthropicMessage(c, req, content, stopReason(cp), len(cp.pieces)))
}

// streamMessage sends message_start, one text block (start, a ping, one
// text_delta per piece, stop), message_delta with the stop reason and the
// cumulative output_tokens, and message_stop. There is no [DONE].
func streamMessage(c *call, req *messagesRequest, cp completion) {
	s := c.startStream("text/event-stream; charset=utf-8", "\n")
	ev := func(typ string, fields ...field) bool {
		return s.event(typ, append(object{{"type", typ}}, fields...))
	}
	block := field{"index", 0}
	ok := ev("message_start", field{"message", anthropicMessage(c, req, []any{}, nil, 1)}) &&
		ev("content_block_start", block, field{"content_block", object{{"type", "text"}, {"text", ""}}}) &&
		ev("ping") &&
		s.each(cp, func(_ int, p string) bool {
			return ev("content_block_delta", block, field{"delta", object{{"type", "text_delta"}, {"text", p}}})
		}) &&
		ev("content_block_stop", block) &&
		ev("message_delta",
			field{"delta", object{{"stop_reason", stopReason(cp)}, {"stop_sequence", nil}}},
			field{"usage", object{{"output_tokens", len(cp.pieces)}}}) &&
		ev("message_stop")
	if ok {
		s.end()
	}
}

func anthropicMessage(c *call, req *messagesRequest, content []any, stop any, outputTokens int) object {
	return object{
		{"id", c.id("msg_")},
		{"type", "message"},
		{"role", "assistant"},
		{"model", req.Model},
		{"content", content},
		{"stop_reason", stop},
		{"stop_sequence", nil},
		{"usage", object{
			{"input_tokens", c.promptTokens()},
			{"cache_creation_input_tokens", 0},
			{"cache_read_input_tokens", 0},
			{"output_tokens", outputTokens},
			{"service_tier", "standard"},
		}},
	}
}

func stopReason(cp completion) string {
	if cp.truncated {
		return "max_tokens"
	}
	return "end_turn"
}

func anthropicCountTokens(c *call) {
	if _, ok := decodeMessages(c, false); ok {
		c.writeJSON(http.StatusOK, object{{"input_tokens", c.promptTokens()}})
	}
}

// anthropicModels is the catalogue GET /v1/models lists; GET
// /v1/models/{id} answers for any id, because every model name is served.
var anthropicModels = [][2]string{
	{"claude-opus-4-1-20250805", "Claude Opus 4.1"},
	{"claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"},
	{"claude-haiku-4-5-20251001", "Claude Haiku 4.5"},
}

func anthropicListModels(c *call) {
	data := make([]any, len(anthropicModels))
	for i, m := range anthropicModels {
		data[i] = anthropicModel(m[0], m[1])
	}
	c.writeJSON(http.StatusOK, object{
		{"data", data},
		{"has_more", false},
		{"first_id", anthropicModels[0][0]},
		{"last_id", anthropicModels[len(anthropicModels)-1][0]},
	})
}

func anthropicGetModel(c *call) {
	id := strings.TrimPrefix(c.r.URL.Path, "/v1/models/")
	c.writeJSON(http.StatusOK, anthropicModel(id, id))
}

func anthropicModel(id, display string) object {
	return object{{"type", "model"}, {"id", id}, {"display_name", display}, {"created_at", "2025-08-05T00:00:00Z"}}
}
