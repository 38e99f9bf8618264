package fakeprovider

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
)

// geminiAPI is the Gemini API (generativelanguage.googleapis.com) dialect,
// served under /v1beta/ and /v1/.
type geminiAPI struct{}

func (geminiAPI) name() string { return "gemini" }

func (geminiAPI) describe(r *http.Request, _ []byte) (string, bool) {
	model, method := geminiTarget(r.URL.Path)
	return model, method == "streamGenerateContent"
}

func (geminiAPI) setHeaders(http.Header, *call) {}

const geminiBadKey = "API key not valid. Please pass a valid API key."

// authenticate rejects a key in the URL even when it is valid: keys in URLs
// end up in logs and error texts, and tests use this to prove that no hop
// of the path puts them there.
func (geminiAPI) authenticate(r *http.Request, keys Keys) *apiError {
	if r.URL.Query().Has("key") {
		return &apiError{status: http.StatusBadRequest, message: "API key must be sent in x-goog-api-key header"}
	}
	e := checkKey(r.Header.Get("x-goog-api-key"), keys.Gemini,
		"Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
		geminiBadKey)
	if e != nil && e.message == geminiBadKey {
		// Google answers a wrong key with 400, naming it in the details.
		e.status, e.reason = http.StatusBadRequest, "API_KEY_INVALID"
	}
	return e
}

func (geminiAPI) route(r *http.Request) handler {
	rest, ok := geminiRest(r.URL.Path)
	if !ok {
		return nil
	}
	if r.Method == http.MethodGet {
		switch {
		case rest == "models":
			return geminiListModels
		case strings.HasPrefix(rest, "models/") && !strings.Contains(rest, ":"):
			return geminiGetModel
		}
		return nil
	}
	if r.Method != http.MethodPost {
		return nil
	}
	_, method := geminiTarget(r.URL.Path)
	return geminiMethods[method]
}

var geminiMethods = map[string]handler{
	"generateContent":       func(c *call) { geminiGenerate(c, false) },
	"streamGenerateContent": func(c *call) { geminiGenerate(c, true) },
	"countTokens":           geminiCountTokens,
	"embedContent":          geminiEmbedContent,
	"batchEmbedContents":    geminiBatchEmbedContents,
}

func (geminiAPI) errorBody(_ *call, e *apiError, _ http.Header) any {
	body := object{{"code", e.status}, {"message", e.message}, {"status", classOf(e.status).geminiStatus}}
	var details []any
	if e.reason != "" {
		details = append(details, object{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
			{"reason", e.reason}, {"domain", "googleapis.com"}})
	}
	if e.retryAfter > 0 {
		// Google APIs carry the delay in the body; Retry-After is set too.
		delay := fmt.Sprintf("%ds", int(math.Ceil(e.retryAfter.Seconds())))
		details = append(details, object{{"@type", "type.googleapis.com/google.rpc.RetryInfo"}, {"retryDelay", delay}})
	}
	if details != nil {
		body = append(body, field{"details", details})
	}
	return object{{"error", body}}
}

// geminiRest strips the API version from a path.
func geminiRest(path string) (string, bool) {
	for _, prefix := range []string{"/v1beta/", "/v1/"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok {
			return rest, true
		}
	}
	return "", false
}

// geminiTarget splits ".../models/{model}:{method}" into model and method.
func geminiTarget(path string) (model, method string) {
	rest, _ := geminiRest(path)
	rest, ok := strings.CutPrefix(rest, "models/")
	if !ok {
		return "", ""
	}
	model, method, _ = strings.Cut(rest, ":")
	return model, method
}

type generateRequest struct {
	Contents         []json.RawMessage `json:"contents"`
	GenerationConfig struct {
		MaxOutputTokens int `json:"maxOutputTokens"`
	} `json:"generationConfig"`
}

// geminiGenerate answers generateContent and streamGenerateContent. The
// stream is SSE with ?alt=sse (what genai uses) and otherwise one JSON
// array whose elements are written and flushed as they are generated.
func geminiGenerate(c *call, stream bool) {
	var req generateRequest
	if !c.decode(&req) {
		return
	}
	if len(req.Contents) == 0 {
		c.fail(&apiError{status: http.StatusBadRequest, message: "* GenerateContentRequest.contents: contents is not specified"})
		return
	}
	g := &generation{c: c, cp: c.generate(req.GenerationConfig.MaxOutputTokens)}
	switch {
	case !stream:
		c.reply(g.cp, g.chunk(g.cp.text(), true))
	case c.r.URL.Query().Get("alt") == "sse":
		g.streamSSE()
	default:
		g.streamArray()
	}
}

// generation is one generateContent answer under construction.
type generation struct {
	c  *call
	cp completion
}

