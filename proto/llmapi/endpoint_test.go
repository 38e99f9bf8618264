package llmapi

import "testing"

// TestEndpointClass pins each family's endpoints to their class: only
// what computes and keeps nothing is inference.
func TestEndpointClass(t *testing.T) {
	for _, tc := range []struct{ family, method, path, want string }{
		{"openai", "POST", "/v1/chat/completions", EndpointInference},
		{"openai", "POST", "/v1/completions", EndpointInference},
		{"openai", "POST", "/v1/embeddings", EndpointInference},
		{"openai", "POST", "/v1/responses", EndpointInference},
		{"openai", "POST", "/v1/responses/input_tokens", EndpointInference},
		{"openai", "GET", "/v1/models", EndpointInference},
		{"openai", "GET", "/v1/models/ft:gpt-4o-mini:acme::x1", EndpointInference},
		{"openai", "DELETE", "/v1/models/ft:gpt-4o-mini:acme::x1", EndpointFineTuning},
		{"openai", "GET", "/v1/chat/completions", EndpointStored},
		{"openai", "GET", "/v1/chat/completions/chatcmpl-1/messages", EndpointStored},
		{"openai", "DELETE", "/v1/chat/completions/chatcmpl-1", EndpointStored},
		{"openai", "GET", "/v1/responses/resp_1", EndpointStored},
		{"openai", "POST", "/v1/responses/resp_1/cancel", EndpointStored},
		{"openai", "POST", "/v1/conversations", EndpointStored},
		{"openai", "GET", "/v1/files", EndpointFiles},
		{"openai", "DELETE", "/v1/files/file-1", EndpointFiles},
		{"openai", "POST", "/v1/uploads/u1/parts", EndpointFiles},
		{"openai", "POST", "/v1/batches", EndpointBatches},
		{"openai", "POST", "/v1/fine_tuning/jobs", EndpointFineTuning},
		{"openai", "GET", "/v1/vector_stores", EndpointAssistants},
		{"openai", "POST", "/v1/threads/t/runs", EndpointAssistants},
		{"openai", "POST", "/v1/images/generations", EndpointMedia},
		{"openai", "POST", "/v1/moderations", EndpointMedia},
		{"openai", "GET", "/v1/realtime", ""},
		{"openai", "GET", "/v1/filesystem", ""},
		{"anthropic", "POST", "/v1/messages", EndpointInference},
		{"anthropic", "POST", "/v1/messages/count_tokens", EndpointInference},
		{"anthropic", "GET", "/v1/models/claude-sonnet-4-5", EndpointInference},
		{"anthropic", "POST", "/v1/messages/batches", EndpointBatches},
		{"anthropic", "GET", "/v1/messages/batches/b1/results", EndpointBatches},
		{"anthropic", "GET", "/v1/files", EndpointFiles},
		{"anthropic", "GET", "/v1/messages", ""},
		{"gemini", "POST", "/v1beta/models/gemini-2.5-flash:generateContent", EndpointInference},
		{"gemini", "POST", "/v1/models/gemini-2.5-flash:streamGenerateContent", EndpointInference},
		{"gemini", "POST", "/v1beta/models/text-embedding-004:batchEmbedContents", EndpointInference},
		{"gemini", "GET", "/v1beta/models", EndpointInference},
		{"gemini", "GET", "/v1beta/models/gemini-2.5-flash", EndpointInference},
		{"gemini", "POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent", EndpointBatches},
		{"gemini", "POST", "/v1beta/models/imagen-4:predict", EndpointMedia},
		{"gemini", "GET", "/v1beta/files/abc", EndpointFiles},
		{"gemini", "POST", "/upload/v1beta/files", EndpointFiles},
		{"gemini", "GET", "/v1beta/batches/b1", EndpointBatches},
		{"gemini", "POST", "/v1beta/tunedModels/mine:generateContent", EndpointFineTuning},
		{"gemini", "DELETE", "/v1beta/cachedContents/c1", EndpointStored},
		{"gemini", "DELETE", "/v1beta/models/gemini-2.5-flash", ""},
		{"gemini", "GET", "/v1beta/operations", ""},
	} {
		if got := EndpointClass(tc.family, tc.method, tc.path); got != tc.want {
			t.Errorf("EndpointClass(%s, %s %s) = %q, want %q", tc.family, tc.method, tc.path, got, tc.want)
		}
	}
}

// TestAllowsEndpoint: inference is always allowed, a class only when
// named, a path of no class only through "all".
func TestAllowsEndpoint(t *testing.T) {
	for _, tc := range []struct {
		allow []string
		class string
		want  bool
	}{
		{nil, EndpointInference, true},
		{nil, EndpointFiles, false},
		{nil, "", false},
		{[]string{EndpointFiles}, EndpointFiles, true},
		{[]string{EndpointFiles}, EndpointBatches, false},
		{[]string{EndpointFiles}, "", false},
		{[]string{""}, "", false},
		{[]string{EndpointAll}, "", true},
		{[]string{EndpointAll}, EndpointStored, true},
	} {
		if got := AllowsEndpoint(tc.allow, tc.class); got != tc.want {
			t.Errorf("AllowsEndpoint(%v, %q) = %v, want %v", tc.allow, tc.class, got, tc.want)
		}
	}
}
