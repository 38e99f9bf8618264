package llmapi

import "testing"

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
