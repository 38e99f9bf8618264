package guard

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestJSONTextsStayJSON: a value masked in a JSON text inside a JSON
// string (a tool call's arguments, and a JSON text in one of their
// strings) is found in the string it is in, as the model reads it, and
// replaced there: a custom pattern's find never takes the text's own
// quotes or braces, a number becomes a string, and the arguments stay
// valid JSON, the rest of the request byte for byte as it was. A value
// with a quote or a backslash restored into a JSON text in an answer,
// whole or streamed, a tool call's arguments or a message that is JSON, is
// escaped once for every string it stands in.
func TestJSONTextsStayJSON(t *testing.T) {
	// Custom patterns whose values hold a quote or a backslash, or may
	// reach across a JSON text's quotes.
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}, Custom: []CustomPattern{
		{Name: "emp", Pattern: `EMP-\S+`}, {Name: "q", Pattern: `"Q-\d+"`}, {Name: "win", Pattern: `C:\\[A-Za-z\\]+`}}})
	for _, tc := range []struct{ args, want, placeholder, value string }{
		{`{"user":"EMP-123"}`, `{"user":"⟦EMP_1⟧"}`, "⟦EMP_1⟧", "EMP-123"},
		{`{"user": "EMP-123", "x": [1]}`, `{"user": "⟦EMP_1⟧", "x": [1]}`, "⟦EMP_1⟧", "EMP-123"},
		{`{"note":"say \"Q-12\" now","n":1}`, `{"note":"say ⟦Q_1⟧ now","n":1}`, "⟦Q_1⟧", `"Q-12"`},
		{`{"code":"Q-12"}`, `{"code":"Q-12"}`, "", ""}, // the quotes are the text's, not the value's
		{`{"to":13812345678,"n":2}`, `{"to":"⟦PHONE_1⟧","n":2}`, "⟦PHONE_1⟧", "13812345678"},
		{`{"p":"{\"user\":\"EMP-123\"}"}`, `{"p":"{\"user\":\"⟦EMP_1⟧\"}"}`, "⟦EMP_1⟧", "EMP-123"},
		{`{"p":"{\"path\":\"C:\\\\Users\\\\bob\"}"}`, `{"p":"{\"path\":\"⟦WIN_1⟧\"}"}`, "⟦WIN_1⟧", `C:\Users\bob`},
		{`{"p":"{\"to\":[13812345678]}"}`, `{"p":"{\"to\":[\"⟦PHONE_1⟧\"]}"}`, "⟦PHONE_1⟧", "13812345678"},
		{`[{"user":"EMP-123","x":"\u00e9"}]`, `[{"user":"⟦EMP_1⟧","x":"é"}]`, "⟦EMP_1⟧", "EMP-123"},
	} {
		o, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", chatWithArguments(tc.args, "ok"))
		if err != nil {
			t.Fatal(err)
		}
		if want := chatWithArguments(tc.want, "ok"); string(o.Body) != string(want) {
			t.Errorf("%s: sent\n%s\nwant\n%s", tc.args, o.Body, want)
		}
		if !json.Valid([]byte(tc.want)) {
			t.Errorf("%s: the test's arguments are not JSON", tc.want)
		}
		if tc.placeholder != "" && o.Vault.Restore(tc.placeholder) != tc.value {
			t.Errorf("%s: vault holds %q, want %q", tc.args, o.Vault.Restore(tc.placeholder), tc.value)
		}
		o.Release()
	}

	o, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", chatWithArguments(`{}`, `code "Q-7" at C:\Users\bob`))
	if err != nil || o.Vault.Len() != 2 {
		t.Fatalf("inspect: %v %s", err, o.Body)
	}
	defer o.Release()
	chat := func(content, args string) string {
		b, _ := json.Marshal(map[string]any{"id": "c1", "choices": []any{map[string]any{"index": 0, "message": map[string]any{
			"role": "assistant", "content": content, "tool_calls": []any{map[string]any{"id": "t1", "type": "function",
				"function": map[string]any{"name": "open", "arguments": args}}}}}}})
		return string(b)
	}
	responses := func(_, args string) string {
		b, _ := json.Marshal(map[string]any{"id": "r1", "output": []any{map[string]any{"type": "function_call", "call_id": "c1", "arguments": args}}})
		return string(b)
	}
	for _, tc := range []struct {
		name          string
		answer        func(content, args string) string
		content, args string // with placeholders
		wantContent   string
		wantArgs      string
	}{
		{"chat arguments", chat, "", `{"path":"⟦WIN_1⟧"}`, "", `{"path":"C:\\Users\\bob"}`},
		{"chat arguments in arguments", chat, "", `{"p":"{\"path\":\"⟦WIN_1⟧\",\"c\":\"⟦Q_1⟧\"}"}`, "",
			`{"p":"{\"path\":\"C:\\\\Users\\\\bob\",\"c\":\"\\\"Q-7\\\"\"}"}`},
		{"chat JSON message", chat, `{"code": "⟦Q_1⟧", "at": ["⟦WIN_1⟧"]}`, "{}", `{"code": "\"Q-7\"", "at": ["C:\\Users\\bob"]}`, "{}"},
		{"chat text message", chat, `code ⟦Q_1⟧ at ⟦WIN_1⟧`, "{}", `code "Q-7" at C:\Users\bob`, "{}"},
		{"responses arguments in arguments", responses, "", `{"p":"{\"c\":\"⟦Q_1⟧\"}"}`, "", `{"p":"{\"c\":\"\\\"Q-7\\\"\"}"}`},
	} {
		got := string(p.Answer(o).Whole([]byte(tc.answer(tc.content, tc.args))))
		if want := tc.answer(tc.wantContent, tc.wantArgs); got != want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, want)
		}
		for _, s := range []string{tc.wantArgs, tc.wantContent} {
			if strings.HasPrefix(s, "{") && !json.Valid([]byte(s)) {
				t.Errorf("%s: the test's %s is not JSON", tc.name, s)
			}
		}
	}

	// Streamed, the pieces of the arguments cut anywhere.
	const args, want = `{"p":"{\"path\":\"⟦WIN_1⟧\"}"}`, `{"p":"{\"path\":\"C:\\\\Users\\\\bob\"}"}`
	for _, sa := range streamedArguments {
		forEachCut(args, func(cut1, cut2 int) {
			if got := sa.restore(p.Answer(o), args, cut1, cut2); got != want {
				t.Fatalf("%s, cut at %d, %d: arguments %s, want %s", sa.name, cut1, cut2, got, want)
			}
		})
	}
}

