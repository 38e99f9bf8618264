package guard

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// chatWithArguments is a Chat request whose assistant turn calls a tool
// with args (a JSON text, as the client's SDK wrote it) and whose tool turn
// answers with result.
func chatWithArguments(args, result string) []byte {
	b, _ := json.Marshal(map[string]any{"model": "m", "messages": []any{
		map[string]any{"role": "user", "content": "go"},
		map[string]any{"role": "assistant", "tool_calls": []any{map[string]any{"id": "c1", "type": "function",
			"function": map[string]any{"name": "f", "arguments": args}}}},
		map[string]any{"role": "tool", "tool_call_id": "c1", "content": result},
	}})
	return b
}

// sentArguments is the arguments of the tool call in a Chat request body,
// decoded twice: the value the model reads.
func sentArguments(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var req struct {
		Messages []struct {
			ToolCalls []struct{ Function struct{ Arguments string } } `json:"tool_calls"`
		}
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatalf("body: %v\n%s", err, body)
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(req.Messages[1].ToolCalls[0].Function.Arguments), &args); err != nil {
		t.Fatalf("arguments are no longer JSON: %v\n%s", err, body)
	}
	return args
}

// TestInspectJSONInJSON: a tool call's arguments, and often a tool's
// result, are JSON texts inside a JSON string, and the SDKs that write them
// escape non-ASCII (Python's json.dumps writes 张三 as \u5f20\u4e09). The
// model reads them unescaped, so the guard must too: a word or a number
// spelled with the inner JSON's escapes, one or two levels down, is found,
// and a masked one leaves the arguments valid JSON.
func TestInspectJSONInJSON(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}, Words: WordsFile{File: wordsFile(t, "张三\tname\n")},
		Actions: map[string]Action{"name": Block}})
	const path = "/v1/chat/completions"
	for _, body := range [][]byte{
		chatWithArguments(`{"who": "\u5f20\u4e09"}`, "ok"),
		chatWithArguments(`{}`, `{"rows": [{"who": "\u5f20\u4e09"}]}`),
		chatWithArguments(`{"payload": "{\"who\": \"\\u5f20\\u4e09\"}"}`, "ok"),
	} {
		o, err := p.Inspect(llmapi.OpenAI, path, body)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(o.Blocked, ",") != "name" {
			t.Errorf("blocked %v, want name: %s", o.Blocked, body)
		}
		o.Release()
	}

	const digits = `\u0031\u0033\u0038\u0031\u0032\u0033\u0034\u0035\u0036\u0037\u0038` // 13812345678
	body := chatWithArguments(`{"to": "`+digits+`", "note": "say \"hi\"\n", "name": "Jos\u00e9"}`, "ok")
	o, err := p.Inspect(llmapi.OpenAI, path, body)
	if err != nil {
		t.Fatal(err)
	}
	args := sentArguments(t, o.Body)
	if args["to"] != "⟦PHONE_1⟧" || args["note"] != "say \"hi\"\n" || args["name"] != "José" {
		t.Errorf("arguments sent: %v\n%s", args, o.Body)
	}
	if got := o.Vault.Restore("⟦PHONE_1⟧"); got != "13812345678" {
		t.Errorf("vault holds %q", got)
	}
	o.Release()

	// Nothing found: the client's bytes go as they came.
	body = chatWithArguments(`{"name": "Jos\u00e9", "q": "a\"b"}`, "ok")
	o, err = p.Inspect(llmapi.OpenAI, path, body)
	if err != nil || string(o.Body) != string(body) {
		t.Fatalf("unchanged body rewritten: %v\n%s", err, o.Body)
	}
	o.Release()
}

