package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// recorder is a ResponseWriter that keeps everything.
type recorder struct {
	status int
	header http.Header
	body   bytes.Buffer
	writes int
}

func (r *recorder) WriteHeader(status int, h http.Header) error {
	r.status, r.header = status, h
	return nil
}

func (r *recorder) Write(p []byte) error {
	r.writes++
	r.body.Write(p)
	return nil
}

// TestResponseGolden converts each recorded non-streaming provider answer
// into every client dialect.
func TestResponseGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/response/*.json")
	eachDirection(t, files, func(t *testing.T, in string, src []byte, provider, client llmapi.Dialect) {
		p := &Plan{Client: client, Provider: provider, req: fixtureRequest(client, in, false)}
		var rec recorder
		if err := p.Respond(200, http.Header{"Content-Type": {"application/json"}}, bytes.NewReader(src), &rec); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, rec.body.Bytes(), "", "  "); err != nil {
			t.Fatal(err)
		}
		out.WriteString("\n")
		golden(t, strings.TrimSuffix(in, ".json")+".to."+string(client)+".golden", out.Bytes())
	})
}

// TestErrorMapping proves provider errors reach the client with its own
// dialect's status and body shape, and Retry-After survives.
func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name             string
		provider, client llmapi.Dialect
		status           int
		body             string
		wantStatus       int
		wantBody         string
	}{
		{"anthropic overloaded to chat", llmapi.Messages, llmapi.ChatCompletions, 529,
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, 503,
			`{"error":{"message":"Overloaded","type":"server_error","param":null,"code":null}}`},
		{"anthropic rate limit to responses", llmapi.Messages, llmapi.Responses, 429,
			`{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`, 429,
			`{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":null}}`},
		{"gemini invalid to chat", llmapi.GenerateContent, llmapi.ChatCompletions, 400,
			`{"error":{"code":400,"message":"Function call is missing a thought_signature","status":"INVALID_ARGUMENT"}}`, 400,
			`{"error":{"message":"Function call is missing a thought_signature","type":"invalid_request_error","param":null,"code":null}}`},
		{"gemini unavailable to anthropic", llmapi.GenerateContent, llmapi.Messages, 503,
			`{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, 529,
			`{"type":"error","error":{"type":"overloaded_error","message":"The model is overloaded."}}`},
		{"gemini auth to anthropic", llmapi.GenerateContent, llmapi.Messages, 400,
			`[{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}]`, 400,
			`{"type":"error","error":{"type":"invalid_request_error","message":"API key not valid."}}`},
		{"openai auth to anthropic", llmapi.ChatCompletions, llmapi.Messages, 401,
			`{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, 401,
			`{"type":"error","error":{"type":"authentication_error","message":"Incorrect API key provided"}}`},
		{"openai not found to anthropic", llmapi.ChatCompletions, llmapi.Messages, 404,
			`{"error":{"message":"The model does not exist","type":"invalid_request_error"}}`, 404,
			`{"type":"error","error":{"type":"not_found_error","message":"The model does not exist"}}`},
		// OpenAI names a wrong key, a refusal and a missing model
		// invalid_request_error, as the edge's own errors do.
		{"anthropic auth to chat", llmapi.Messages, llmapi.ChatCompletions, 401,
			`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, 401,
			`{"error":{"message":"invalid x-api-key","type":"invalid_request_error","param":null,"code":null}}`},
		{"gemini permission to chat", llmapi.GenerateContent, llmapi.ChatCompletions, 403,
			`{"error":{"code":403,"message":"Permission denied","status":"PERMISSION_DENIED"}}`, 403,
			`{"error":{"message":"Permission denied","type":"invalid_request_error","param":null,"code":null}}`},
		{"anthropic not found to responses", llmapi.Messages, llmapi.Responses, 404,
			`{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}`, 404,
			`{"error":{"message":"model: claude-x","type":"invalid_request_error","param":null,"code":null}}`},
		{"gemini 504 to anthropic", llmapi.GenerateContent, llmapi.Messages, 504,
			`{"error":{"code":504,"message":"Deadline expired","status":"DEADLINE_EXCEEDED"}}`, 504,
			`{"type":"error","error":{"type":"timeout_error","message":"Deadline expired"}}`},
		{"anthropic 504 to chat", llmapi.Messages, llmapi.ChatCompletions, 504,
			`{"type":"error","error":{"type":"timeout_error","message":"Request timed out"}}`, 504,
			`{"error":{"message":"Request timed out","type":"server_error","param":null,"code":null}}`},
		{"html 502 to chat", llmapi.ChatCompletions, llmapi.ChatCompletions, 502, `<html>bad gateway</html>`, 500,
			`{"error":{"message":"<html>bad gateway</html>","type":"server_error","param":null,"code":null}}`},
		// 402, 408, 409 and 422 keep their status: the SDKs raise their own
		// class for each and retry 408 and 409.
		{"deepseek 402 to anthropic", llmapi.ChatCompletions, llmapi.Messages, 402,
			`{"error":{"message":"Insufficient Balance","type":"unknown_error","param":null,"code":"invalid_request_error"}}`, 402,
			`{"type":"error","error":{"type":"billing_error","message":"Insufficient Balance"}}`},
		{"openai 429 out of credit to anthropic", llmapi.ChatCompletions, llmapi.Messages, 429,
			`{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`, 402,
			`{"type":"error","error":{"type":"billing_error","message":"You exceeded your current quota"}}`},
		{"openai 429 rate limit to anthropic", llmapi.ChatCompletions, llmapi.Messages, 429,
			`{"error":{"message":"Rate limit reached","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`, 429,
			`{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached"}}`},
		{"openrouter 402 to responses", llmapi.ChatCompletions, llmapi.Responses, 402,
			`{"error":{"code":402,"message":"Insufficient credits"}}`, 402,
			`{"error":{"message":"Insufficient credits","type":"insufficient_quota","param":null,"code":null}}`},
		{"anthropic 402 to gemini", llmapi.Messages, llmapi.GenerateContent, 402,
			`{"type":"error","error":{"type":"billing_error","message":"Your credit balance is too low"}}`, 402,
			`{"error":{"code":402,"message":"Your credit balance is too low","status":"FAILED_PRECONDITION"}}`},
		{"chat 408 to anthropic", llmapi.ChatCompletions, llmapi.Messages, 408,
			`{"error":{"message":"Request timed out","type":"invalid_request_error"}}`, 408,
			`{"type":"error","error":{"type":"invalid_request_error","message":"Request timed out"}}`},
		{"anthropic 408 to gemini", llmapi.Messages, llmapi.GenerateContent, 408,
			`{"type":"error","error":{"type":"invalid_request_error","message":"Request timed out"}}`, 408,
			`{"error":{"code":408,"message":"Request timed out","status":"DEADLINE_EXCEEDED"}}`},
		{"gemini 409 to chat", llmapi.GenerateContent, llmapi.ChatCompletions, 409,
			`{"error":{"code":409,"message":"The operation was aborted.","status":"ABORTED"}}`, 409,
			`{"error":{"message":"The operation was aborted.","type":"invalid_request_error","param":null,"code":null}}`},
		{"gemini 409 to anthropic", llmapi.GenerateContent, llmapi.Messages, 409,
			`{"error":{"code":409,"message":"The operation was aborted.","status":"ABORTED"}}`, 409,
			`{"type":"error","error":{"type":"invalid_request_error","message":"The operation was aborted."}}`},
		{"chat 422 to anthropic", llmapi.ChatCompletions, llmapi.Messages, 422,
			`{"error":{"message":"Unprocessable","type":"invalid_request_error"}}`, 422,
			`{"type":"error","error":{"type":"invalid_request_error","message":"Unprocessable"}}`},
		{"chat 422 to gemini", llmapi.ChatCompletions, llmapi.GenerateContent, 422,
			`{"error":{"message":"Unprocessable","type":"invalid_request_error"}}`, 422,
			`{"error":{"code":422,"message":"Unprocessable","status":"INVALID_ARGUMENT"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &Plan{Client: tc.client, Provider: tc.provider, req: &Request{}}
			var rec recorder
			h := http.Header{"Retry-After": {"7"}}
			if err := p.Respond(tc.status, h, strings.NewReader(tc.body), &rec); err != nil {
				t.Fatal(err)
			}
			if rec.status != tc.wantStatus || rec.body.String() != tc.wantBody {
				t.Fatalf("got %d %s\nwant %d %s", rec.status, rec.body.String(), tc.wantStatus, tc.wantBody)
			}
			if rec.header.Get("Retry-After") != "7" {
				t.Errorf("Retry-After lost: %v", rec.header)
			}
		})
	}
}

// TestStreamWritesPerEvent proves the translator does not buffer: each
// provider event that converts is written before the next one is read.
func TestStreamWritesPerEvent(t *testing.T) {
	src, err := os.ReadFile("testdata/stream/chat_parallel_tools.sse")
	if err != nil {
		t.Fatal(err)
	}
	events := bytes.Split(bytes.TrimSpace(src), []byte("\n\n"))
	pr, pw := io.Pipe()
	writes := make(chan []byte, 100)
	p := &Plan{Client: llmapi.Messages, Provider: llmapi.ChatCompletions, Stream: true, req: &Request{Model: "m"}}
	done := make(chan error, 1)
	go func() {
		done <- p.Translate(pr, false, func(b []byte) error { writes <- b; return nil })
		close(writes)
	}()
	// After the provider's second event (a tool-argument fragment) the
	// client must already hold that fragment, with the rest unsent.
	for i, ev := range events[:2] {
		if _, err := pw.Write(append(ev, "\n\n"...)); err != nil {
			t.Fatal(err)
		}
		want := []string{"message_start", "input_json_delta"}[i]
		for {
			b := <-writes
			if bytes.Contains(b, []byte(want)) {
				break
			}
		}
	}
	if _, err := pw.Write([]byte("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"x\"}}]}}]}\n\n")); err != nil {
		t.Fatal(err)
	}
	if b := <-writes; !bytes.Contains(b, []byte(`"partial_json":"x"`)) {
		t.Fatalf("third fragment not passed on alone: %s", b)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	for range writes {
	}
	if err := <-done; err == nil {
		t.Fatal("a cut stream must end in an error")
	}
}

// TestChatProviderReasoningField: OpenAI-compatible servers put reasoning
// under "reasoning" (vLLM, OpenRouter) or "reasoning_content" (DeepSeek);
// either becomes thinking, whole or streamed.
func TestChatProviderReasoningField(t *testing.T) {
	for _, field := range []string{"reasoning", "reasoning_content"} {
		whole := `{"id":"c1","model":"m","choices":[{"index":0,"message":{"role":"assistant","` + field +
			`":"think","content":"answer"},"finish_reason":"stop"}]}`
		r, err := decodeChatResponse([]byte(whole))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Parts) != 2 || r.Parts[0].Kind != PartThinking || r.Parts[0].Text != "think" {
			t.Errorf("%s, whole: parts %+v; want the thinking first", field, r.Parts)
		}
		var thought string
		d := newChatDecoder(func(ev Event) error {
			if ev.Type == EvDelta && ev.Index == 0 {
				thought += ev.Text
			}
			return nil
		})
		for _, chunk := range []string{
			`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","` + field + `":"thi"}}]}`,
			`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"` + field + `":"nk"}}]}`,
			`{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"answer"},"finish_reason":"stop"}]}`,
		} {
			if err := d.event("", []byte(chunk)); err != nil {
				t.Fatal(err)
			}
		}
		if thought != "think" {
			t.Errorf("%s, streamed: thinking %q; want %q", field, thought, "think")
		}
	}
	// A server that uses the name for something else converts as before.
	r, err := decodeChatResponse([]byte(`{"id":"c1","model":"m","choices":[{"index":0,"message":{"role":"assistant",` +
		`"reasoning":{"effort":"low"},"content":"answer"},"finish_reason":"stop"}]}`))
	if err != nil || len(r.Parts) != 1 || r.Parts[0].Kind == PartThinking {
		t.Errorf("reasoning as an object: %+v, %v; want the answer alone", r, err)
	}
}

// TestProviderRefusal: a Chat provider that declines says so in
// message.refusal (delta.refusal when streaming), a Responses provider in
// a refusal content part (response.refusal.delta and .done), with no
// content; the refusal reaches every other client in its API's refusal
// form (Chat's message.refusal and delta.refusal, the Responses refusal
// part), or as text where the API has none.
func TestProviderRefusal(t *testing.T) {
	const refused = "I can't help with that."
	const chatWhole = `{"id":"c1","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,` +
		`"refusal":"` + refused + `"},"finish_reason":"stop"}]}`
	const chatStream = `data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"refusal":""}}]}` + "\n\n" +
		`data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"refusal":"I can't "}}]}` + "\n\n" +
		`data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"refusal":"help with that."}}]}` + "\n\n" +
		`data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" +
		"data: [DONE]\n\n"
	const respItem = `{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"refusal","refusal":"` + refused + `"}]}`
	const respWhole = `{"id":"resp_1","object":"response","status":"completed","model":"m","output":[` + respItem + `],` +
		`"usage":{"input_tokens":5,"output_tokens":6,"total_tokens":11}}`
	respEvent := func(typ, rest string) string {
		return "event: " + typ + "\ndata: {\"type\":\"" + typ + "\"," + rest + "}\n\n"
	}
	at := `"item_id":"msg_1","output_index":0,"content_index":0,`
	respStream := respEvent("response.created", `"response":{"id":"resp_1","model":"m","status":"in_progress","output":[]}`) +
		respEvent("response.output_item.added", `"output_index":0,"item":{"type":"message","id":"msg_1","status":"in_progress","role":"assistant","content":[]}`) +
		respEvent("response.content_part.added", at+`"part":{"type":"refusal","refusal":""}`) +
		respEvent("response.refusal.delta", at+`"delta":"I can't "`) +
		respEvent("response.refusal.delta", at+`"delta":"help with that."`) +
		respEvent("response.refusal.done", at+`"refusal":"`+refused+`"`) +
		respEvent("response.content_part.done", at+`"part":{"type":"refusal","refusal":"`+refused+`"}`) +
		respEvent("response.output_item.done", `"output_index":0,"item":`+respItem) +
		respEvent("response.completed", `"response":{"id":"resp_1","model":"m","status":"completed","output":[`+respItem+`],`+
			`"usage":{"input_tokens":5,"output_tokens":6,"total_tokens":11}}`)
	bodies := map[llmapi.Dialect][2]string{llmapi.ChatCompletions: {chatWhole, chatStream}, llmapi.Responses: {respWhole, respStream}}
	cases := []struct {
		name             string
		provider, client llmapi.Dialect
		stream           bool
		want             []string // in this order
	}{
		{"chat to anthropic", llmapi.ChatCompletions, llmapi.Messages, false, []string{`"content":[{"text":"` + refused + `","type":"text"}]`}},
		{"chat to gemini", llmapi.ChatCompletions, llmapi.GenerateContent, false, []string{`"parts":[{"text":"` + refused + `"}]`}},
		{"chat to responses", llmapi.ChatCompletions, llmapi.Responses, false, []string{`"content":[{"refusal":"` + refused + `","type":"refusal"}]`}},
		{"chat to anthropic stream", llmapi.ChatCompletions, llmapi.Messages, true, []string{`"content_block":{"text":"","type":"text"}`,
			`"text":"I can't ","type":"text_delta"`, `"text":"help with that.","type":"text_delta"`}},
		{"chat to gemini stream", llmapi.ChatCompletions, llmapi.GenerateContent, true, []string{`"parts":[{"text":"I can't "}]`, `"parts":[{"text":"help with that."}]`}},
		{"chat to responses stream", llmapi.ChatCompletions, llmapi.Responses, true, []string{`"part":{"refusal":"","type":"refusal"}`,
			`"delta":"I can't ","item_id":"msg_gen2","output_index":0,"sequence_number":4,"type":"response.refusal.delta"`,
			`"refusal":"` + refused + `","sequence_number":6,"type":"response.refusal.done"`,
			`"part":{"refusal":"` + refused + `","type":"refusal"}`,
			`"content":[{"refusal":"` + refused + `","type":"refusal"}]`}},
		{"responses to chat", llmapi.Responses, llmapi.ChatCompletions, false,
			[]string{`"finish_reason":"stop"`, `"message":{"content":null,"refusal":"` + refused + `","role":"assistant"}`}},
		{"responses to anthropic", llmapi.Responses, llmapi.Messages, false, []string{`"content":[{"text":"` + refused + `","type":"text"}]`}},
		{"responses to gemini", llmapi.Responses, llmapi.GenerateContent, false, []string{`"parts":[{"text":"` + refused + `"}]`}},
		{"responses to chat stream", llmapi.Responses, llmapi.ChatCompletions, true,
			[]string{`"delta":{"refusal":"I can't "}`, `"delta":{"refusal":"help with that."}`, `"finish_reason":"stop"`}},
		{"responses to anthropic stream", llmapi.Responses, llmapi.Messages, true, []string{`"content_block":{"text":"","type":"text"}`,
			`"text":"I can't ","type":"text_delta"`, `"text":"help with that.","type":"text_delta"`}},
		{"responses to gemini stream", llmapi.Responses, llmapi.GenerateContent, true, []string{`"parts":[{"text":"I can't "}]`, `"parts":[{"text":"help with that."}]`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := bodies[tc.provider][0]
			if tc.stream {
				body = bodies[tc.provider][1]
			}
			rec := respond(t, tc.provider, tc.client, tc.stream, body)
			inOrder(t, rec.body.String(), tc.want)
		})
	}
}

// respond runs the provider's answer body (a stream when stream is set)
// through the conversion to the client, with stable ids.
func respond(t *testing.T, provider, client llmapi.Dialect, stream bool, body string) *recorder {
	t.Helper()
	stable(t)
	p := &Plan{Client: client, Provider: provider, Stream: stream, req: &Request{Model: "m", Stream: stream}}
	var rec recorder
	if err := p.Respond(200, http.Header{"Content-Type": {"text/event-stream"}}, strings.NewReader(body), &rec); err != nil {
		t.Fatal(err)
	}
	return &rec
}

// inOrder checks that got holds each of want, one after the other.
func inOrder(t *testing.T, got string, want []string) {
	t.Helper()
	rest := got
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("missing %s in\n%s", w, got)
		}
		rest = rest[i+len(w):]
	}
}

// TestGeminiFinishReasons: a Gemini candidate that ends blocked reaches
// the client as that API's filtered ending; one that ends in a failed
// turn (a malformed or unexpected function call, a missing thought
// signature) reaches it as an error, never as a finished answer.
func TestGeminiFinishReasons(t *testing.T) {
	whole := func(reason string) string {
		return `{"candidates":[{"finishReason":"` + reason + `","finishMessage":"Malformed function call: print(x","index":0}],` +
			`"usageMetadata":{"promptTokenCount":5,"totalTokenCount":5},"modelVersion":"gemini-2.5-flash","responseId":"r1"}`
	}
	stream := func(reason string) string {
		return `data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Let me check."}]},"index":0}],"modelVersion":"gemini-2.5-flash","responseId":"r1"}` + "\n\n" +
			`data: {"candidates":[{"content":{"role":"model","parts":[]},"finishReason":"` + reason + `","finishMessage":"Malformed function call: print(x","index":0}],` +
			`"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":3,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash","responseId":"r1"}` + "\n\n"
	}
	cases := []struct {
		reason     string
		client     llmapi.Dialect
		stream     bool
		wantStatus int
		want       []string // in this order
		not        string
	}{
		{"SAFETY", llmapi.ChatCompletions, false, 200, []string{`"finish_reason":"content_filter"`}, `"finish_reason":"stop"`},
		{"PROHIBITED_CONTENT", llmapi.Messages, true, 200, []string{`"stop_reason":"refusal"`}, `"end_turn"`},
		{"IMAGE_PROHIBITED_CONTENT", llmapi.Responses, false, 200, []string{`"incomplete_details":{"reason":"content_filter"}`}, `"completed"`},
		{"IMAGE_RECITATION", llmapi.ChatCompletions, true, 200, []string{`"finish_reason":"content_filter"`}, `"finish_reason":"stop"`},
		{"MALFORMED_FUNCTION_CALL", llmapi.ChatCompletions, false, 500,
			[]string{`{"error":{"message":"Gemini ended its answer with MALFORMED_FUNCTION_CALL: Malformed function call: print(x","type":"server_error"`}, `finish_reason`},
		{"MALFORMED_FUNCTION_CALL", llmapi.Messages, false, 500, []string{`{"type":"error","error":{"type":"api_error","message":"Gemini ended its answer with MALFORMED_FUNCTION_CALL`}, `end_turn`},
		{"MALFORMED_FUNCTION_CALL", llmapi.Messages, true, 200,
			[]string{`"text":"Let me check."`, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Gemini ended its answer with MALFORMED_FUNCTION_CALL"}, `end_turn`},
		{"MALFORMED_FUNCTION_CALL", llmapi.ChatCompletions, true, 200, []string{`"content":"Let me check."`, `data: {"error":{"message":"Gemini ended its answer with MALFORMED_FUNCTION_CALL`}, `"finish_reason":"stop"`},
		{"UNEXPECTED_TOOL_CALL", llmapi.Responses, true, 200, []string{"event: error\n", `"code":"server_error","message":"Gemini ended its answer with UNEXPECTED_TOOL_CALL`}, `response.completed`},
		{"TOO_MANY_TOOL_CALLS", llmapi.Messages, false, 500, []string{`"type":"api_error","message":"Gemini ended its answer with TOO_MANY_TOOL_CALLS`}, `end_turn`},
		{"MISSING_THOUGHT_SIGNATURE", llmapi.Messages, false, 400, []string{`"type":"invalid_request_error","message":"Gemini ended its answer with MISSING_THOUGHT_SIGNATURE`}, `end_turn`},
		// Stopped for a reason Gemini does not name: the filtered ending.
		{"OTHER", llmapi.ChatCompletions, false, 200, []string{`"finish_reason":"content_filter"`}, `"finish_reason":"stop"`},
		{"OTHER", llmapi.Messages, true, 200, []string{`"text":"Let me check."`, `"stop_reason":"refusal"`}, `"end_turn"`},
		{"IMAGE_OTHER", llmapi.Responses, false, 200, []string{`"incomplete_details":{"reason":"content_filter"}`}, `"completed"`},
		// Cut at the per-request token limit, to be continued.
		{"CONTINUATION", llmapi.ChatCompletions, true, 200, []string{`"content":"Let me check."`, `"finish_reason":"length"`}, `"finish_reason":"stop"`},
		{"CONTINUATION", llmapi.Messages, false, 200, []string{`"stop_reason":"max_tokens"`}, `"end_turn"`},
		// A turn that failed, or ended without saying how.
		{"NO_IMAGE", llmapi.ChatCompletions, false, 500, []string{`"message":"Gemini ended its answer with NO_IMAGE`, `"type":"server_error"`}, `finish_reason`},
		{"FINISH_REASON_UNSPECIFIED", llmapi.Messages, true, 200,
			[]string{`"text":"Let me check."`, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Gemini ended its answer with FINISH_REASON_UNSPECIFIED"}, `end_turn`},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s/stream=%v", tc.reason, tc.client, tc.stream), func(t *testing.T) {
			body := whole(tc.reason)
			if tc.stream {
				body = stream(tc.reason)
			}
			rec := respond(t, llmapi.GenerateContent, tc.client, tc.stream, body)
			got := rec.body.String()
			if rec.status != tc.wantStatus || strings.Contains(got, tc.not) {
				t.Fatalf("got %d, want %d without %s:\n%s", rec.status, tc.wantStatus, tc.not, got)
			}
			inOrder(t, got, tc.want)
		})
	}
}

// TestInBandErrorKind: an error event in a stream has no status, so its
// type alone tells the kind, Anthropic's timeout_error among them.
func TestInBandErrorKind(t *testing.T) {
	cases := []struct {
		body string
		want ErrKind
	}{
		{`{"type":"error","error":{"type":"timeout_error","message":"Request timed out"}}`, ErrTimeout},
		{`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, ErrOverloaded},
		{`{"error":{"code":504,"message":"Deadline expired","status":"DEADLINE_EXCEEDED"}}`, ErrTimeout},
	}
	for _, tc := range cases {
		if got := ParseError(0, []byte(tc.body)).Kind; got != tc.want {
			t.Errorf("%s: kind %d, want %d", tc.body, got, tc.want)
		}
	}
}
