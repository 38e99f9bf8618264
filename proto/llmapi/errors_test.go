package llmapi

import (
	"encoding/json"
	"slices"
	"testing"
)

// TestErrorBody pins each family's error body, member order included (the
// providers' own), and the in-band event that carries one mid-stream.
func TestErrorBody(t *testing.T) {
	cases := []struct {
		f                   Family
		typ, message, code  string
		status              int
		wantBody, wantEvent string
	}{
		{OpenAI, "invalid_request_error", "bad <key>", "invalid_api_key", 401,
			`{"error":{"message":"bad <key>","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, "data: "},
		{OpenAI, "server_error", "down", "", 502,
			`{"error":{"message":"down","type":"server_error","param":null,"code":null}}`, "data: "},
		{Anthropic, "overloaded_error", "busy", "ignored", 529,
			`{"type":"error","error":{"type":"overloaded_error","message":"busy"}}`, "event: error\ndata: "},
		{Gemini, "RESOURCE_EXHAUSTED", "slow down", "", 429,
			`{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}`, "data: "},
		{"", "server_error", "x", "", 500,
			`{"error":{"message":"x","type":"server_error","param":null,"code":null}}`, "data: "},
	}
	for _, tc := range cases {
		body := ErrorBody(tc.f, tc.typ, tc.status, tc.message, tc.code)
		if string(body) != tc.wantBody {
			t.Errorf("%q: %s\nwant %s", tc.f, body, tc.wantBody)
		}
		if ev := string(ErrorEvent(tc.f, body)); ev != tc.wantEvent+tc.wantBody+"\n\n" {
			t.Errorf("%q: event %q", tc.f, ev)
		}
	}
}

// TestProviderError reads each family's error body through the one union;
// a "details" of another shape spoils nothing else.
func TestProviderError(t *testing.T) {
	cases := []struct {
		body, message, typ, status string
		reasons                    []string
	}{
		{`{"error":{"message":"Incorrect API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, "Incorrect API key", "invalid_request_error", "", nil},
		{`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, "invalid x-api-key", "authentication_error", "", nil},
		{`{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"},{"@type":"x"}]}}`,
			"API key not valid.", "", "INVALID_ARGUMENT", []string{"API_KEY_INVALID"}},
		{`{"error":{"message":"upstream said no","details":"a string, not a list"}}`, "upstream said no", "", "", nil},
	}
	for _, tc := range cases {
		var e ProviderError
		if err := json.Unmarshal([]byte(tc.body), &e); err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		d := e.Error
		if d.Message != tc.message || d.Type != tc.typ || d.Status != tc.status || !slices.Equal(d.Reasons(), tc.reasons) {
			t.Errorf("%s: %+v reasons %q", tc.body, d, d.Reasons())
		}
	}
}

// TestAnthropicErrorType pins the error.type Anthropic's SDK reads for each
// status (anthropic-sdk-go's ErrorObjectUnion), and the fallbacks for the
// statuses Anthropic does not document.
func TestAnthropicErrorType(t *testing.T) {
	cases := []struct {
		status int
		want   string
	}{
		{400, "invalid_request_error"}, {401, "authentication_error"}, {402, "billing_error"}, {403, "permission_error"},
		{404, "not_found_error"}, {408, "invalid_request_error"}, {413, "request_too_large"}, {429, "rate_limit_error"},
		{431, "request_too_large"}, {500, "api_error"}, {502, "api_error"}, {503, "overloaded_error"},
		{504, "timeout_error"}, {529, "overloaded_error"},
	}
	for _, tc := range cases {
		if got := AnthropicErrorType(tc.status); got != tc.want {
			t.Errorf("AnthropicErrorType(%d) = %q, want %q", tc.status, got, tc.want)
		}
	}
}

// TestOpenAIErrorType: OpenAI's names, as its API sends them: a wrong key
// (401), a refused region (403) and a missing model (404) are all
// invalid_request_error, told apart by error.code.
func TestOpenAIErrorType(t *testing.T) {
	cases := []struct {
		status int
		want   string
	}{
		{400, "invalid_request_error"}, {401, "invalid_request_error"}, {402, "insufficient_quota"},
		{403, "invalid_request_error"}, {404, "invalid_request_error"}, {408, "invalid_request_error"},
		{409, "invalid_request_error"}, {413, "invalid_request_error"}, {422, "invalid_request_error"},
		{429, "rate_limit_error"}, {431, "invalid_request_error"}, {500, "server_error"}, {502, "server_error"},
		{503, "server_error"}, {504, "server_error"}, {529, "server_error"},
	}
	for _, tc := range cases {
		if got := OpenAIErrorType(tc.status); got != tc.want {
			t.Errorf("OpenAIErrorType(%d) = %q, want %q", tc.status, got, tc.want)
		}
	}
}

// TestErrorNameStatus: a name of each family reads as the status it stands
// for; a name none documents is not read.
func TestErrorNameStatus(t *testing.T) {
	cases := []struct {
		name   string
		status int
		ok     bool
	}{
		{"invalid_request_error", 400, true}, {"FAILED_PRECONDITION", 400, true}, {"invalid_image", 400, true},
		{"UNAUTHENTICATED", 401, true}, {"billing_error", 402, true}, {"insufficient_quota", 402, true},
		{"ABORTED", 409, true}, {"rate_limit_exceeded", 429, true}, {"overloaded_error", 503, true},
		{"timeout_error", 504, true}, {"UNKNOWN", 0, false}, {"tokens", 0, false}, {"", 0, false},
	}
	for _, tc := range cases {
		if status, ok := ErrorNameStatus(tc.name); status != tc.status || ok != tc.ok {
			t.Errorf("ErrorNameStatus(%q) = %d, %v; want %d, %v", tc.name, status, ok, tc.status, tc.ok)
		}
	}
}
