package llmapi

import (
	"bytes"
	"encoding/json"
)

// ErrorBody is the JSON error body family f's SDKs parse into their own
// typed errors, members in the order the providers send them:
//
//	OpenAI     {"error":{"message":…,"type":…,"param":null,"code":…}}
//	Anthropic  {"type":"error","error":{"type":…,"message":…}}
//	Gemini     {"error":{"code":…,"message":…,"status":…}}
//
// typ is the family's own name for the error: OpenAI's and Anthropic's
// error.type, Gemini's google.rpc status ("INVALID_ARGUMENT"). status is
// the HTTP status, which Gemini repeats as code. code is OpenAI's optional
// machine-readable error.code (null when empty). An unknown family gets
// OpenAI's shape, the one most clients parse.
func ErrorBody(f Family, typ string, status int, message, code string) []byte {
	var v any
	switch f {
	case Anthropic:
		v = anthropicError{Type: "error", Error: anthropicDetail{Type: typ, Message: message}}
	case Gemini:
		v = geminiError{Error: geminiDetail{Code: status, Message: message, Status: typ}}
	default:
		var c *string
		if code != "" {
			c = &code
		}
		v = openAIError{Error: openAIDetail{Message: message, Type: typ, Code: c}}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // as the providers send it
	_ = enc.Encode(v)        // plain structs of strings and ints cannot fail
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
}

// ErrorType picks family f's name for an error from its names in each
// family's vocabulary (OpenAI's for an unknown family), for the typ of
// ErrorBody.
func ErrorType(f Family, openai, anthropic, gemini string) string {
	switch f {
	case Anthropic:
		return anthropic
	case Gemini:
		return gemini
	}
	return openai
}

// OpenAIErrorType is OpenAI's error.type for an HTTP status, the one name
// for it shared by the edge's own errors and the relay's converted ones:
// OpenAI names nearly every client error invalid_request_error (a wrong
// key, a missing model and a refused region included, told apart by
// error.code; its SDKs go by the status), an account out of credit
// insufficient_quota, a rate limit rate_limit_error, and a fault on its
// side server_error.
func OpenAIErrorType(status int) string {
	switch {
	case status == 402:
		return "insufficient_quota"
	case status == 429:
		return "rate_limit_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

// anthropicErrorTypes are Anthropic's error.type names by HTTP status, as
// its API documents them and anthropic-sdk-go's ErrorObjectUnion reads
// them (a 504 is GatewayTimeoutError, "timeout_error"). Two are Strait's
// choice for statuses Anthropic does not send: a 503 reads as overloaded,
// a capacity fault that clears, and a 431 as a request too large.
var anthropicErrorTypes = map[int]string{400: "invalid_request_error", 401: "authentication_error",
	402: "billing_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large",
	429: "rate_limit_error", 431: "request_too_large", 500: "api_error", 503: "overloaded_error",
	504: "timeout_error", 529: "overloaded_error"}

// AnthropicErrorType is Anthropic's error.type for an HTTP status, the one
// name for it shared by the edge's own errors and the relay's converted
// ones: the documented name, else invalid_request_error for a 4xx and
// api_error for a 5xx, as Anthropic's docs do for statuses they do not
// list.
func AnthropicErrorType(status int) string {
	if t, ok := anthropicErrorTypes[status]; ok {
		return t
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// geminiErrorStatuses are Gemini's error.status names (google.rpc.Code)
// by HTTP status, the mapping Google's APIs use; a 402 is a project
// without billing (FAILED_PRECONDITION), a 409 an aborted call.
var geminiErrorStatuses = map[int]string{400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 402: "FAILED_PRECONDITION",
	403: "PERMISSION_DENIED", 404: "NOT_FOUND", 408: "DEADLINE_EXCEEDED", 409: "ABORTED", 413: "INVALID_ARGUMENT",
	422: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 431: "INVALID_ARGUMENT", 500: "INTERNAL", 502: "UNAVAILABLE",
	503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED", 529: "UNAVAILABLE"}

// GeminiErrorStatus is Gemini's error.status for an HTTP status, the one
// name for it shared by the edge's own errors and the relay's converted
// ones: the mapped name, else INVALID_ARGUMENT for a 4xx and INTERNAL for
// a 5xx.
func GeminiErrorStatus(status int) string {
	if s, ok := geminiErrorStatuses[status]; ok {
		return s
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "INVALID_ARGUMENT"
}

// errorNameStatuses are the error names the three families document
// (OpenAI's error.type and error.code, the Responses API's codes included;
// Anthropic's error.type; Gemini's google.rpc status) by the HTTP status
// each stands for, as Google's HTTP mapping reads the rpc codes. Gemini's
// FAILED_PRECONDITION is a 400, as Google maps it: Gemini answers with it
// for a region it does not serve as well as for a project without billing.
var errorNameStatuses = map[string]int{
	"invalid_request_error": 400, "invalid_prompt": 400, "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400,
	"OUT_OF_RANGE": 400,
	// The Responses API's codes (ResponseError.code in openai-go) for a
	// request it will not serve: an image it cannot read, fetch or accept,
	// a prompt or project its policies refuse. Only a 400 tells the client
	// to change the request; a server error would be retried in vain.
	"invalid_image": 400, "invalid_image_format": 400, "invalid_base64_image": 400, "invalid_image_url": 400,
	"invalid_image_mode": 400, "image_too_large": 400, "image_too_small": 400, "image_parse_error": 400,
	"image_content_policy_violation": 400, "image_file_too_large": 400, "image_file_not_found": 400,
	"unsupported_image_media_type": 400, "empty_image_file": 400, "failed_to_download_image": 400, "bio_policy": 400,
	"misalignment_policy_violation": 400, "data_residency_mismatch": 400,
	"authentication_error": 401, "UNAUTHENTICATED": 401,
	"billing_error": 402, "insufficient_quota": 402,
	"permission_error": 403, "PERMISSION_DENIED": 403,
	"not_found_error": 404, "NOT_FOUND": 404,
	"ABORTED": 409, "ALREADY_EXISTS": 409,
	"request_too_large": 413,
	"rate_limit_error":  429, "rate_limit_exceeded": 429, "RESOURCE_EXHAUSTED": 429,
	"api_error": 500, "server_error": 500, "INTERNAL": 500,
	"overloaded_error": 503, "UNAVAILABLE": 503,
	"timeout_error": 504, "DEADLINE_EXCEEDED": 504, "vector_store_timeout": 504,
}

// ErrorNameStatus is the HTTP status an error name of any family stands
// for (errorNameStatuses): how an error that came without a status (in a
// stream) or with a broad one is read. ok is false for a name none of the
// families documents (UNKNOWN, DATA_LOSS, UNIMPLEMENTED and CANCELLED
// among them: they say nothing a status would).
func ErrorNameStatus(name string) (status int, ok bool) {
	status, ok = errorNameStatuses[name]
	return status, ok
}

// ErrorEvent frames an error body as the in-band SSE event family f's SDKs
// raise from a stream whose status line has already gone out: Anthropic's
// named "error", the others a bare data line.
func ErrorEvent(f Family, body []byte) []byte {
	var b []byte
	if f == Anthropic {
		b = append(b, "event: error\n"...)
	}
	b = append(append(b, "data: "...), body...)
	return append(b, "\n\n"...)
}

type openAIError struct {
	Error openAIDetail `json:"error"`
}

type openAIDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

type anthropicError struct {
	Type  string          `json:"type"`
	Error anthropicDetail `json:"error"`
}

type anthropicDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type geminiError struct {
	Error geminiDetail `json:"error"`
}

type geminiDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// ProviderError is the union of the families' error bodies, for reading
// what a provider answered: OpenAI {"error":{"message","type","code"}},
// Anthropic {"type":"error","error":{"type","message"}}, Gemini
// {"error":{"code","message","status","details":[{"reason"}]}}.
type ProviderError struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the "error" object of any family.
type ErrorDetail struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`   // OpenAI, Anthropic
	Code    json.RawMessage `json:"code"`   // a string for OpenAI, a number for Gemini
	Status  string          `json:"status"` // Gemini's google.rpc status
	// Details is Gemini's list of google.rpc details; kept raw so that a
	// provider's differently shaped "details" does not spoil the rest.
	Details json.RawMessage `json:"details"`
}

// Reasons are the google.rpc.ErrorInfo reasons among Gemini's details
// ("API_KEY_INVALID"); none when details is not a list of objects.
func (d *ErrorDetail) Reasons() []string {
	var details []struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(d.Details, &details) != nil {
		return nil
	}
	var out []string
	for _, x := range details {
		if x.Reason != "" {
			out = append(out, x.Reason)
		}
	}
	return out
}
