package convert

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// inBandName is the name the client's in-band error event gives the error:
// error.type for Chat and Anthropic, code for Responses, error.status for
// Gemini; with Gemini's numeric code appended ("FAILED_PRECONDITION/402").
func inBandName(t *testing.T, client llmapi.Dialect, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			data = strings.Trim(line, "[],\r") // Gemini's JSON array framing
		}
		var v struct {
			Type  string `json:"type"`
			Code  string `json:"code"`
			Error *struct {
				Type   string `json:"type"`
				Status string `json:"status"`
				Code   int    `json:"code"`
			} `json:"error"`
		}
		if json.Unmarshal([]byte(data), &v) != nil {
			continue
		}
		switch {
		case client == llmapi.Responses && v.Type == "error":
			return v.Code
		case v.Error == nil:
			continue
		case client == llmapi.GenerateContent:
			return v.Error.Status + "/" + itoa(v.Error.Code)
		}
		return v.Error.Type
	}
	t.Fatalf("no in-band error in\n%s", out)
	return ""
}

// TestInBandErrorTypes: an error in the middle of a stream has no status of
// its own, so the type the provider names is all the converter has to go
// by; every type the providers document reaches each client family as that
// family's name for the same error (Anthropic's billing_error as OpenAI's
// insufficient_quota and Gemini's FAILED_PRECONDITION, Gemini's ABORTED as
// a 409), never as a server error by default.
func TestInBandErrorTypes(t *testing.T) {
	anthropic := func(typ string) string {
		return "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n" +
			"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"" + typ + "\",\"message\":\"boom\"}}\n\n"
	}
	gemini := func(status string, code int) string {
		return "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hel\"}]},\"index\":0}],\"responseId\":\"r1\"}\n\n" +
			"data: {\"error\":{\"code\":" + itoa(code) + ",\"message\":\"boom\",\"status\":\"" + status + "\"}}\n\n"
	}
	chat := func(typ, code string) string {
		return "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n" +
			"data: {\"error\":{\"message\":\"boom\",\"type\":\"" + typ + "\",\"param\":null,\"code\":\"" + code + "\"}}\n\n"
	}
	responses := func(code string) string {
		return "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"model\":\"o3-pro\",\"status\":\"in_progress\",\"output\":[]}}\n\n" +
			"event: error\ndata: {\"type\":\"error\",\"code\":\"" + code + "\",\"message\":\"boom\",\"param\":null,\"sequence_number\":1}\n\n"
	}
	// failed is a Responses stream that ends in response.failed, its error
	// named by code alone, as the Responses API names it.
	failed := func(code string) string {
		return "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"model\":\"o3-pro\",\"status\":\"in_progress\",\"output\":[]}}\n\n" +
			"event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":1,\"response\":{\"id\":\"resp_1\",\"model\":\"o3-pro\",\"status\":\"failed\",\"output\":[],\"error\":{\"code\":\"" + code + "\",\"message\":\"boom\"}}}\n\n"
	}
	// want is each family's name: OpenAI's (Chat's error.type, Responses'
	// code), Anthropic's error.type, Gemini's error.status/code.
	type want struct{ openai, anthropic, gemini string }
	var (
		invalid  = want{"invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT/400"}
		auth     = want{"invalid_request_error", "authentication_error", "UNAUTHENTICATED/401"}
		perm     = want{"invalid_request_error", "permission_error", "PERMISSION_DENIED/403"}
		notFound = want{"invalid_request_error", "not_found_error", "NOT_FOUND/404"}
		tooLarge = want{"invalid_request_error", "request_too_large", "INVALID_ARGUMENT/413"}
		payment  = want{"insufficient_quota", "billing_error", "FAILED_PRECONDITION/402"}
		conflict = want{"invalid_request_error", "invalid_request_error", "ABORTED/409"}
		rate     = want{"rate_limit_error", "rate_limit_error", "RESOURCE_EXHAUSTED/429"}
		server   = want{"server_error", "api_error", "INTERNAL/500"}
		overload = want{"server_error", "overloaded_error", "UNAVAILABLE/503"}
		timeout  = want{"server_error", "timeout_error", "DEADLINE_EXCEEDED/504"}
	)
	type inBandCase struct {
		name     string
		provider llmapi.Dialect
		stream   string
		want     want
	}
	cases := []inBandCase{
		// Anthropic's documented error types (docs: errors; anthropic-sdk-go).
		{"anthropic invalid_request_error", llmapi.Messages, anthropic("invalid_request_error"), invalid},
		{"anthropic authentication_error", llmapi.Messages, anthropic("authentication_error"), auth},
		{"anthropic billing_error", llmapi.Messages, anthropic("billing_error"), payment},
		{"anthropic permission_error", llmapi.Messages, anthropic("permission_error"), perm},
		{"anthropic not_found_error", llmapi.Messages, anthropic("not_found_error"), notFound},
		{"anthropic request_too_large", llmapi.Messages, anthropic("request_too_large"), tooLarge},
		{"anthropic rate_limit_error", llmapi.Messages, anthropic("rate_limit_error"), rate},
		{"anthropic api_error", llmapi.Messages, anthropic("api_error"), server},
		{"anthropic timeout_error", llmapi.Messages, anthropic("timeout_error"), timeout},
		{"anthropic overloaded_error", llmapi.Messages, anthropic("overloaded_error"), overload},
		// OpenAI's types, and the codes that say more than the type
		// (a rate limit's type is "tokens" or "requests").
		{"chat invalid_request_error", llmapi.ChatCompletions, chat("invalid_request_error", ""), invalid},
		{"chat insufficient_quota", llmapi.ChatCompletions, chat("insufficient_quota", "insufficient_quota"), payment},
		{"chat rate_limit_exceeded", llmapi.ChatCompletions, chat("tokens", "rate_limit_exceeded"), rate},
		{"chat server_error", llmapi.ChatCompletions, chat("server_error", ""), server},
		// A Responses error event's own type is "error"; its code names it.
		{"responses rate_limit_exceeded", llmapi.Responses, responses("rate_limit_exceeded"), rate},
		{"responses insufficient_quota", llmapi.Responses, responses("insufficient_quota"), payment},
		{"responses invalid_prompt", llmapi.Responses, responses("invalid_prompt"), invalid},
		{"responses server_error", llmapi.Responses, responses("server_error"), server},
		// google.rpc codes, read as Google's HTTP mapping reads them.
		{"gemini INVALID_ARGUMENT", llmapi.GenerateContent, gemini("INVALID_ARGUMENT", 400), invalid},
		{"gemini OUT_OF_RANGE", llmapi.GenerateContent, gemini("OUT_OF_RANGE", 400), invalid},
		// Gemini answers FAILED_PRECONDITION with 400 for a region it does
		// not serve as well as for a project without billing.
		{"gemini FAILED_PRECONDITION", llmapi.GenerateContent, gemini("FAILED_PRECONDITION", 400), invalid},
		{"gemini UNAUTHENTICATED", llmapi.GenerateContent, gemini("UNAUTHENTICATED", 401), auth},
		{"gemini PERMISSION_DENIED", llmapi.GenerateContent, gemini("PERMISSION_DENIED", 403), perm},
		{"gemini NOT_FOUND", llmapi.GenerateContent, gemini("NOT_FOUND", 404), notFound},
		{"gemini ABORTED", llmapi.GenerateContent, gemini("ABORTED", 409), conflict},
		{"gemini ALREADY_EXISTS", llmapi.GenerateContent, gemini("ALREADY_EXISTS", 409), conflict},
		{"gemini RESOURCE_EXHAUSTED", llmapi.GenerateContent, gemini("RESOURCE_EXHAUSTED", 429), rate},
		{"gemini INTERNAL", llmapi.GenerateContent, gemini("INTERNAL", 500), server},
		{"gemini UNAVAILABLE", llmapi.GenerateContent, gemini("UNAVAILABLE", 503), overload},
		{"gemini DEADLINE_EXCEEDED", llmapi.GenerateContent, gemini("DEADLINE_EXCEEDED", 504), timeout},
		// A status name Strait does not know: its code is the HTTP status.
		{"gemini unknown status, code 429", llmapi.GenerateContent, gemini("QUOTA_SOMETHING_NEW", 429), rate},
		{"gemini unknown status, code 404", llmapi.GenerateContent, gemini("SOMETHING_NEW", 404), notFound},
		// response.failed names its error by the same codes.
		{"responses failed server_error", llmapi.Responses, failed("server_error"), server},
		{"responses failed rate_limit_exceeded", llmapi.Responses, failed("rate_limit_exceeded"), rate},
		{"responses failed vector_store_timeout", llmapi.Responses, failed("vector_store_timeout"), timeout},
		{"responses vector_store_timeout", llmapi.Responses, responses("vector_store_timeout"), timeout},
	}
	// The Responses API's codes for a request it will not serve (openai-go's
	// ResponseErrorCode): the client has to change it, a 400.
	for _, code := range []string{"invalid_prompt", "invalid_image", "invalid_image_format", "invalid_base64_image",
		"invalid_image_url", "invalid_image_mode", "image_too_large", "image_too_small", "image_parse_error",
		"image_content_policy_violation", "image_file_too_large", "image_file_not_found", "unsupported_image_media_type",
		"empty_image_file", "failed_to_download_image", "bio_policy", "misalignment_policy_violation", "data_residency_mismatch"} {
		cases = append(cases, inBandCase{"responses failed " + code, llmapi.Responses, failed(code), invalid},
			inBandCase{"responses " + code, llmapi.Responses, responses(code), invalid})
	}
	for _, tc := range cases {
		for _, client := range clientDialects {
			if client == tc.provider {
				continue
			}
			t.Run(tc.name+"/"+string(client), func(t *testing.T) {
				w := llmapi.ErrorType(client.Family(), tc.want.openai, tc.want.anthropic, tc.want.gemini)
				if got := inBandName(t, client, respond(t, tc.provider, client, true, tc.stream).body.String()); got != w {
					t.Errorf("in-band error named %s, want %s", got, w)
				}
			})
		}
	}
}

