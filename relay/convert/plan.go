package convert

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/strait/strait/proto/llmapi"
)

// ErrTruncated reports a provider stream that ended without its final
// event: the client must learn that the answer is incomplete.
var ErrTruncated = errors.New("convert: the provider's stream ended before it was complete")

func errBadEvent(err error) error { return fmt.Errorf("convert: malformed provider event: %w", err) }

// MaxBody caps a non-streaming provider response and one stream event.
const MaxBody = 64 << 20

// maxErrorBody caps a provider's error body.
const maxErrorBody = 1 << 20

// writeFunc sends bytes to the client; each call is one SSE event (or the
// whole body) and should leave the relay as one frame.
type writeFunc func([]byte) error

// streamDecoder turns one dialect's stream events into neutral events.
type streamDecoder interface {
	// event handles one SSE event (name may be "") or one JSON array
	// element.
	event(name string, data []byte) error
	// end handles the end of the body; ErrTruncated if it came too soon.
	end() error
}

// streamEncoder writes neutral events in one dialect.
type streamEncoder interface {
	event(Event) error
}

var streamDecoders = map[llmapi.Dialect]func(emitFunc) streamDecoder{
	llmapi.ChatCompletions: func(e emitFunc) streamDecoder { return newChatDecoder(e) },
	llmapi.Messages:        func(e emitFunc) streamDecoder { return newAnthropicDecoder(e) },
	llmapi.GenerateContent: func(e emitFunc) streamDecoder { return newGeminiDecoder(e) },
	llmapi.Responses:       func(e emitFunc) streamDecoder { return newResponsesDecoder(e) },
}

var streamEncoders = map[llmapi.Dialect]func(writeFunc, *Request) streamEncoder{
	llmapi.ChatCompletions: func(w writeFunc, r *Request) streamEncoder { return newChatEncoder(w, r) },
	llmapi.Messages:        func(w writeFunc, r *Request) streamEncoder { return newAnthropicEncoder(w, r) },
	llmapi.Responses:       func(w writeFunc, r *Request) streamEncoder { return newResponsesEncoder(w, r) },
	llmapi.GenerateContent: func(w writeFunc, r *Request) streamEncoder { return newGeminiEncoder(w, r) },
}

var responseDecoders = map[llmapi.Dialect]func([]byte) (*Response, error){
	llmapi.ChatCompletions: decodeChatResponse,
	llmapi.Messages:        decodeAnthropicResponse,
	llmapi.GenerateContent: decodeGeminiResponse,
	llmapi.Responses:       decodeResponsesResponse,
}

var responseEncoders = map[llmapi.Dialect]func(*Response, *Request) []byte{
	llmapi.ChatCompletions: encodeChatResponse,
	llmapi.Messages:        encodeAnthropicResponse,
	llmapi.Responses:       encodeResponsesResponse,
	llmapi.GenerateContent: encodeGeminiResponse,
}

// Plan is one converted exchange: the request to send upstream, and how to
// turn the provider's answer into the client's dialect.
type Plan struct {
	Client, Provider llmapi.Dialect
	// Path and RawQuery are the provider endpoint; Body its request body.
	Path, RawQuery string
	Body           []byte
	Stream         bool
	// clientArray: a Gemini client streaming without alt=sse, which gets
	// the chunks as one JSON array.
	clientArray bool
	req         *Request
	embed       *embedPlan // an embeddings exchange instead of a generation
	count       bool       // a token count instead of a generation
}

// NewPlan converts a client request body of dialect client for a provider
// of dialect provider. model, when not empty, replaces the model the client
// named (the routing table's target). A *Error is the client's fault and
// should be answered in the client's dialect with its Status.
func NewPlan(client, provider llmapi.Dialect, body []byte, model string) (*Plan, error) {
	return NewPlanPath(client, provider, "", "", body, model)
}

