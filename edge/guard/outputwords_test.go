package guard

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOutputWordsOnlyModelText: output_words reads only the text the model
// wrote (message text, reasoning, refusals, tool call arguments, an
// Anthropic tool_use's input, a Gemini functionCall's args), in whole
// answers of every API family as in streamed ones. A word in an id, a
// type, a role, a tool's name or a model version is neither masked nor
// counted, and does not cut the answer: changed, those break the client's
// reading of the answer.
func TestOutputWordsOnlyModelText(t *testing.T) {
	wf := wordsFile(t, "secret\tsecret\nmessage\tsecret\n")
	for _, tc := range []struct {
		name string
		// body has the word in text fields (n times) and others; want is
		// it with output_words: mask.
		body, want string
		n          int
		stream     bool // body is one SSE event's data
	}{
		{"chat", `{"id":"chatcmpl-secret","object":"chat.completion","model":"secret-1","choices":[{"index":0,"message":{"role":"assistant","content":"a secret","tool_calls":[{"id":"call_secret","type":"function","function":{"name":"secret","arguments":"{\"q\":\"secret\"}"}}]},"finish_reason":"stop"}]}`,
			`{"id":"chatcmpl-secret","object":"chat.completion","model":"secret-1","choices":[{"index":0,"message":{"role":"assistant","content":"a ＊＊＊＊＊＊","tool_calls":[{"id":"call_secret","type":"function","function":{"name":"secret","arguments":"{\"q\":\"＊＊＊＊＊＊\"}"}}]},"finish_reason":"stop"}]}`, 2, false},
		{"responses", `{"id":"resp_secret","object":"response","output":[{"type":"message","id":"msg_secret","role":"assistant","content":[{"type":"output_text","text":"a secret"}]},{"type":"function_call","call_id":"call_secret","name":"secret","arguments":"{\"a\":\"secret\"}"}]}`,
			`{"id":"resp_secret","object":"response","output":[{"type":"message","id":"msg_secret","role":"assistant","content":[{"type":"output_text","text":"a ＊＊＊＊＊＊"}]},{"type":"function_call","call_id":"call_secret","name":"secret","arguments":"{\"a\":\"＊＊＊＊＊＊\"}"}]}`, 2, false},
		{"anthropic", `{"id":"msg_secret","type":"message","role":"assistant","content":[{"type":"text","text":"a secret"},{"type":"tool_use","id":"toolu_secret","name":"secret","input":{"id":"secret"}}],"stop_reason":"end_turn"}`,
			`{"id":"msg_secret","type":"message","role":"assistant","content":[{"type":"text","text":"a ＊＊＊＊＊＊"},{"type":"tool_use","id":"toolu_secret","name":"secret","input":{"id":"＊＊＊＊＊＊"}}],"stop_reason":"end_turn"}`, 2, false},
		{"gemini", `{"candidates":[{"content":{"parts":[{"text":"a secret"},{"functionCall":{"id":"secret","name":"secret","args":{"name":"secret"}}}],"role":"model"},"finishReason":"STOP"}],"modelVersion":"secret-2"}`,
			`{"candidates":[{"content":{"parts":[{"text":"a ＊＊＊＊＊＊"},{"functionCall":{"id":"secret","name":"secret","args":{"name":"＊＊＊＊＊＊"}}}],"role":"model"},"finishReason":"STOP"}],"modelVersion":"secret-2"}`, 2, false},
		{"chat streamed", `{"id":"chatcmpl-secret","object":"chat.completion.chunk","model":"secret-1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_secret","type":"function","function":{"name":"secret","arguments":"{\"q\":\"secret\"}"}}]},"finish_reason":"tool_calls"}]}`,
			`{"id":"chatcmpl-secret","object":"chat.completion.chunk","model":"secret-1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_secret","type":"function","function":{"name":"secret","arguments":"{\"q\":\"＊＊＊＊＊＊\"}"}}]},"finish_reason":"tool_calls"}]}`, 1, true},
		{"anthropic streamed", `{"type":"message_start","message":{"id":"msg_secret","type":"message","role":"assistant","model":"secret","content":[]}}`,
			`{"type":"message_start","message":{"id":"msg_secret","type":"message","role":"assistant","model":"secret","content":[]}}`, 0, true},
	} {
		for _, mode := range []string{OutputFlag, OutputMask, OutputCut} {
			p := compile(t, &Config{Words: WordsFile{File: wf}, Actions: map[string]Action{"secret": Flag}, OutputWords: mode})
			a := p.Answer(&Outcome{})
			var got string
			if tc.stream {
				s := a.NewStream()
				got = string(append(s.Feed([]byte("data: "+tc.body+"\n\n")), s.Close()...))
				got = strings.TrimSuffix(strings.TrimPrefix(got, "data: "), "\n\n")
			} else {
				got = string(a.Whole([]byte(tc.body)))
			}
			if a.OutputCounts["secret"] != tc.n || a.Cut != (mode == OutputCut && tc.n > 0) {
				t.Errorf("%s, %s: counts %v, cut %v; want %d finds", tc.name, mode, a.OutputCounts, a.Cut, tc.n)
			}
			want := tc.body
			if mode == OutputMask {
				want = tc.want
			}
			if mode != OutputCut && got != want {
				t.Errorf("%s, %s:\n got %s\nwant %s", tc.name, mode, got, want)
			}
		}
	}
}