// streamedArguments are the streamed forms of a tool call's arguments:
// restore sends args in three events of the form, cut at cut1 and cut2,
// through a, and returns the arguments the client puts together.
var streamedArguments = []struct {
	name    string
	restore func(a *Answer, args string, cut1, cut2 int) string
}{
	{"chat", func(a *Answer, args string, cut1, cut2 int) string {
		return restoreStreamed(a, args, cut1, cut2, func(frag string) string {
			return `data: {"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":` + jsonQuote(frag) + "}}]}}]}\n\n"
		}, func(data []byte) string {
			var v struct {
				Choices []struct {
					Delta struct {
						ToolCalls []struct{ Function struct{ Arguments string } } `json:"tool_calls"`
					}
				}
			}
			if json.Unmarshal(data, &v) != nil || len(v.Choices) == 0 || len(v.Choices[0].Delta.ToolCalls) == 0 {
				return ""
			}
			return v.Choices[0].Delta.ToolCalls[0].Function.Arguments
		})
	}},
	{"anthropic", func(a *Answer, args string, cut1, cut2 int) string {
		return restoreStreamed(a, args, cut1, cut2, func(frag string) string {
			return `event: content_block_delta` + "\n" + `data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":` + jsonQuote(frag) + "}}\n\n"
		}, func(data []byte) string {
			var v struct {
				Delta struct {
					PartialJSON string `json:"partial_json"`
				}
			}
			json.Unmarshal(data, &v)
			return v.Delta.PartialJSON
		})
	}},
}

// restoreStreamed streams args through a in three events (event wraps a
// piece), cut at cut1 and cut2, and puts together the pieces that text
// reads from the events' data.
func restoreStreamed(a *Answer, args string, cut1, cut2 int, event func(frag string) string, text func(data []byte) string) string {
	s := a.NewStream()
	out := s.Feed([]byte(event(args[:cut1]) + event(args[cut1:cut2]) + event(args[cut2:])))
	out = append(out, s.Close()...)
	var got strings.Builder
	for _, ev := range strings.Split(string(out), "\n\n") {
		if _, data, ok := strings.Cut(ev, "data: "); ok {
			got.WriteString(text([]byte(data)))
		}
	}
	return got.String()
}