// NewPlanPath is NewPlan for a client whose path and query say part of the
// request: a Gemini client names streaming in the path
// (":streamGenerateContent") and its framing in the query (alt=sse);
// embeddings and token counts are told apart from generation by the path.
func NewPlanPath(client, provider llmapi.Dialect, path, rawQuery string, body []byte, model string) (*Plan, error) {
	if isEmbedPath(path) {
		return newEmbedPlan(client, provider, path, body, model)
	}
	if isCountPath(path) {
		return newCountPlan(client, provider, body, model)
	}
	if !Supported(client, provider) {
		return nil, &Error{Kind: ErrInvalid, Message: fmt.Sprintf("converting %s requests to %s is not supported", client, provider)}
	}
	req, err := decodeRequest(client, body, model)
	if err != nil {
		return nil, err
	}
	array := false
	if client == llmapi.GenerateContent {
		req.Stream = strings.HasSuffix(path, ":streamGenerateContent")
		q, _ := url.ParseQuery(rawQuery)
		array = req.Stream && q.Get("alt") != "sse"
	}
	outPath, query, out, err := requestEncoders[provider](req)
	if err != nil {
		return nil, err
	}
	return &Plan{Client: client, Provider: provider, Path: outPath, RawQuery: query, Body: out, Stream: req.Stream,
		clientArray: array, req: req}, nil
}

// decodeRequest decodes a client body of dialect client; model, when not
// empty, replaces the model it names (the routing table's target, or the
// model of a Gemini path), and one of them must name a model.
func decodeRequest(client llmapi.Dialect, body []byte, model string) (*Request, error) {
	req, err := requestDecoders[client](body)
	if err != nil {
		return nil, err
	}
	if req.Model, err = targetModel(req.Model, model); err != nil {
		return nil, err
	}
	return req, nil
}

// targetModel is model when set, else the one the client named.
func targetModel(named, model string) (string, error) {
	if model != "" {
		named = model
	}
	if named == "" {
		return "", invalid("model is required")
	}
	return named, nil
}

// Header adjusts the client's request headers for the provider: the body
// changed, so no length or encoding carries over, and another dialect's
// version headers would only confuse the provider.
func (p *Plan) Header(h http.Header) {
	for _, k := range []string{"Content-Length", "Content-Encoding", "Accept-Encoding", "Accept"} {
		h.Del(k)
	}
	if p.Provider != llmapi.Messages {
		h.Del("Anthropic-Version")
		h.Del("Anthropic-Beta")
	}
	h.Set("Content-Type", "application/json")
}

// ResponseWriter receives the converted response.
type ResponseWriter interface {
	// WriteHeader sends the status and headers; it is called once.
	WriteHeader(status int, h http.Header) error
	// Write sends one SSE event, or the whole non-streaming body; each call
	// should reach the client at once.
	Write(p []byte) error
}

// Respond converts the provider's response (status, header, body) and
// writes it to w. Errors of the provider become errors of the client's
// dialect with the matching status; a stream the provider cut short, or
// that cannot be parsed, ends with an error return after everything
// converted so far went out, so the caller can end the response as broken.
func (p *Plan) Respond(status int, h http.Header, body io.Reader, w ResponseWriter) error {
	if status < 200 || status > 299 {
		b, err := io.ReadAll(io.LimitReader(body, maxErrorBody))
		if err != nil && len(b) == 0 {
			return fmt.Errorf("reading the provider's error: %w", err)
		}
		return writeWhole(w)(p.ErrorResponse(status, h, b))
	}
	if !p.Stream {
		return p.respondWhole(body, w)
	}
	ct := "text/event-stream; charset=utf-8"
	if p.clientArray {
		ct = "application/json; charset=UTF-8"
	}
	if err := w.WriteHeader(http.StatusOK, http.Header{"Content-Type": {ct}, "Cache-Control": {"no-cache"}}); err != nil {
		return err
	}
	return p.Translate(body, isJSON(h), w.Write)
}

// ErrorResponse converts a provider's error answer into the client's
// dialect: status, headers (Retry-After kept) and body.
func (p *Plan) ErrorResponse(status int, h http.Header, body []byte) (int, http.Header, []byte) {
	st, out, eb := p.errorAnswer(ParseError(status, body))
	for _, k := range []string{"Retry-After", "Retry-After-Ms"} {
		if v := h.Get(k); v != "" {
			out.Set(k, v)
		}
	}
	return st, out, eb
}

// errorAnswer is e as the client's error answer: status, headers, body.
func (p *Plan) errorAnswer(e *Error) (int, http.Header, []byte) {
	return e.Status(p.Client), errorHeader(), e.Body(p.Client)
}

// writeWhole returns a function that sends a whole answer to w, for the
// results of ErrorResponse and errorAnswer.
func writeWhole(w ResponseWriter) func(int, http.Header, []byte) error {
	return func(status int, h http.Header, body []byte) error {
		if err := w.WriteHeader(status, h); err != nil {
			return err
		}
		return w.Write(body)
	}
}