// TestOutputWordsMaskKeepsJSON: with output_words: mask, a word in a tool
// call's arguments is masked only where it stands whole in one string of
// the JSON text (or of a JSON text in one of its strings), as the model
// reads it: a word matched across the text's quotes and commas, which the
// word list lets stand between its characters, or taking a letter of an
// escape, is not one, and masking it would change or break the
// arguments. The arguments stay JSON of the same shape, whole and
// streamed.
func TestOutputWordsMaskKeepsJSON(t *testing.T) {
	p := compile(t, &Config{Words: WordsFile{File: wordsFile(t, "secret\tsecret\n机密\tsecret\ntab\tsecret\n")},
		Actions: map[string]Action{"secret": Flag}, OutputWords: OutputMask})
	chat := func(args string) []byte {
		b, _ := json.Marshal(map[string]any{"id": "c1", "choices": []any{map[string]any{"index": 0, "message": map[string]any{
			"role": "assistant", "tool_calls": []any{map[string]any{"id": "t1", "type": "function",
				"function": map[string]any{"name": "f", "arguments": args}}}}}}})
		return b
	}
	for _, tc := range []struct {
		name, args, want string
		n                int
	}{
		{"in one string", `{"q":"a secret","r":"机-密"}`, `{"q":"a ＊＊＊＊＊＊","r":"＊＊＊"}`, 2},
		{"across strings", `{"a":["sec","ret"]}`, `{"a":["sec","ret"]}`, 0},
		{"across strings, spaced", `{"a":["sec", "ret"],"b":{"机":"密"}}`, `{"a":["sec", "ret"],"b":{"机":"密"}}`, 0},
		{"across a key", `{"a":"机","密":1}`, `{"a":"机","密":1}`, 0},
		{"across strings of JSON in the arguments", `{"p":"[\"sec\",\"ret\"]"}`, `{"p":"[\"sec\",\"ret\"]"}`, 0},
		{"in JSON in the arguments", `{"p":"[\"机密\"]"}`, `{"p":"[\"＊＊\"]"}`, 1},
		{"a letter of an escape", `{"a":"\tab"}`, `{"a":"\tab"}`, 0},
	} {
		for _, s := range []string{tc.args, tc.want} {
			if !json.Valid([]byte(s)) {
				t.Fatalf("%s: the test's %s is not JSON", tc.name, s)
			}
		}
		a := p.Answer(&Outcome{})
		if got, want := a.Whole(chat(tc.args)), chat(tc.want); string(got) != string(want) || a.OutputCounts["secret"] != tc.n {
			t.Errorf("%s, whole: %d finds, want %d\n got %s\nwant %s", tc.name, a.OutputCounts["secret"], tc.n, got, want)
		}
		for _, sa := range streamedArguments {
			forEachCut(tc.args, func(cut1, cut2 int) {
				if got := sa.restore(p.Answer(&Outcome{}), tc.args, cut1, cut2); got != tc.want {
					t.Errorf("%s, %s streamed, cut at %d, %d: arguments %s, want %s", tc.name, sa.name, cut1, cut2, got, tc.want)
				}
			})
		}
	}
}
