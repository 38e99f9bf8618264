package llmapi

import (
	"encoding/json"
	"testing"
)

// TestUsageNormal reads each family's usage object into one record, and
// renders it back where conversion needs to: prompt counts include the
// cache on the OpenAI side and exclude it on Anthropic's.
func TestUsageNormal(t *testing.T) {
	cases := []struct {
		name, json string
		read       func([]byte) Usage
		want       Usage
	}{
		{"chat", `{"prompt_tokens":100,"completion_tokens":30,"prompt_tokens_details":{"cached_tokens":40},"completion_tokens_details":{"reasoning_tokens":10}}`,
			decode[ChatUsage], Usage{Input: 60, CacheRead: 40, Output: 30, Reasoning: 10}},
		{"chat with Strait's cache write", `{"prompt_tokens":100,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":40,"cache_write_tokens":50}}`,
			decode[ChatUsage], Usage{Input: 10, CacheRead: 40, CacheWrite: 50, Output: 1}},
		{"anthropic", `{"input_tokens":5,"cache_creation_input_tokens":7,"cache_read_input_tokens":9,"output_tokens":11}`,
			decode[AnthropicUsage], Usage{Input: 5, CacheRead: 9, CacheWrite: 7, Output: 11}},
		{"gemini", `{"promptTokenCount":100,"candidatesTokenCount":20,"thoughtsTokenCount":5,"cachedContentTokenCount":30,"toolUsePromptTokenCount":2}`,
			decode[GeminiUsage], Usage{Input: 72, CacheRead: 30, Output: 25, Reasoning: 5}},
		{"responses", `{"input_tokens":100,"output_tokens":8,"input_tokens_details":{"cached_tokens":20,"cache_write_tokens":30},"output_tokens_details":{"reasoning_tokens":3}}`,
			decode[ResponsesUsage], Usage{Input: 50, CacheRead: 20, CacheWrite: 30, Output: 8, Reasoning: 3}},
		{"wire as responses", `{"input_tokens":50,"output_tokens":8,"input_tokens_details":{"cached_tokens":20},"output_tokens_details":{"reasoning_tokens":3}}`,
			func(b []byte) Usage { var w WireUsage; _ = json.Unmarshal(b, &w); return w.OpenAI() }, Usage{Input: 30, CacheRead: 20, Output: 8, Reasoning: 3}},
		{"wire as responses with Strait's cache write", `{"input_tokens":100,"output_tokens":8,"input_tokens_details":{"cached_tokens":20,"cache_write_tokens":30}}`,
			func(b []byte) Usage { var w WireUsage; _ = json.Unmarshal(b, &w); return w.OpenAI() }, Usage{Input: 50, CacheRead: 20, CacheWrite: 30, Output: 8}},
		{"wire as chat", `{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}`,
			func(b []byte) Usage { var w WireUsage; _ = json.Unmarshal(b, &w); return w.OpenAI() }, Usage{Input: 12, Output: 3}},
	}
	for _, tc := range cases {
		if got := tc.read([]byte(tc.json)); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

type normaler interface{ Normal() Usage }

func decode[T normaler](b []byte) Usage {
	var v T
	_ = json.Unmarshal(b, &v)
	return v.Normal()
}

// TestUsageRender pins the bytes conversion sends: field order and totals.
func TestUsageRender(t *testing.T) {
	u := Usage{Input: 10, CacheRead: 40, CacheWrite: 50, Output: 7, Reasoning: 2}
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"chat", ChatUsageOf(u), `{"prompt_tokens":100,"completion_tokens":7,"total_tokens":107,"prompt_tokens_details":{"cached_tokens":40,"cache_write_tokens":50},"completion_tokens_details":{"reasoning_tokens":2}}`},
		{"anthropic", AnthropicUsageOf(u), `{"input_tokens":10,"cache_creation_input_tokens":50,"cache_read_input_tokens":40,"output_tokens":7}`},
		{"responses", ResponsesUsageOf(u), `{"input_tokens":100,"input_tokens_details":{"cached_tokens":40,"cache_write_tokens":50},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":107}`},
		{"gemini", GeminiUsageOf(u), `{"promptTokenCount":100,"candidatesTokenCount":5,"thoughtsTokenCount":2,"cachedContentTokenCount":40,"totalTokenCount":107}`},
		{"chat without cache write", ChatUsageOf(Usage{Input: 1, Output: 1}), `{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}`},
	}
	for _, tc := range cases {
		if b, _ := json.Marshal(tc.v); string(b) != tc.want {
			t.Errorf("%s: %s\nwant %s", tc.name, b, tc.want)
		}
	}
}