// chunks calls send with one GenerateContentResponse per piece; the last
// one carries finishReason and usageMetadata. An empty completion still
// sends one (empty) final chunk.
func (g *generation) chunks(s *streamer, send func(i int, chunk object) bool) bool {
	if len(g.cp.pieces) == 0 {
		return send(0, g.chunk("", true))
	}
	last := len(g.cp.pieces) - 1
	return s.each(g.cp, func(i int, p string) bool { return send(i, g.chunk(p, i == last)) })
}

// streamSSE frames each chunk as "data: {…}\r\n\r\n" like the real API;
// there is no [DONE], the stream just ends.
func (g *generation) streamSSE() {
	s := g.c.startStream("text/event-stream", "\r\n")
	if g.chunks(s, func(_ int, chunk object) bool { return s.event("", chunk) }) {
		s.end()
	}
}

// streamArray writes "[{…}\n,{…}\n,{…}]", one element per flush.
func (g *generation) streamArray() {
	s := g.c.startStream("application/json; charset=UTF-8", "")
	ok := g.chunks(s, func(i int, chunk object) bool {
		sep := "\n,"
		if i == 0 {
			sep = "["
		}
		return s.write(append([]byte(sep), mustJSON(chunk)...))
	})
	if ok && s.write([]byte("]")) {
		s.end()
	}
}

func (g *generation) chunk(text string, final bool) object {
	candidate := object{{"content", object{{"parts", []any{object{{"text", text}}}}, {"role", "model"}}}}
	if final {
		candidate = append(candidate, field{"finishReason", g.finishReason()})
	}
	candidate = append(candidate, field{"index", 0})
	out := object{{"candidates", []any{candidate}}}
	if final {
		in, n := g.c.promptTokens(), len(g.cp.pieces)
		out = append(out, field{"usageMetadata", object{
			{"promptTokenCount", in},
			{"candidatesTokenCount", n},
			{"totalTokenCount", in + n},
			{"promptTokensDetails", []any{object{{"modality", "TEXT"}, {"tokenCount", in}}}},
		}})
	}
	model, _ := geminiTarget(g.c.r.URL.Path)
	return append(out, field{"modelVersion", model}, field{"responseId", g.c.id("resp_")})
}

func (g *generation) finishReason() string {
	if g.cp.truncated {
		return "MAX_TOKENS"
	}
	return "STOP"
}

func geminiCountTokens(c *call) {
	c.writeJSON(http.StatusOK, object{{"totalTokens", c.promptTokens()}})
}

// embedRequest is one embedContent body, also one element of
// batchEmbedContents' "requests" (which genai's EmbedContent uses).
type embedRequest struct {
	Content              json.RawMessage `json:"content"`
	OutputDimensionality int             `json:"outputDimensionality"`
}

func (e *embedRequest) embedding() object {
	return object{{"values", vector(string(e.Content), cmpOr(e.OutputDimensionality, 768))}}
}

func geminiEmbedContent(c *call) {
	var req embedRequest
	if !c.decode(&req) {
		return
	}
	if len(req.Content) == 0 {
		c.fail(&apiError{status: http.StatusBadRequest, message: "* EmbedContentRequest.content: content is not specified"})
		return
	}
	c.writeJSON(http.StatusOK, object{{"embedding", req.embedding()}})
}

func geminiBatchEmbedContents(c *call) {
	var req struct {
		Requests []embedRequest `json:"requests"`
	}
	if !c.decode(&req) {
		return
	}
	if len(req.Requests) == 0 {
		c.fail(&apiError{status: http.StatusBadRequest, message: "* BatchEmbedContentsRequest.requests: requests is not specified"})
		return
	}
	out := make([]any, len(req.Requests))
	for i := range req.Requests {
		out[i] = req.Requests[i].embedding()
	}
	c.writeJSON(http.StatusOK, object{{"embeddings", out}})
}

// geminiModels is the catalogue GET models lists; GET models/{model}
// answers for any name, because every model name is served.
var geminiModels = []string{"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-embedding-001"}

func geminiListModels(c *call) {
	models := make([]any, len(geminiModels))
	for i, m := range geminiModels {
		models[i] = geminiModel(m)
	}
	c.writeJSON(http.StatusOK, object{{"models", models}})
}

func geminiGetModel(c *call) {
	rest, _ := geminiRest(c.r.URL.Path)
	c.writeJSON(http.StatusOK, geminiModel(strings.TrimPrefix(rest, "models/")))
}

func geminiModel(name string) object {
	methods := []string{"generateContent", "countTokens"}
	if strings.Contains(name, "embedding") {
		methods = []string{"embedContent", "batchEmbedContents", "countTokens"}
	}
	return object{
		{"name", "models/" + name},
		{"version", "001"},
		{"displayName", name},
		{"description", "fakeprovider model " + name},
		{"inputTokenLimit", 1048576},
		{"outputTokenLimit", 65536},
		{"supportedGenerationMethods", methods},
	}
}
