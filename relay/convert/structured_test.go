package convert

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestFormatToolChoice proves how a JSON-schema format reaches Anthropic:
// the format tool is always added; the model is forced to it when alone,
// made to call some tool beside the client's, the client's own forced tool
// kept, and nothing forced under extended thinking (Anthropic refuses it);
// a schema that is not an object is refused, since a tool input is one.
func TestFormatToolChoice(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       string // the tool_choice, or the error
	}{
		{"alone", `{"model":"m","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"}}}}`,
			`{"name":"structured_output","type":"tool"}`},
		{"json mode", `{"model":"m","messages":[],"response_format":{"type":"json_object"}}`, `{"name":"structured_output","type":"tool"}`},
		{"with tools", `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"parallel_tool_calls":false,
			"response_format":{"type":"json_object"}}`, `{"disable_parallel_tool_use":true,"type":"any"}`},
		{"tools off", `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none",
			"response_format":{"type":"json_object"}}`, `{"name":"structured_output","type":"tool"}`},
		{"client forced", `{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],
			"tool_choice":{"type":"function","function":{"name":"f"}},"response_format":{"type":"json_object"}}`, `{"name":"f","type":"tool"}`},
		{"thinking", `{"model":"m","messages":[],"reasoning_effort":"low","response_format":{"type":"json_object"}}`, `null`},
		{"array schema", `{"model":"m","messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"array"}}}}`,
			"top level is an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(llmapi.ChatCompletions, llmapi.Messages, []byte(tc.body), "")
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v, want %s", err, tc.want)
				}
				return
			}
			var out struct {
				Tools      []struct{ Name string }
				ToolChoice json.RawMessage `json:"tool_choice"`
			}
			if err := json.Unmarshal(p.Body, &out); err != nil {
				t.Fatal(err)
			}
			if got := string(rawOr(out.ToolChoice, "null")); got != tc.want || out.Tools[len(out.Tools)-1].Name != formatTool {
				t.Fatalf("tool_choice %s, tools %+v; want %s", got, out.Tools, tc.want)
			}
		})
	}
}

// TestFormatAnswerKeepsRealCalls: when the model called a client tool
// beside the format tool, the answer still ends as a tool call.
func TestFormatAnswerKeepsRealCalls(t *testing.T) {
	r := &Response{Stop: StopTool, Parts: []Part{
		{Kind: PartToolCall, Call: &ToolCall{ID: "a", Name: "f", Args: json.RawMessage(`{}`)}},
		{Kind: PartToolCall, Call: &ToolCall{ID: "b", Name: formatTool, Args: json.RawMessage(`{"x":1}`)}},
	}}
	formatAnswer(r)
	if r.Stop != StopTool || r.Parts[1].Kind != PartText || r.Parts[1].Text != `{"x":1}` {
		t.Fatalf("%+v", r)
	}
}
