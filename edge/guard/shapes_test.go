package guard

import (
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestInspectGeminiSingleForms: the Gemini API takes a single object where
// its schema has a repeated field ("contents": {"parts": {"text": …}}, as
// in Google's own system-instruction sample), so the guard must read those
// texts as it reads the listed ones: nothing found may cross in clear.
func TestInspectGeminiSingleForms(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}})
	const phone = "13812345678"
	for _, body := range []string{
		`{"contents":{"parts":{"text":"call ` + phone + `"}}}`,
		`{"contents":{"role":"user","parts":[{"text":"call ` + phone + `"}]}}`,
		`{"contents":[{"role":"user","parts":{"text":"call ` + phone + `"}}]}`,
		`{"system_instruction":{"parts":{"text":"owner ` + phone + `"}},"contents":[{"parts":[{"text":"hi"}]}]}`,
		`{"systemInstruction":{"parts":{"text":"owner ` + phone + `"}},"contents":[{"parts":[{"text":"hi"}]}]}`,
		`{"contents":{"parts":{"functionResponse":{"name":"f","response":{"to":"` + phone + `"}}}}}`,
		`{"contents":{"parts":{"functionCall":{"name":"f","args":{"to":"` + phone + `"}}}}}`,
	} {
		o, err := p.Inspect(llmapi.Gemini, "/v1beta/models/gemini-2.0-flash:generateContent", []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if strings.Contains(string(o.Body), phone) || !strings.Contains(string(o.Body), "⟦PHONE_1⟧") {
			t.Errorf("sent %s", o.Body)
		}
		o.Release()
	}
}

// shape is a request body of a family sent to path.
type shape struct {
	family     llmapi.Family
	path, body string
}

// checkMasked inspects each shape with p and fails where phone crossed in
// clear, or not as ⟦PHONE_1⟧.
func checkMasked(t *testing.T, p *Policy, phone string, shapes []shape) {
	t.Helper()
	for _, tc := range shapes {
		o, err := p.Inspect(tc.family, tc.path, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if strings.Contains(string(o.Body), phone) || !strings.Contains(string(o.Body), "⟦PHONE_1⟧") {
			t.Errorf("sent %s", o.Body)
		}
		o.Release()
	}
}

// TestInspectDocumentsAndToolInputs: an Anthropic document's text (a content
// source, its title and context), a search result's title, and a Responses
// custom tool call's input are read like any other text.
func TestInspectDocumentsAndToolInputs(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}})
	const phone = "13812345678"
	checkMasked(t, p, phone, []shape{
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"content","content":"call ` + phone + `"}}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"content","content":[{"type":"text","text":"call ` + phone + `"}]}}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"document","title":"notes for ` + phone + `","source":{"type":"url","url":"https://example.com/a.pdf"}}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"document","context":"owner ` + phone + `","source":{"type":"url","url":"https://example.com/a.pdf"}}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"search_result","source":"https://example.com","title":"` + phone + `","content":[{"type":"text","text":"x"}]}]}]}`},
		{llmapi.OpenAI, "/v1/responses", `{"input":[{"type":"custom_tool_call","call_id":"c1","name":"sh","input":"sms ` + phone + `"}]}`},
	})
}

// TestInspectPlainTextDocumentData: an Anthropic document with a
// plain-text source carries its text in the source's data, which the
// guard reads wherever the source's type stands in it; a base64 source's
// data (a PDF's or an image's bytes) is left as it came, and a source that
// says base64 and text both is read.
func TestInspectPlainTextDocumentData(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}})
	const phone = "13812345678"
	msg := func(block string) string { return `{"messages":[{"role":"user","content":[` + block + `]}]}` }
	for _, block := range []string{
		`{"type":"document","source":{"type":"text","media_type":"text/plain","data":"call ` + phone + `"}}`,
		`{"type":"document","source":{"data":"call ` + phone + `","media_type":"text/plain","type":"text"}}`,
		`{"type":"document","source":{"type":"base64","data":"call ` + phone + `","type":"text"}}`,
		`{"type":"document","source":{"type":"b\u0061se64","media_type":"text/plain","data":"call ` + phone + `"}}`,
		`{"type":"tool_result","tool_use_id":"t1","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"call ` + phone + `"}}]}`,
	} {
		o, err := p.Inspect(llmapi.Anthropic, "/v1/messages", []byte(msg(block)))
		if err != nil {
			t.Fatalf("%s: %v", block, err)
		}
		if strings.Contains(string(o.Body), phone) || !strings.Contains(string(o.Body), "⟦PHONE_1⟧") {
			t.Errorf("sent %s", o.Body)
		}
		o.Release()
	}
	for _, block := range []string{
		`{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0x` + phone + `"}}`,
		`{"type":"document","source":{"data":"JVBERi0x` + phone + `","media_type":"application/pdf","type":"base64"}}`,
		`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0K` + phone + `"}}`,
	} {
		body := msg(block)
		o, err := p.Inspect(llmapi.Anthropic, "/v1/messages", []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", block, err)
		}
		if string(o.Body) != body {
			t.Errorf("base64 data rewritten: %s", o.Body)
		}
		o.Release()
	}
}

