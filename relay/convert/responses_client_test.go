package convert

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// claudeRedactedStream is an Anthropic stream whose thinking was partly
// redacted, ending in a tool call.
const claudeRedactedStream = `event: message_start
data: {"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":10,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Need weather."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkgI+/sig=="}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix/LafPsn4a"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\":\"Paris\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":30}}

event: message_stop
data: {"type":"message_stop"}

`

// TestResponsesClientRoundTrip proves what a Responses client is sent by
// an Anthropic provider comes back to Anthropic intact on the next turn,
// whole and streamed: the signed thinking block, the redacted block (which
// Anthropic requires back before the tool call it preceded) and the call.
func TestResponsesClientRoundTrip(t *testing.T) {
	whole := func(t *testing.T) json.RawMessage {
		resp := &Response{ID: "msg_1", Model: "claude-x", Stop: StopTool, Parts: []Part{
			{Kind: PartThinking, Text: "Need weather.", Signature: "EqQBCkgI+/sig=="},
			{Kind: PartRedactedThinking, Text: "EmwKAhgBEgy3va3pzix/LafPsn4a"},
			{Kind: PartToolCall, Call: &ToolCall{ID: "toolu_01A", Name: "get_weather", Args: json.RawMessage(`{"city":"Paris"}`)}},
		}}
		var out struct{ Output json.RawMessage }
		if err := json.Unmarshal(encodeResponsesResponse(resp, &Request{}), &out); err != nil {
			t.Fatal(err)
		}
		return out.Output
	}
	streamed := func(t *testing.T) json.RawMessage {
		p := &Plan{Client: llmapi.Responses, Provider: llmapi.Messages, Stream: true, req: &Request{Model: "claude-x", Stream: true}}
		var rec recorder
		if err := p.Respond(200, http.Header{"Content-Type": {"text/event-stream"}}, strings.NewReader(claudeRedactedStream), &rec); err != nil {
			t.Fatal(err)
		}
		for _, ev := range bytes.Split(rec.body.Bytes(), []byte("\n\n")) {
			if !bytes.Contains(ev, []byte("event: response.completed")) {
				continue
			}
			var done struct {
				Response struct{ Output json.RawMessage }
			}
			if err := json.Unmarshal(llmapi.EventData(append(ev, "\n\n"...)), &done); err != nil {
				t.Fatal(err)
			}
			return done.Response.Output
		}
		t.Fatalf("no response.completed in\n%s", rec.body.String())
		return nil
	}
	for _, tc := range []struct {
		name   string
		output func(*testing.T) json.RawMessage
	}{{"whole", whole}, {"stream", streamed}} {
		t.Run(tc.name, func(t *testing.T) {
			var items []json.RawMessage
			if err := json.Unmarshal(tc.output(t), &items); err != nil {
				t.Fatal(err)
			}
			// The client sends the output items back as they came (Codex
			// does), then the call's result.
			input := append([]json.RawMessage{json.RawMessage(`{"role":"user","content":"weather?"}`)}, items...)
			input = append(input, json.RawMessage(`{"type":"function_call_output","call_id":"toolu_01A","output":"18C"}`))
			next := mustJSON(obj{"model": "claude-x", "input": input})
			p, err := NewPlanPath(llmapi.Responses, llmapi.Messages, "/v1/responses", "", next, "claude-x")
			if err != nil {
				t.Fatal(err)
			}
			body := string(p.Body)
			for _, want := range []string{
				`{"signature":"EqQBCkgI+/sig==","thinking":"Need weather.","type":"thinking"}`,
				`{"data":"EmwKAhgBEgy3va3pzix/LafPsn4a","type":"redacted_thinking"}`,
				`"id":"toolu_01A"`, `"tool_use_id":"toolu_01A"`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("missing %s in\n%s", want, body)
				}
			}
		})
	}
}
