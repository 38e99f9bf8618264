package usage

import (
	"errors"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

func TestForceIncludeUsage(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"model":"m","stream":true}`, `{"stream_options":{"include_usage":true},"model":"m","stream":true}`},
		{`{}`, `{"stream_options":{"include_usage":true}}`},
		{`{"model":"m", "stream_options": {"include_obfuscation":false}, "x":[1, 2]}`,
			`{"model":"m", "stream_options": {"include_obfuscation":false,"include_usage":true}, "x":[1, 2]}`},
		{`{"stream_options":null,"n":1}`, `{"stream_options":{"include_usage":true},"n":1}`},
		{`{"stream_options":{"include_usage":false}}`, `{"stream_options":{"include_usage":true}}`},
	}
	for _, tc := range tests {
		got, ok := ForceIncludeUsage([]byte(tc.in))
		if !ok || string(got) != tc.want {
			t.Errorf("ForceIncludeUsage(%s) = %s, %v; want %s", tc.in, got, ok, tc.want)
		}
	}
}

func TestInspect(t *testing.T) {
	r, _ := Inspect("openai", "/v1/chat/completions", []byte(`{"model":"gpt-4o","stream":true,"max_completion_tokens":50}`))
	if r.Model != "gpt-4o" || !r.Stream || r.MaxOutput != 50 || r.IncludeUsage {
		t.Errorf("openai: %+v", r)
	}
	r, _ = Inspect("gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", []byte(`{"generationConfig":{"maxOutputTokens":7}}`))
	if r.Model != "gemini-2.5-flash" || !r.Stream || r.MaxOutput != 7 {
		t.Errorf("gemini: %+v", r)
	}
	if e := r.Estimate(400, 1000); e != 107 {
		t.Errorf("estimate %d, want 100+7", e)
	}
	r, _ = Inspect("openai", "/v1/chat/completions", []byte(`{"model":"gpt-4o","max_tokens":9223372036854775807}`))
	if e := r.Estimate(400, 1000); e != MaxEstimate {
		t.Errorf("estimate of a cap at int64's maximum %d, want it bounded at %d", e, int64(MaxEstimate))
	}
}

// feed runs body through a meter in small pieces, as the tunnel delivers it.
func feed(m *Meter, body string, piece int) string {
	var out strings.Builder
	for i := 0; i < len(body); i += piece {
		out.Write(m.Feed([]byte(body[i:min(i+piece, len(body))])))
	}
	out.Write(m.Flush())
	return out.String()
}

const openAIStream = `data: {"id":"c","choices":[{"index":0,"delta":{"content":"hello"}}],"usage":null}

data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}

data: {"id":"c","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":2,"total_tokens":32,"prompt_tokens_details":{"cached_tokens":10},"completion_tokens_details":{"reasoning_tokens":1}}}

data: [DONE]

`

func TestMeterOpenAIHidesForcedUsage(t *testing.T) {
	for _, piece := range []int{1, 7, 4096} {
		m := NewMeter(llmapi.OpenAI, true, true)
		got := feed(m, openAIStream, piece)
		want := `data: {"id":"c","choices":[{"index":0,"delta":{"content":"hello"}}]}

data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}

data: [DONE]

`
		if got != want {
			t.Fatalf("piece %d: client got\n%s\nwant\n%s", piece, got, want)
		}
		if u := m.Result(100); u != (Usage{Input: 20, CacheRead: 10, Output: 2, Reasoning: 1}) {
			t.Fatalf("usage %+v", u)
		}
	}
	m := NewMeter(llmapi.OpenAI, true, false) // the client asked: byte for byte
	if got := feed(m, openAIStream, 5); got != openAIStream {
		t.Fatalf("unhidden stream changed:\n%s", got)
	}
}

func TestMeterAnthropicStream(t *testing.T) {
	body := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":200,\"output_tokens\":1}}}\n\n" +
		"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"abcdefgh\"}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}}\n\n"
	m := NewMeter(llmapi.Anthropic, true, false)
	feed(m, body, 3)
	if u := m.Result(0); u != (Usage{Input: 5, CacheWrite: 100, CacheRead: 200, Output: 9}) || u.Total() != 314 {
		t.Fatalf("usage %+v", u)
	}
	// Cut after the text: input is known, output estimated from the text.
	m = NewMeter(llmapi.Anthropic, true, false)
	feed(m, body[:strings.Index(body, "event: message_delta")], 3)
	if u := m.Result(0); u != (Usage{Input: 5, CacheWrite: 100, CacheRead: 200, Output: 2, Estimated: true}) {
		t.Fatalf("cut usage %+v", u)
	}
}

func TestMeterGemini(t *testing.T) {
	final := `{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":3,"thoughtsTokenCount":4,"cachedContentTokenCount":2}}`
	want := Usage{Input: 10, CacheRead: 2, Output: 7, Reasoning: 4}
	m := NewMeter(llmapi.Gemini, true, false)
	feed(m, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hello\"}]}}]}\r\n\r\ndata: "+final+"\r\n\r\n", 10)
	if u := m.Result(0); u != want {
		t.Fatalf("sse %+v", u)
	}
	m = NewMeter(llmapi.Gemini, false, false) // streamGenerateContent without alt=sse: one JSON array
	feed(m, `[{"candidates":[{"content":{"parts":[{"text":"hello"}]}}]}`+",\r\n"+final+"]", 10)
	if u := m.Result(0); u != want {
		t.Fatalf("array %+v", u)
	}
	m = NewMeter(llmapi.Gemini, false, false) // cut array
	feed(m, `[{"candidates":[{"content":{"parts":[{"text":"hello world!"}]}}]},{"candi`, 10)
	if u := m.Result(40); u != (Usage{Input: 10, Output: 3, Estimated: true}) {
		t.Fatalf("cut array %+v", u)
	}
}