func (p *Plan) respondWhole(body io.Reader, w ResponseWriter) error {
	b, err := io.ReadAll(io.LimitReader(body, MaxBody+1))
	if err != nil {
		return fmt.Errorf("reading the provider's response: %w", err)
	}
	if len(b) > MaxBody {
		return fmt.Errorf("the provider's response is over %d bytes", MaxBody)
	}
	if p.embed != nil || p.count {
		var out []byte
		if p.count {
			out, err = countAnswer(p.Client, b)
		} else {
			out, err = p.embed.answer(p.Client, p.Provider, b)
		}
		if err != nil {
			return errBadEvent(err)
		}
		return writeWhole(w)(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, out)
	}
	resp, err := responseDecoders[p.Provider](b)
	var failed *Error
	if errors.As(err, &failed) {
		// An answer that is a failure, though its status said success
		// (Gemini's MALFORMED_FUNCTION_CALL): the client's error.
		return writeWhole(w)(p.errorAnswer(failed))
	}
	if err != nil {
		return errBadEvent(err)
	}
	if resp.Model == "" {
		resp.Model = p.req.Model
	}
	if p.usesFormatTool() {
		formatAnswer(resp)
	}
	out := responseEncoders[p.Client](resp, p.req)
	return writeWhole(w)(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, out)
}

// Translate converts a provider stream event by event: each upstream event
// is decoded and its converted events written before the next is read.
// jsonArray selects Gemini's default framing (one JSON array) over SSE.
func (p *Plan) Translate(body io.Reader, jsonArray bool, write func([]byte) error) error {
	if p.clientArray {
		aw := &arrayWriter{write: write}
		if err := p.translate(body, jsonArray, aw.event); err != nil {
			return err
		}
		return aw.close()
	}
	return p.translate(body, jsonArray, write)
}

func (p *Plan) translate(body io.Reader, jsonArray bool, write func([]byte) error) error {
	enc := streamEncoders[p.Client](write, p.req)
	emit := enc.event
	if p.usesFormatTool() {
		emit = (&formatStream{next: emit, text: map[int]bool{}}).emit
	}
	dec := streamDecoders[p.Provider](emit)
	next := sseEvents(body)
	if jsonArray {
		next = arrayEvents(body)
	}
	for {
		name, data, err := next()
		if err == io.EOF {
			return dec.end()
		}
		if err != nil {
			return fmt.Errorf("reading the provider's stream: %w", err)
		}
		if err := dec.event(name, data); err != nil {
			return err
		}
	}
}

func sseEvents(r io.Reader) func() (string, []byte, error) {
	rd := llmapi.NewReader(r, MaxBody)
	return func() (string, []byte, error) {
		ev, err := rd.Next()
		return ev.Name, ev.Data, err
	}
}

func arrayEvents(r io.Reader) func() (string, []byte, error) {
	rd := llmapi.NewArrayReader(r, MaxBody)
	return func() (string, []byte, error) {
		raw, err := rd.Next()
		return "", raw, err
	}
}

func isJSON(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return strings.HasSuffix(mt, "json")
}

// sseData frames v as one SSE event, with an event line when name is set.
func sseData(name string, v any) []byte {
	var b []byte
	if name != "" {
		b = append(append(append(b, "event: "...), name...), '\n')
	}
	b = append(append(b, "data: "...), mustJSON(v)...)
	return append(b, "\n\n"...)
}

// arrayWriter reframes "data: {…}\n\n" events as the elements of one JSON
// array, Gemini's stream framing without alt=sse: "[" before the first,
// "," between, "]" only after a clean end, so a cut stream stays a broken
// array the client cannot mistake for a whole answer.
type arrayWriter struct {
	write func([]byte) error
	n     int
}

func (a *arrayWriter) event(b []byte) error {
	b = bytes.TrimSuffix(bytes.TrimPrefix(b, []byte("data: ")), []byte("\n\n"))
	sep := "[\n"
	if a.n > 0 {
		sep = ",\r\n"
	}
	a.n++
	return a.write(append([]byte(sep), b...))
}

func (a *arrayWriter) close() error {
	if a.n == 0 {
		return a.write([]byte("[]"))
	}
	return a.write([]byte("\n]"))
}
