package convert

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestResponsesProviderRoundTrip proves OpenAI's reasoning survives a client
// of another dialect: an Anthropic client gets the reasoning item as a
// signed thinking block, sends it back, and the Responses provider gets the
// item with its id and encrypted_content; an Anthropic provider never gets
// OpenAI's signature.
func TestResponsesProviderRoundTrip(t *testing.T) {
	stable(t)
	src, err := os.ReadFile("testdata/response/responses_reasoning_tools.json")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := decodeResponsesResponse(src)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct{ Content json.RawMessage }
	if err := json.Unmarshal(encodeAnthropicResponse(resp, &Request{}), &msg); err != nil {
		t.Fatal(err)
	}
	next := `{"model":"o3-pro","max_tokens":1000,"messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":` +
		string(msg.Content) + `},{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_P1","content":"18C"},` +
		`{"type":"tool_result","tool_use_id":"call_T2","content":"24C"}]}]}`
	p, err := NewPlan(llmapi.Messages, llmapi.Responses, []byte(next), "")
	if err != nil {
		t.Fatal(err)
	}
	body := string(p.Body)
	for _, want := range []string{
		`{"encrypted_content":"gAAAAABoFakeEncryptedReasoning==","id":"rs_68a1aa","summary":[{"text":"Need the weather in two cities.","type":"summary_text"}],"type":"reasoning"}`,
		`{"arguments":"{\"city\":\"Paris\"}","call_id":"call_P1","name":"get_weather","type":"function_call"}`,
		`{"call_id":"call_T2","output":"24C","type":"function_call_output"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in\n%s", want, body)
		}
	}
	toClaude, err := NewPlan(llmapi.Messages, llmapi.ChatCompletions, []byte(next), "")
	if err != nil {
		t.Fatal(err)
	}
	toAnthropic := string(encodeAnthropicBody(t, next))
	if strings.Contains(toAnthropic, "gAAAA") || strings.Contains(string(toClaude.Body), "gAAAA") {
		t.Errorf("OpenAI's encrypted reasoning sent to another provider:\n%s\n%s", toAnthropic, toClaude.Body)
	}
}

// encodeAnthropicBody re-encodes an Anthropic request, as a Gemini or Chat
// client's history would reach an Anthropic provider.
func encodeAnthropicBody(t *testing.T, body string) []byte {
	t.Helper()
	r, err := decodeAnthropicRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _, out, err := encodeAnthropicRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestResponsesProviderStops: incomplete answers map to max tokens or the
// content filter; a failed stream becomes an in-band error.
func TestResponsesProviderStops(t *testing.T) {
	for _, tc := range []struct {
		body string
		want Stop
	}{
		{`{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]}`, StopMaxTokens},
		{`{"status":"incomplete","incomplete_details":{"reason":"content_filter"},"output":[]}`, StopFilter},
		{`{"status":"completed","output":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"}]}`, StopTool},
		{`{"status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":"x"}]}]}`, StopEnd},
	} {
		r, err := decodeResponsesResponse([]byte(tc.body))
		if err != nil || r.Stop != tc.want {
			t.Errorf("%s: stop %v err %v, want %v", tc.body, r.Stop, err, tc.want)
		}
	}
	var got []Event
	d := newResponsesDecoder(func(ev Event) error { got = append(got, ev); return nil })
	for _, ev := range []string{
		`{"type":"response.created","response":{"id":"resp_1","model":"o3-pro"}}`,
		`{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"boom"}}}`,
	} {
		if err := d.event("", []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.end(); err != nil || len(got) != 2 || got[1].Type != EvError || got[1].Err.Message != "boom" || got[1].Err.Kind != ErrServer {
		t.Fatalf("failed stream: %+v, end %v", got, err)
	}
}
