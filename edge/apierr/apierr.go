// Package apierr renders errors that Strait itself produces in the error
// format of the API family the client called, so an unmodified SDK raises
// its own typed error with a clear message.
package apierr

import (
	"net/http"
	"strconv"
	"time"

	"github.com/strait/strait/proto/llmapi"
)

// Kind classifies an error independently of any family's vocabulary.
type Kind int

// Error kinds, each with one HTTP status.
const (
	InvalidRequest   Kind = iota // 400
	Unauthenticated              // 401
	NotFound                     // 404
	TooLarge                     // 413
	RateLimited                  // 429
	Internal                     // 500
	BadGateway                   // 502: the relay or provider failed
	Unavailable                  // 503: no tunnel session to any relay
	GatewayTimeout               // 504
	PermissionDenied             // 403: a valid key that may not do this
	HeaderTooLarge               // 431: request headers too large to forward
	RequestTimeout               // 408: the client did not send its body in time
)

// Status returns the HTTP status of a kind.
func (k Kind) Status() int {
	return statuses[k]
}

// statuses are the kinds' HTTP statuses; each family's error name follows
// from the status (llmapi.OpenAIErrorType, AnthropicErrorType,
// GeminiErrorStatus), the names the relay's converted errors give it too.
var statuses = map[Kind]int{
	InvalidRequest:   400,
	Unauthenticated:  401,
	NotFound:         404,
	TooLarge:         413,
	RateLimited:      429,
	Internal:         500,
	BadGateway:       502,
	Unavailable:      503,
	GatewayTimeout:   504,
	PermissionDenied: 403,
	HeaderTooLarge:   431,
	RequestTimeout:   408,
}

// Error is an error Strait produces for a client.
type Error struct {
	Kind    Kind
	Message string
	// Code is OpenAI's machine-readable error.code (e.g. "invalid_api_key");
	// optional.
	Code string
	// RetryAfter, when positive, becomes a Retry-After header.
	RetryAfter time.Duration
	// NoRetry sends X-Should-Retry: false, which the official SDKs obey
	// over their own rules (they retry 5xx and 429 by default): for a
	// request that may have reached the provider, or a refusal that
	// retries cannot lift.
	NoRetry bool
}

func (e *Error) Error() string { return e.Message }

// Write sends e as an HTTP response in family's format.
func Write(w http.ResponseWriter, family llmapi.Family, e *Error) {
	SetHeader(w.Header(), e)
	w.WriteHeader(e.Kind.Status())
	_, _ = w.Write(Body(family, e))
}

// SetHeader sets in h the header fields of e's response, for a writer
// that sends the status and Body itself.
func SetHeader(h http.Header, e *Error) {
	h.Set("Content-Type", "application/json")
	h.Set("X-Strait-Error", "1") // tells apart Strait's own errors from the provider's
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	if e.NoRetry {
		h.Set("X-Should-Retry", "false")
	}
}

// Body is e encoded as family's JSON error body (llmapi.ErrorBody).
func Body(family llmapi.Family, e *Error) []byte {
	status := e.Kind.Status()
	typ := llmapi.ErrorType(family, llmapi.OpenAIErrorType(status), llmapi.AnthropicErrorType(status), llmapi.GeminiErrorStatus(status))
	return llmapi.ErrorBody(family, typ, status, e.Message, e.Code)
}

// StreamEvent is e as an in-band event for a streaming response whose status
// line has already gone out: the SDKs of each family parse these into their
// error types instead of mistaking a cut stream for a finished one.
func StreamEvent(family llmapi.Family, e *Error) []byte {
	return llmapi.ErrorEvent(family, Body(family, e))
}