// TestErrorNamesReadBack: every name Strait gives an error in a client's
// family reads back as an error of that same name, so a converted error
// keeps its kind through a second Strait, or any gateway that renders
// errors by the same tables. Strait's 402 is Gemini's FAILED_PRECONDITION,
// but Gemini's own FAILED_PRECONDITION is not always about billing (see
// kindOfType), so it reads back as a 400.
func TestErrorNamesReadBack(t *testing.T) {
	for k, info := range kinds {
		names := map[llmapi.Family]string{
			llmapi.OpenAI:    llmapi.OpenAIErrorType(info.status),
			llmapi.Anthropic: llmapi.AnthropicErrorType(info.anthropicStatus),
			llmapi.Gemini:    llmapi.GeminiErrorStatus(info.status),
		}
		for f, name := range names {
			if f == llmapi.Gemini && name == "FAILED_PRECONDITION" {
				continue
			}
			const unknown = ErrKind(-1)
			got := kindOfType(name, unknown)
			if got == unknown {
				t.Errorf("kind %d: %s's name %s is not read back", k, f, name)
				continue
			}
			back := kinds[got]
			again := llmapi.ErrorType(f, llmapi.OpenAIErrorType(back.status), llmapi.AnthropicErrorType(back.anthropicStatus), llmapi.GeminiErrorStatus(back.status))
			if again != name {
				t.Errorf("kind %d: %s's name %s reads back as kind %d, named %s", k, f, name, got, again)
			}
		}
	}
}