// TestInspectNumbersInText: a value written as a JSON number where text
// goes (a tool's input or result, Gemini's function call arguments) is read
// like a string's, and masked it becomes a string holding its placeholder;
// numbers elsewhere (max_tokens) are the client's.
func TestInspectNumbersInText(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile", "bank_card"}})
	const phone = "13812345678"
	for _, tc := range []struct {
		family     llmapi.Family
		path, body string
		want       string
	}{
		{llmapi.Anthropic, "/v1/messages",
			`{"max_tokens":13812345678,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"dial","input":{"to":13812345678,"n":[1,-2.5e3]}}]}]}`,
			`{"max_tokens":13812345678,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"dial","input":{"to":"⟦PHONE_1⟧","n":[1,-2.5e3]}}]}]}`},
		{llmapi.Gemini, "/v1beta/models/gemini-2.0-flash:generateContent",
			`{"contents":[{"parts":[{"functionResponse":{"name":"f","response":{"phone":13812345678,"card":6222021234567894}}}]}]}`,
			`{"contents":[{"parts":[{"functionResponse":{"name":"f","response":{"phone":"⟦PHONE_1⟧","card":"⟦CARD_1⟧"}}}]}]}`},
		{llmapi.Gemini, "/v1beta/models/gemini-2.0-flash:generateContent",
			`{"contents":{"parts":{"functionCall":{"name":"f","args":{"to":13812345678}}}}}`,
			`{"contents":{"parts":{"functionCall":{"name":"f","args":{"to":"⟦PHONE_1⟧"}}}}}`},
		{llmapi.OpenAI, "/v1/chat/completions",
			`{"messages":[{"role":"user","content":13812345678}]}`,
			`{"messages":[{"role":"user","content":"⟦PHONE_1⟧"}]}`},
	} {
		o, err := p.Inspect(tc.family, tc.path, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if string(o.Body) != tc.want {
			t.Errorf("sent %s\nwant %s", o.Body, tc.want)
		}
		if got := o.Vault.Restore("⟦PHONE_1⟧"); got != phone {
			t.Errorf("vault: %q", got)
		}
		o.Release()
	}
}

// TestInspectKeysInToolData: below a tool's input, a function's arguments
// or its response, an object's keys are the client's data as much as its
// values (a map by phone number or name), read and masked like them; the
// API's own keys elsewhere are not text.
func TestInspectKeysInToolData(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}, Words: WordsFile{File: wordsFile(t, "张三\tname\n")},
		Actions: map[string]Action{"name": Block}})
	for _, tc := range []struct {
		family     llmapi.Family
		path, body string
		want       string
	}{
		{llmapi.Anthropic, "/v1/messages",
			`{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"n","input":{"calls":{"13812345678":{"n":2}}}}]}]}`,
			`{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"n","input":{"calls":{"⟦PHONE_1⟧":{"n":2}}}}]}]}`},
		{llmapi.Gemini, "/v1beta/models/gemini-2.0-flash:generateContent",
			`{"contents":[{"parts":[{"functionResponse":{"name":"f","response":{"13812345678":"home"}}}]}]}`,
			`{"contents":[{"parts":[{"functionResponse":{"name":"f","response":{"⟦PHONE_1⟧":"home"}}}]}]}`},
	} {
		o, err := p.Inspect(tc.family, tc.path, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if string(o.Body) != tc.want {
			t.Errorf("sent %s\nwant %s", o.Body, tc.want)
		}
		o.Release()
	}
	o, err := p.Inspect(llmapi.Gemini, "/v1beta/models/gemini-2.0-flash:generateContent",
		[]byte(`{"contents":[{"parts":[{"functionCall":{"name":"f","args":{"张三":1}}}]}]}`))
	if err != nil || strings.Join(o.Blocked, ",") != "name" {
		t.Errorf("a word as a key: blocked %v, %v", o.Blocked, err)
	}
}