// TestRestoreJSONText: a masked value with a quote or a backslash in it
// (here a custom pattern's Windows path) goes back into a tool call's
// arguments escaped for the JSON inside the string, whole and streamed, so
// the arguments stay valid JSON holding the value; and a value masked
// inside arguments comes back as it reads, not as the arguments escaped
// it.
func TestRestoreJSONText(t *testing.T) {
	p := compile(t, &Config{Custom: []CustomPattern{{Name: "winpath", Pattern: `C:\\[A-Za-z\\]+`}}})
	chat := func(s string) []byte {
		b, _ := json.Marshal(map[string]any{"model": "m", "messages": []any{map[string]any{"role": "user", "content": s}}})
		return b
	}
	o, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", chat(`open C:\Users\bob please`))
	if err != nil || o.Vault.Len() != 1 {
		t.Fatalf("inspect: %v %s", err, o.Body)
	}
	const want = `C:\Users\bob`
	argsOf := func(s string) string {
		var v map[string]string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Errorf("arguments %s: %v", s, err)
		}
		return v["path"]
	}

	whole := `{"choices":[{"message":{"tool_calls":[{"function":{"name":"open","arguments":"{\"path\":\"⟦WINPATH_1⟧\"}"}}]}}]}`
	var res struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct{ Function struct{ Arguments string } } `json:"tool_calls"`
			}
		}
	}
	if err := json.Unmarshal(p.Answer(o).Whole([]byte(whole)), &res); err != nil {
		t.Fatal(err)
	}
	if got := argsOf(res.Choices[0].Message.ToolCalls[0].Function.Arguments); got != want {
		t.Errorf("whole: path %q, want %q", got, want)
	}

	s := p.Answer(o).NewStream()
	delta := func(frag string) string {
		return "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":" +
			jsonQuote(frag) + "}}\n\n"
	}
	out := string(append(s.Feed([]byte(delta(`{"path":"⟦WIN`)+delta(`PATH_1⟧"}`)+
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n")), s.Close()...))
	var args strings.Builder
	for _, ev := range strings.Split(out, "\n\n") {
		if _, data, ok := strings.Cut(ev, "data: "); ok {
			var v struct {
				Delta struct {
					PartialJSON string `json:"partial_json"`
				}
			}
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatal(err)
			}
			args.WriteString(v.Delta.PartialJSON)
		}
	}
	if got := argsOf(args.String()); got != want {
		t.Errorf("streamed: path %q, want %q\n%s", got, want, out)
	}
	o.Release()

	o, err = p.Inspect(llmapi.OpenAI, "/v1/chat/completions", chatWithArguments(`{"path": "C:\\Users\\bob"}`, "ok"))
	if err != nil || o.Vault.Len() != 1 {
		t.Fatalf("inspect arguments: %v %s", err, o.Body)
	}
	if got := string(p.Answer(o).Whole([]byte(`{"choices":[{"message":{"content":"opened ⟦WINPATH_1⟧"}}]}`))); got != `{"choices":[{"message":{"content":"opened C:\\Users\\bob"}}]}` {
		t.Errorf("value from arguments restored in text: %s", got)
	}
	o.Release()
}

// TestInspectJSONInJSONUnescaped: custom patterns read a JSON text's
// strings as the model reads them, a quote or a backslash unescaped, as
// they read any other text: C:\Users\bob in a tool call's arguments is
// C:\Users\bob, not C:\\Users\\bob. A find is masked where it stands in
// the arguments, which stay valid JSON, and the vault holds it as it
// reads.
func TestInspectJSONInJSONUnescaped(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"},
		Custom: []CustomPattern{{Name: "home", Pattern: `C:\\Users\\[a-z]+`}, {Name: "code", Pattern: `"AB-\d+"`}}})
	for i, body := range [][]byte{
		chatWithArguments(`{"path": "C:\\Users\\bob", "note": "code \"AB-12\" \u00e9\n13812345678"}`, "ok"),
		chatWithArguments(`{}`, `{"path": "C:\\Users\\bob", "note": "code \"AB-12\" \u00e9\n13812345678"}`),
	} {
		o, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", body)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(o.Body), "bob") || strings.Contains(string(o.Body), "AB-12") || strings.Contains(string(o.Body), "13812345678") ||
			o.Vault.Len() != 3 {
			t.Errorf("sent %s", o.Body)
		}
		if got := o.Vault.Restore("⟦HOME_1⟧ ⟦CODE_1⟧"); got != `C:\Users\bob "AB-12"` {
			t.Errorf("vault holds %q", got)
		}
		if i == 0 {
			if args := sentArguments(t, o.Body); args["path"] != "⟦HOME_1⟧" || args["note"] != "code ⟦CODE_1⟧ é\n⟦PHONE_1⟧" {
				t.Errorf("arguments sent: %v", args)
			}
		}
		o.Release()
	}
}
