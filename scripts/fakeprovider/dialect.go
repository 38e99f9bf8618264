package fakeprovider

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// dialect is one provider family's wire format. The three implementations
// hold only what differs between the APIs; recording, faults, pacing and
// SSE framing are shared.
type dialect interface {
	name() string
	// describe extracts the model and the stream flag for the record.
	describe(r *http.Request, body []byte) (model string, stream bool)
	// setHeaders adds the headers the API puts on every response.
	setHeaders(h http.Header, c *call)
	// authenticate checks the credentials; nil means accepted.
	authenticate(r *http.Request, keys Keys) *apiError
	// route returns the endpoint handler, or nil for an unknown endpoint.
	route(r *http.Request) func(*call)
	// foreign refuses a request that names an organization, project or
	// resource the key's account does not own, as the real API does: a
	// 401 or 403 that the request, not the key, caused. nil means none.
	foreign(c *call) *apiError
	// errorBody renders e in the family's error format; it may add
	// family-specific headers to h.
	errorBody(c *call, e *apiError, h http.Header) any
}

// handler is an endpoint.
type handler = func(*call)

// apiError is an error response before the family's formatting.
type apiError struct {
	status     int
	message    string
	param      string // OpenAI's "param", when one parameter is at fault
	retryAfter time.Duration
	code       string // OpenAI's "code", when not the status's usual one
	reason     string // Gemini's google.rpc.ErrorInfo reason, e.g. API_KEY_INVALID
}

// errorClass names an HTTP status in each family's vocabulary.
type errorClass struct {
	openAIType, openAICode string
	anthropicType          string
	geminiStatus           string
	message                string // default message
}

// errorClasses follows the real APIs' documented error tables.
var errorClasses = map[int]errorClass{
	400: {"invalid_request_error", "", "invalid_request_error", "INVALID_ARGUMENT", "Invalid request"},
	401: {"invalid_request_error", "invalid_api_key", "authentication_error", "UNAUTHENTICATED", "Incorrect API key provided"},
	403: {"invalid_request_error", "", "permission_error", "PERMISSION_DENIED", "Permission denied"},
	404: {"invalid_request_error", "", "not_found_error", "NOT_FOUND", "Not found"},
	413: {"invalid_request_error", "", "request_too_large", "INVALID_ARGUMENT", "Request too large"},
	429: {"requests", "rate_limit_exceeded", "rate_limit_error", "RESOURCE_EXHAUSTED", "Rate limit reached"},
	500: {"server_error", "", "api_error", "INTERNAL", "The server had an error while processing your request"},
	503: {"server_error", "", "api_error", "UNAVAILABLE", "The service is temporarily unavailable"},
	504: {"server_error", "", "api_error", "DEADLINE_EXCEEDED", "The request timed out"},
	529: {"server_error", "", "overloaded_error", "UNAVAILABLE", "Overloaded"},
}

// classOf maps any status to a class; unlisted statuses fall back to the
// generic client or server error.
func classOf(status int) errorClass {
	if c, ok := errorClasses[status]; ok {
		return c
	}
	if status >= 500 {
		return errorClasses[500]
	}
	return errorClasses[400]
}

// fail sends e in the request's family format.
func (c *call) fail(e *apiError) {
	h := c.w.Header()
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	}
	c.writeJSON(e.status, c.d.errorBody(c, e, h))
}

// dialectOf picks the family from the path and, where the paths of two
// families coincide (/v1/models), from the credentials header.
func dialectOf(r *http.Request) dialect {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1beta/"), p == "/v1beta":
		return geminiAPI{}
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/v1/models/") && strings.Contains(p[len("/v1/models/"):], ":"):
		// Gemini's {model}:{method} calls; OpenAI model ids may contain a
		// colon too (ft:…), but only in GET and DELETE.
		return geminiAPI{}
	case strings.HasPrefix(p, "/v1/messages"):
		return anthropicAPI{}
	case p == "/v1/models" || strings.HasPrefix(p, "/v1/models/"):
		return modelsDialect(r)
	}
	return openAIAPI{}
}

func modelsDialect(r *http.Request) dialect {
	switch {
	case r.Header.Get("anthropic-version") != "", r.Header.Get("x-api-key") != "":
		return anthropicAPI{}
	case r.Header.Get("x-goog-api-key") != "", r.URL.Query().Has("key"):
		return geminiAPI{}
	}
	return openAIAPI{}
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// checkKey applies the Keys rule: a key is required, and must match want
// unless want is empty. missing and wrong are the family's messages.
func checkKey(got, want, missing, wrong string) *apiError {
	switch {
	case got == "":
		return &apiError{status: http.StatusUnauthorized, message: missing}
	case want != "" && got != want:
		return &apiError{status: http.StatusUnauthorized, message: wrong}
	}
	return nil
}