// TestInspectWhatTheModelReadsBeside: tool definitions (descriptions,
// schemas, enums), output schemas, predicted outputs, prompt variables and
// code parts are text the model reads like the messages, and a client can
// put anything there: they are read too.
func TestInspectWhatTheModelReadsBeside(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}})
	const phone = "13812345678"
	checkMasked(t, p, phone, []shape{
		{llmapi.OpenAI, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"dial","description":"the boss is ` + phone + `","parameters":{"type":"object"}}}]}`},
		{llmapi.OpenAI, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"dial","parameters":{"type":"object","properties":{"to":{"type":"string","enum":["` + phone + `"]}}}}}]}`},
		{llmapi.OpenAI, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"prediction":{"type":"content","content":"call ` + phone + `"}}`},
		{llmapi.OpenAI, "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":{"description":"owner ` + phone + `"}}}}`},
		{llmapi.OpenAI, "/v1/responses", `{"input":"hi","tools":[{"type":"function","name":"dial","description":"boss ` + phone + `","parameters":{}}]}`},
		{llmapi.OpenAI, "/v1/responses", `{"prompt":{"id":"pmpt_1","variables":{"customer":"` + phone + `"}}}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"dial","description":"boss ` + phone + `","input_schema":{"type":"object"}}]}`},
		{llmapi.Gemini, "/v1beta/models/gemini-2.0-flash:generateContent", `{"contents":[{"parts":[{"text":"hi"}]}],"tools":[{"functionDeclarations":[{"name":"dial","description":"boss ` + phone + `"}]}]}`},
		{llmapi.Gemini, "/v1beta/models/gemini-2.0-flash:generateContent", `{"contents":[{"parts":[{"executableCode":{"language":"PYTHON","code":"dial('` + phone + `')"}}]}]}`},
	})
}

// TestInspectKeysAsGoReadsThem: the relay's format converters decode a
// request with encoding/json, whose keys match fields whatever their case
// and with Unicode folding ("Content", "CONTENT", "meſſages" are all
// there). The guard reads such keys as the same fields, so a text under
// one is read; and a source whose "TYPE" differs from its "type" is read.
func TestInspectKeysAsGoReadsThem(t *testing.T) {
	p := compile(t, &Config{Detectors: []string{"cn_mobile"}})
	const phone = "13812345678"
	checkMasked(t, p, phone, []shape{
		{llmapi.OpenAI, "/v1/chat/completions", `{"model":"claude-x","messages":[{"role":"user","Content":"call ` + phone + `"}]}`},
		{llmapi.OpenAI, "/v1/chat/completions", `{"model":"claude-x","MESSAGES":[{"role":"user","CONTENT":"call ` + phone + `"}]}`},
		{llmapi.OpenAI, "/v1/chat/completions", `{"model":"claude-x","meſſages":[{"role":"user","content":"call ` + phone + `"}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"text","Text":"call ` + phone + `"}]}]}`},
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","TYPE":"text","data":"call ` + phone + `"}}]}]}`},
	})
}