// forEachCut calls f with the places to cut s in three pieces that the
// streamed tests try: every first cut, the second one byte, seven bytes or
// the rest after it, on UTF-8 boundaries.
func forEachCut(s string, f func(cut1, cut2 int)) {
	for cut1 := 1; cut1 < len(s); cut1++ {
		for _, cut2 := range []int{cut1 + 1, cut1 + 7, len(s)} {
			cut2 = min(cut2, len(s))
			if utf8Boundary(s, cut1) && utf8Boundary(s, cut2) {
				f(cut1, cut2)
			}
		}
	}
}

func utf8Boundary(s string, i int) bool { return i >= len(s) || s[i]&0xC0 != 0x80 }

// TestEscapedPlaceholdersRestored: a model may write a placeholder's
// brackets \u-escaped in a JSON text (a tool call's arguments, or a JSON
// text in one of their strings), which is the same placeholder as the
// model reads it. It is restored as the bare one is, whole and streamed,
// the value escaped for every string it stands in; a \u escape the JSON
// text reads as a backslash and a "u" is text and stays.
func TestEscapedPlaceholdersRestored(t *testing.T) {
	p := compile(t, &Config{Custom: []CustomPattern{{Name: "q", Pattern: `"Q-\d+"`}, {Name: "win", Pattern: `C:\\[A-Za-z\\]+`}}})
	o, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", chatWithArguments(`{}`, `code "Q-7" at C:\Users\bob`))
	if err != nil || o.Vault.Len() != 2 {
		t.Fatalf("inspect: %v %s", err, o.Body)
	}
	defer o.Release()
	chat := func(args string) []byte {
		b, _ := json.Marshal(map[string]any{"id": "c1", "choices": []any{map[string]any{"index": 0, "message": map[string]any{
			"role": "assistant", "tool_calls": []any{map[string]any{"id": "t1", "type": "function",
				"function": map[string]any{"name": "open", "arguments": args}}}}}}})
		return b
	}
	for _, tc := range []struct{ name, args, want string }{
		{"escaped", `{"path":"\u27e6WIN_1\u27e7"}`, `{"path":"C:\\Users\\bob"}`},
		{"escaped, capital hex", `{"path":"\u27E6WIN_1\u27E7","c":"\u27E6Q_1\u27e7"}`, `{"path":"C:\\Users\\bob","c":"\"Q-7\""}`},
		{"one bracket escaped", `{"path":"⟦WIN_1\u27e7 and \u27e6WIN_1⟧"}`, `{"path":"C:\\Users\\bob and C:\\Users\\bob"}`},
		{"in a key", `{"\u27e6Q_1\u27e7":1}`, `{"\"Q-7\"":1}`},
		{"in JSON in the arguments", `{"p":"{\"path\":\"\\u27e6WIN_1\\u27e7\"}"}`, `{"p":"{\"path\":\"C:\\\\Users\\\\bob\"}"}`},
		{"in JSON in the arguments, escaped outside", `{"p":"{\"c\":\"\u27e6Q_1\u27e7\"}"}`, `{"p":"{\"c\":\"\\\"Q-7\\\"\"}"}`},
		{"a backslash before", `{"s":"\\\u27e6WIN_1\u27e7","t":"\u27e6WIN_1\\\u27e7"}`, `{"s":"\\C:\\Users\\bob","t":"\u27e6WIN_1\\\u27e7"}`},
		{"a backslash and a u", `{"s":"\\u27e6WIN_1\\u27e7"}`, `{"s":"\\u27e6WIN_1\\u27e7"}`},
		{"not ours", `{"s":"\u27e6WIN_9\u27e7"}`, `{"s":"\u27e6WIN_9\u27e7"}`},
	} {
		for _, s := range []string{tc.args, tc.want} {
			if !json.Valid([]byte(s)) {
				t.Fatalf("%s: the test's %s is not JSON", tc.name, s)
			}
		}
		if got, want := p.Answer(o).Whole(chat(tc.args)), chat(tc.want); string(got) != string(want) {
			t.Errorf("%s, whole:\n got %s\nwant %s", tc.name, got, want)
		}
		for _, sa := range streamedArguments {
			forEachCut(tc.args, func(cut1, cut2 int) {
				if got := sa.restore(p.Answer(o), tc.args, cut1, cut2); got != tc.want {
					t.Errorf("%s, %s streamed, cut at %d, %d: arguments %s, want %s", tc.name, sa.name, cut1, cut2, got, tc.want)
				}
			})
		}
	}
}