func TestMeterOpenAIResponsesAndJSON(t *testing.T) {
	m := NewMeter(llmapi.OpenAI, true, false)
	feed(m, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"abcd\"}\n\n"+
		"event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":8,\"input_tokens_details\":{\"cached_tokens\":3},\"output_tokens\":5,\"output_tokens_details\":{\"reasoning_tokens\":2}}}}\n\n", 9)
	if u := m.Result(0); u != (Usage{Input: 5, CacheRead: 3, Output: 5, Reasoning: 2}) {
		t.Fatalf("responses %+v", u)
	}
	m = NewMeter(llmapi.OpenAI, false, false)
	feed(m, `{"object":"list","data":[],"usage":{"prompt_tokens":6,"total_tokens":6}}`, 4)
	if u := m.Result(0); u != (Usage{Input: 6}) {
		t.Fatalf("embeddings %+v", u)
	}
	m = NewMeter(llmapi.OpenAI, false, false) // no usage at all: estimated
	feed(m, `{"object":"list","data":[]}`, 4)
	if u := m.Result(80); u != (Usage{Input: 20, Estimated: true}) {
		t.Fatalf("no usage %+v", u)
	}
}

// BenchmarkMeterOpenAIHidden measures the edge's per-stream cost of
// metering and filtering an OpenAI stream whose usage chunk it hides.
func BenchmarkMeterOpenAIHidden(b *testing.B) {
	ev := []byte(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" tok"},"logprobs":null,"finish_reason":null}],"usage":null}` + "\n\n")
	b.SetBytes(int64(len(ev)))
	m := NewMeter(llmapi.OpenAI, true, true)
	b.ReportAllocs()
	for b.Loop() {
		m.Feed(ev)
	}
}

// BenchmarkMeterAnthropic is the same for a stream passed through as is.
func BenchmarkMeterAnthropic(b *testing.B) {
	ev := []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" tok\"}}\n\n")
	b.SetBytes(int64(len(ev)))
	m := NewMeter(llmapi.Anthropic, true, false)
	b.ReportAllocs()
	for b.Loop() {
		m.Feed(ev)
	}
}

// TestMeterLargeJSONKeepsOnlyTheTail: a body past maxJSON is not held whole,
// yet its usage, at the end, is still read.
func TestMeterLargeJSONKeepsOnlyTheTail(t *testing.T) {
	big := `{"object":"list","data":[{"embedding":[` + strings.Repeat("0.123456,", 300_000) + `0]}],"model":"m","usage":{"prompt_tokens":77,"total_tokens":77}}`
	m := NewMeter(llmapi.OpenAI, false, false)
	for i := 0; i < len(big); i += 32 << 10 {
		m.Feed([]byte(big[i:min(i+32<<10, len(big))]))
		if len(m.held)+len(m.tail) > maxJSON+2*tailSize+32<<10 {
			t.Fatalf("meter holds %d bytes", len(m.held)+len(m.tail))
		}
	}
	if u := m.Result(len(big)); u != (Usage{Input: 77}) {
		t.Fatalf("usage %+v", u)
	}
	g := `{"candidates":[{"content":{"parts":[{"text":"` + strings.Repeat("x", 2<<20) + `"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":9}}`
	m = NewMeter(llmapi.Gemini, false, false)
	feed(m, g, 64<<10)
	if u := m.Result(0); u != (Usage{Input: 5, Output: 9}) {
		t.Fatalf("gemini usage %+v", u)
	}
}

// TestInspectErrors: Inspect reports llmapi.Parse's errors, and nothing read
// from a body it could not read counts.
func TestInspectErrors(t *testing.T) {
	for _, tc := range []struct {
		body string
		want error
	}{
		{`{"model": "gpt-4o", "messages": [`, llmapi.ErrNotJSON},
		{`{"model": "gpt-4o"} trailing`, llmapi.ErrNotJSON},
		{`not json`, llmapi.ErrNotJSON},
		{`[1, 2]`, llmapi.ErrNotJSON},
		{`{"model": 5}`, llmapi.ErrBadModel},
		{` {"model": "gpt-4o", "max_tokens": "x"}`, nil},
		{``, nil},
	} {
		r, err := Inspect("openai", "/v1/chat/completions", []byte(tc.body))
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("Inspect(%q) error = %v, want %v", tc.body, err, tc.want)
		}
		if err != nil && r != (Request{}) {
			t.Errorf("Inspect(%q) = %+v with error %v", tc.body, r, err)
		}
	}
}
