package convert

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

const geminiHello = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`

// TestGeminiClientFraming proves a Gemini client gets the framing it asked
// for: the path says whether to stream, alt=sse picks SSE, and without it
// the chunks arrive as one JSON array that is closed only on a clean end.
func TestGeminiClientFraming(t *testing.T) {
	src, err := os.ReadFile("testdata/stream/anthropic_thinking_tools.sse")
	if err != nil {
		t.Fatal(err)
	}
	cut, err := os.ReadFile("testdata/stream/anthropic_truncated.sse")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, query string
		body              []byte
		stream, sse       bool
		wantCT            string
		wantErr           bool
	}{
		{"array", ":streamGenerateContent", "", src, true, false, "application/json; charset=UTF-8", false},
		{"sse", ":streamGenerateContent", "alt=sse", src, true, true, "text/event-stream; charset=utf-8", false},
		{"array cut", ":streamGenerateContent", "", cut, true, false, "application/json; charset=UTF-8", true},
		{"whole", ":generateContent", "", nil, false, false, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stable(t)
			p, err := NewPlanPath(llmapi.GenerateContent, llmapi.Messages, "/v1beta/models/claude-x"+tc.path, tc.query, []byte(geminiHello), "claude-x")
			if err != nil {
				t.Fatal(err)
			}
			if p.Stream != tc.stream || p.Path != "/v1/messages" || strings.Contains(string(p.Body), `"stream"`) != tc.stream {
				t.Fatalf("plan: stream %v path %s body %s", p.Stream, p.Path, p.Body)
			}
			if !tc.stream {
				return
			}
			var rec recorder
			err = p.Respond(200, http.Header{"Content-Type": {"text/event-stream"}}, bytes.NewReader(tc.body), &rec)
			if (err != nil) != tc.wantErr || rec.header.Get("Content-Type") != tc.wantCT {
				t.Fatalf("err %v, content type %q", err, rec.header.Get("Content-Type"))
			}
			out := rec.body.Bytes()
			if tc.sse {
				if !bytes.HasPrefix(out, []byte("data: {")) {
					t.Fatalf("not SSE: %s", out)
				}
				return
			}
			var chunks []geminiResponse
			err = json.Unmarshal(out, &chunks)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("a cut stream must stay a broken array: %s", out)
				}
				return
			}
			if err != nil || len(chunks) < 3 || chunks[len(chunks)-1].Candidates[0].FinishReason != "STOP" ||
				chunks[len(chunks)-1].UsageMetadata.PromptTokenCount == 0 {
				t.Fatalf("array: %v %s", err, out)
			}
		})
	}
}

// TestGeminiClientRoundTrip proves what a Gemini client is sent comes back
// to Anthropic intact on the next turn: the signed thinking block, the
// redacted block, the call ids and the results matched to their calls.
func TestGeminiClientRoundTrip(t *testing.T) {
	resp := &Response{ID: "msg_1", Model: "claude-x", Stop: StopTool, Parts: []Part{
		{Kind: PartThinking, Text: "Need weather.", Signature: "EqQBCkgI+/sig=="},
		{Kind: PartRedactedThinking, Text: "EmwKAhgBEgy3va3pzix/LafPsn4a"},
		{Kind: PartToolCall, Call: &ToolCall{ID: "toolu_01A", Name: "get_weather", Args: json.RawMessage(`{"city":"Paris"}`)}},
		{Kind: PartToolCall, Call: &ToolCall{ID: "toolu_01B", Name: "get_weather", Args: json.RawMessage(`{"city":"Tokyo"}`)}},
	}}
	var answer geminiRequest // a response's candidate content has the request's content shape
	var whole struct {
		Candidates []struct{ Content geminiContent }
	}
	if err := json.Unmarshal(encodeGeminiResponse(resp, &Request{}), &whole); err != nil {
		t.Fatal(err)
	}
	model := whole.Candidates[0].Content
	// The client answers the calls without ids, as genai examples do.
	answer.Contents = []geminiContent{{Role: "user", Parts: []geminiPartInput{{Text: ptr("weather?")}}}, model,
		{Role: "user", Parts: []geminiPartInput{fnResponse("get_weather", `{"result":"18C"}`), fnResponse("get_weather", `{"result":"24C"}`)}}}
	p, err := NewPlanPath(llmapi.GenerateContent, llmapi.Messages, "/v1beta/models/claude-x:generateContent", "", mustJSON(answer), "claude-x")
	if err != nil {
		t.Fatal(err)
	}
	body := string(p.Body)
	for _, want := range []string{
		`{"signature":"EqQBCkgI+/sig==","thinking":"Need weather.","type":"thinking"}`,
		`{"data":"EmwKAhgBEgy3va3pzix/LafPsn4a","type":"redacted_thinking"}`,
		`"id":"toolu_01A"`, `"tool_use_id":"toolu_01A"`, `"tool_use_id":"toolu_01B"`, `"text":"24C"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in\n%s", want, body)
		}
	}
	if strings.Index(body, `"tool_use_id":"toolu_01A"`) > strings.Index(body, `"tool_use_id":"toolu_01B"`) {
		t.Errorf("results answer the calls in order: %s", body)
	}
}

func ptr(s string) *string { return &s }

func fnResponse(name, response string) geminiPartInput {
	var p geminiPartInput
	if err := json.Unmarshal([]byte(`{"functionResponse":{"name":"`+name+`","response":`+response+`}}`), &p); err != nil {
		panic(err)
	}
	return p
}
