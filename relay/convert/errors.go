package convert

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/strait/strait/proto/llmapi"
)

// ErrKind classifies an error independently of any dialect.
type ErrKind int

// Error kinds.
const (
	ErrInvalid ErrKind = iota
	ErrAuth
	ErrPermission
	ErrNotFound
	ErrTooLarge
	ErrRateLimit
	ErrOverloaded
	ErrServer
	ErrTimeout
	// The statuses below are kept as they are, not folded into 400: the
	// OpenAI and Anthropic SDKs raise a class of their own for each, and
	// retry 408 and 409.
	ErrPayment        // 402: the provider account's credit or billing
	ErrRequestTimeout // 408
	ErrConflict       // 409
	ErrUnprocessable  // 422
)

// Error is a provider's (or the converter's own) error in neutral form.
type Error struct {
	Kind    ErrKind
	Message string
}

func (e *Error) Error() string { return e.Message }

// invalid is a client error found while converting a request.
func invalid(format string, args ...any) *Error {
	return &Error{Kind: ErrInvalid, Message: sprintf(format, args...)}
}

// kindInfo is one kind's status in each dialect; each family's error name
// follows from it (llmapi.OpenAIErrorType, AnthropicErrorType,
// GeminiErrorStatus), the names the edge's own errors give it too.
type kindInfo struct {
	status int
	// anthropicStatus differs where the APIs do (529).
	anthropicStatus int
}

var kinds = map[ErrKind]kindInfo{
	ErrInvalid:        {400, 400},
	ErrAuth:           {401, 401},
	ErrPermission:     {403, 403},
	ErrNotFound:       {404, 404},
	ErrTooLarge:       {413, 413},
	ErrRateLimit:      {429, 429},
	ErrOverloaded:     {503, 529},
	ErrServer:         {500, 500},
	ErrTimeout:        {504, 504},
	ErrPayment:        {402, 402},
	ErrRequestTimeout: {408, 408},
	ErrConflict:       {409, 409},
	ErrUnprocessable:  {422, 422},
}

// statusKinds are the HTTP statuses that have a kind of their own.
var statusKinds = map[int]ErrKind{401: ErrAuth, 402: ErrPayment, 403: ErrPermission, 404: ErrNotFound,
	408: ErrRequestTimeout, 409: ErrConflict, 413: ErrTooLarge, 422: ErrUnprocessable, 429: ErrRateLimit,
	503: ErrOverloaded, 529: ErrOverloaded, 504: ErrTimeout}

// kindOfStatus classifies an HTTP status.
func kindOfStatus(status int) ErrKind {
	if k, ok := statusKinds[status]; ok {
		return k
	}
	if status >= 500 {
		return ErrServer
	}
	return ErrInvalid
}

// kindOfType refines a kind from the error name a provider gave (its
// type, code or status), for the cases the status alone cannot tell (an
// in-band stream error has none): the status the name stands for
// (llmapi.ErrorNameStatus), as a kind. Every name llmapi's tables give a
// kind reads back as that kind (TestErrorNamesReadBack), save Gemini's
// FAILED_PRECONDITION, which stays a 400 while Strait names its own 402s
// so, the nearest code.
func kindOfType(t string, fallback ErrKind) ErrKind {
	if status, ok := llmapi.ErrorNameStatus(t); ok {
		return kindOfStatus(status)
	}
	return fallback
}

// ParseError reads a provider's error body (any of the three shapes) with
// its HTTP status; status 0 means an in-band stream error.
func ParseError(status int, body []byte) *Error {
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	fallback := ErrServer
	if status != 0 {
		fallback = kindOfStatus(status)
	}
	e := &Error{Kind: fallback, Message: http.StatusText(status)}
	if status == 0 {
		e.Message = "the provider reported an error"
	}
	// Gemini's OpenAI-compatible endpoint wraps the object in an array.
	trimmed := trimArray(body)
	if json.Unmarshal(trimmed, &v) != nil || len(v.Error) == 0 {
		if len(body) > 0 && len(body) < 512 {
			e.Message = string(body)
		}
		return e
	}
	var d llmapi.ErrorDetail
	if json.Unmarshal(v.Error, &d) != nil {
		var s string
		if json.Unmarshal(v.Error, &s) == nil && s != "" {
			e.Message = s
		}
		return e
	}
	if d.Message != "" {
		e.Message = d.Message
	}
	if code := 0; status == 0 && json.Unmarshal(d.Code, &code) == nil && code >= 400 && code < 600 {
		// An in-band error has no status line, but Gemini's carries the
		// HTTP status as its code: the kind when the names tell nothing.
		fallback = kindOfStatus(code)
	}
	switch {
	case status == 0 || status == 400 || status >= 500:
		// Statuses 400 and 5xx are broad; the type says more (e.g. an
		// Anthropic overloaded_error in-band, or Gemini's 503 UNAVAILABLE).
		e.Kind = kindOfDetail(&d, fallback)
	case status == 429 && kindOfDetail(&d, fallback) == ErrPayment:
		// OpenAI answers an account out of credit with a 429 of type
		// insufficient_quota: a client of another API must not read it as
		// a rate limit, which its SDK retries in vain.
		e.Kind = ErrPayment
	}
	return e
}

// kindOfDetail is the kind of the first name in d that kindOfType knows:
// the type, Gemini's status, then OpenAI's code. The code is asked last
// but asked even when there is a type, since some types name nothing: a
// rate limit's type is "tokens" or "requests" with the code
// rate_limit_exceeded, and a Responses error event's type is "error".
func kindOfDetail(d *llmapi.ErrorDetail, fallback ErrKind) ErrKind {
	var code string
	_ = json.Unmarshal(d.Code, &code) // Gemini's code is a number: no name
	const unknown = ErrKind(-1)
	for _, name := range []string{d.Type, d.Status, code} {
		if k := kindOfType(name, unknown); k != unknown {
			return k
		}
	}
	return fallback
}

func trimArray(b []byte) []byte {
	var arr []json.RawMessage
	if len(b) > 0 && b[0] == '[' && json.Unmarshal(b, &arr) == nil && len(arr) > 0 {
		return arr[0]
	}
	return b
}

// Status is the HTTP status of e in dialect d.
func (e *Error) Status(d llmapi.Dialect) int {
	info := kinds[e.Kind]
	if d == llmapi.Messages {
		return info.anthropicStatus
	}
	return info.status
}

// Body renders e as dialect d's JSON error body (llmapi.ErrorBody).
func (e *Error) Body(d llmapi.Dialect) []byte {
	info, f := kinds[e.Kind], d.Family()
	typ := llmapi.ErrorType(f, llmapi.OpenAIErrorType(info.status), llmapi.AnthropicErrorType(info.anthropicStatus), llmapi.GeminiErrorStatus(info.status))
	return llmapi.ErrorBody(f, typ, info.status, e.Message, "")
}

// Header is the response header for an error body.
func errorHeader() http.Header {
	return http.Header{"Content-Type": {"application/json"}}
}

func itoa(n int) string { return strconv.Itoa(n) }
