package guard

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/strait/strait/proto/llmapi"
)

func compile(t testing.TB, c *Config) *Policy {
	t.Helper()
	p, err := Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func wordsFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "words.txt")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var allDetectors = []string{"cn_mobile", "cn_id_card", "bank_card", "email", "ipv4", "ipv6", "passport_cn"}

// TestInspectRewritesOnlyText: values in text fields are masked, the same
// value gets the same placeholder, and every byte outside the rewritten
// strings (ids, images, signatures, other fields, spacing) is the
// client's.
func TestInspectRewritesOnlyText(t *testing.T) {
	p := compile(t, &Config{Detectors: allDetectors, Actions: map[string]Action{"email": Redact}})
	for _, tc := range []struct {
		family, path, body, want string
	}{
		{"openai", "/v1/chat/completions",
			`{"model":"gpt-4o",  "messages":[{"role":"user","content":"call 13812345678 or 13812345678, mail a.b@example.com"},` +
				`{"role":"assistant","tool_calls":[{"id":"call_13812345678","type":"function","function":{"name":"dial","arguments":"{\"to\":\"13812345678\"}"}}]},` +
				`{"role":"user","content":[{"type":"text","text":"ID 110101199003071233"},{"type":"image_url","image_url":{"url":"data:image/png;base64,13812345678"}}]}],"user":"13812345678"}`,
			`{"model":"gpt-4o",  "messages":[{"role":"user","content":"call ⟦PHONE_1⟧ or ⟦PHONE_1⟧, mail ⟦REDACTED_EMAIL⟧"},` +
				`{"role":"assistant","tool_calls":[{"id":"call_13812345678","type":"function","function":{"name":"dial","arguments":"{\"to\":\"⟦PHONE_1⟧\"}"}}]},` +
				`{"role":"user","content":[{"type":"text","text":"ID ⟦ID_1⟧"},{"type":"image_url","image_url":{"url":"data:image/png;base64,13812345678"}}]}],"user":"13812345678"}`},
		{"openai", "/v1/responses",
			`{"model":"gpt-4o","instructions":"owner 13912345678","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"13812345678"}]},{"type":"function_call_output","call_id":"c1","output":"card 6222021234567894"}]}`,
			`{"model":"gpt-4o","instructions":"owner ⟦PHONE_1⟧","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"⟦PHONE_2⟧"}]},{"type":"function_call_output","call_id":"c1","output":"card ⟦CARD_1⟧"}]}`},
		{"anthropic", "/v1/messages",
			`{"model":"claude","system":"user phone 13812345678","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_13812345678","content":"found 13812345678"},` +
				`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"13812345678"}}]},` +
				`{"role":"assistant","content":[{"type":"thinking","thinking":"13812345678","signature":"13812345678"},{"type":"tool_use","id":"t1","name":"n","input":{"q":"192.168.1.10"}}]}]}`,
			`{"model":"claude","system":"user phone ⟦PHONE_1⟧","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_13812345678","content":"found ⟦PHONE_1⟧"},` +
				`{"type":"image","source":{"type":"base64","media_type":"image/png","data":"13812345678"}}]},` +
				`{"role":"assistant","content":[{"type":"thinking","thinking":"⟦PHONE_1⟧","signature":"13812345678"},{"type":"tool_use","id":"t1","name":"n","input":{"q":"⟦IP_1⟧"}}]}]}`},
		{"gemini", "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
			`{"systemInstruction":{"parts":[{"text":"E12345678"}]},"contents":[{"role":"user","parts":[{"text":"\u0031\u0033812345678 \u003c"},{"inlineData":{"mimeType":"image/png","data":"13812345678"}}]},` +
				`{"role":"model","parts":[{"functionCall":{"name":"f","args":{"n":"13812345678"}},"thoughtSignature":"13812345678"}]}]}`,
			`{"systemInstruction":{"parts":[{"text":"⟦PASSPORT_1⟧"}]},"contents":[{"role":"user","parts":[{"text":"⟦PHONE_1⟧ <"},{"inlineData":{"mimeType":"image/png","data":"13812345678"}}]},` +
				`{"role":"model","parts":[{"functionCall":{"name":"f","args":{"n":"⟦PHONE_1⟧"}},"thoughtSignature":"13812345678"}]}]}`},
	} {
		o, err := p.Inspect(llmapi.Family(tc.family), tc.path, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.family, err)
		}
		if string(o.Body) != tc.want {
			t.Errorf("%s %s:\n got %s\nwant %s", tc.family, tc.path, o.Body, tc.want)
		}
		if !json.Valid(o.Body) {
			t.Errorf("%s: invalid JSON out", tc.family)
		}
		if o.Vault == nil || o.Vault.Restore(string(o.Body)) == string(o.Body) {
			t.Errorf("%s: nothing to restore", tc.family)
		}
	}
}

func TestInspectBlockHomeAndCounts(t *testing.T) {
	wf := wordsFile(t, "机密\tsecret\nproject x\n")
	p := compile(t, &Config{Detectors: []string{"cn_mobile", "email"}, Custom: []CustomPattern{{Name: "employee_id", Pattern: `EMP-\d{6}`}},
		Words: WordsFile{File: wf}, Actions: map[string]Action{"employee_id": KeepHome, "email": Flag}})
	chat := func(s string) []byte {
		b, _ := json.Marshal(map[string]any{"model": "m", "messages": []any{map[string]any{"role": "user", "content": s}}})
		return b
	}
	o, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", chat("这是机 密，Project-X, call 13812345678"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.Blocked, ",") != "secret,words" || o.Vault != nil {
		t.Fatalf("blocked %v vault %v", o.Blocked, o.Vault)
	}
	o, _ = p.Inspect(llmapi.OpenAI, "/v1/chat/completions", chat("EMP-123456 wrote a@example.com twice a@example.com; 13812345678"))
	if !o.Home || len(o.Blocked) != 0 || string(o.Body) != string(chat("EMP-123456 wrote a@example.com twice a@example.com; 13812345678")) {
		t.Fatalf("home %v blocked %v body %s", o.Home, o.Blocked, o.Body)
	}
	want := []Count{{"cn_mobile", Mask, 1}, {"email", Flag, 2}, {"employee_id", KeepHome, 1}}
	if len(o.Counts) != len(want) {
		t.Fatalf("counts %v; want %v", o.Counts, want)
	}
	for i := range want {
		if o.Counts[i] != want[i] {
			t.Fatalf("counts %v; want %v", o.Counts, want)
		}
	}
	if _, err := p.Inspect(llmapi.OpenAI, "/v1/files", []byte("--boundary")); err != ErrUninspectable {
		t.Fatalf("files upload: %v", err)
	}
	if _, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", []byte(`{"messages":`)); err != ErrUninspectable {
		t.Fatalf("broken JSON: %v", err)
	}
	if o, err := p.Inspect(llmapi.OpenAI, "/v1/models", nil); err != nil || o.Body != nil {
		t.Fatalf("no body: %v", err)
	}
}

func TestCompileRefuses(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Custom: []CustomPattern{{Name: "emp", Pattern: `EMP-(\d{6}`}}}, "missing closing )"},
		{Config{Detectors: []string{"phone"}}, `unknown detector "phone"`},
		{Config{Detectors: []string{"email"}, Actions: map[string]Action{"email": "hide"}}, `unknown action "hide"`},
		{Config{Detectors: []string{"email"}, Actions: map[string]Action{"cn_mobile": Mask}}, "actions.cn_mobile: no detector"},
		{Config{Words: WordsFile{File: "/nonexistent/words.txt"}}, "words.file"},
		{Config{Detectors: []string{"email"}, OutputWords: "flag"}, "needs words.file"},
		{Config{Detectors: []string{"email"}, OutputWords: "drop"}, "want flag, mask or cut"},
	} {
		_, err := Compile(&tc.c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%+v) = %v; want an error containing %q", tc.c, err, tc.want)
		}
	}
	if p, err := Compile(&Config{}); p != nil || err != nil {
		t.Fatalf("empty config: %v %v", p, err)
	}
}

func testVault() *Vault {
	v := &Vault{}
	v.mask("cn_mobile", "13812345678")
	v.mask("email", "li@example.cn")
	return v
}

func TestWholeRestore(t *testing.T) {
	a := (&Policy{}).Answer(&Outcome{Vault: testVault()})
	body := `{"id":"x","choices":[{"message":{"content":"Call ⟦PHONE_1⟧ or \u27e6EMAIL_1\u27e7; ⟦PHONE_9⟧ stays","tool_calls":[{"function":{"arguments":"{\"to\":\"⟦PHONE_1⟧\"}"}}]}}]}`
	got := string(a.Whole([]byte(body)))
	want := `{"id":"x","choices":[{"message":{"content":"Call 13812345678 or li@example.cn; ⟦PHONE_9⟧ stays","tool_calls":[{"function":{"arguments":"{\"to\":\"13812345678\"}"}}]}}]}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// sse makes an OpenAI chunk stream of the pieces, then a finish chunk and
// [DONE].
func openAIStream(pieces []string) []byte {
	var b []byte
	for _, p := range pieces {
		d, _ := json.Marshal(p)
		b = append(b, `data: {"id":"c","choices":[{"index":0,"delta":{"content":`...)
		b = append(append(b, d...), "},\"finish_reason\":null}]}\n\n"...)
	}
	return append(b, "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"...)
}

func anthropicStream(pieces []string) []byte {
	b := []byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\"}}\n\n" +
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	for k, p := range pieces {
		d, _ := json.Marshal(p)
		b = append(b, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"...)
		b = append(append(b, d...), "}}\n\n"...)
		if k == 0 {
			b = append(b, "event: ping\ndata: {\"type\": \"ping\"}\n\n"...)
		}
	}
	return append(b, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
}

// streamedText collects the text of every event of a stream.
func streamedText(t testing.TB, stream []byte) string {
	var out strings.Builder
	for _, ev := range strings.Split(string(stream), "\n\n") {
		for _, line := range strings.Split(ev, "\n") {
			data, ok := strings.CutPrefix(line, "data: ")
			if !ok || data == "[DONE]" {
				continue
			}
			var v struct {
				Choices []struct{ Delta struct{ Content string } }
				Delta   struct{ Text string }
			}
			if err := json.Unmarshal([]byte(data), &v); err != nil {
				t.Fatalf("bad event %q: %v", data, err)
			}
			for _, c := range v.Choices {
				out.WriteString(c.Delta.Content)
			}
			out.WriteString(v.Delta.Text)
		}
	}
	return out.String()
}

// checkStream feeds stream to a restorer in two writes cut at cut and
// checks the text the client gets, and that no event is delayed beyond
// the holdback: every event in is an event out.
func checkStream(t testing.TB, stream []byte, cut int, want string) {
	a := (&Policy{}).Answer(&Outcome{Vault: testVault()})
	s := a.NewStream()
	first := s.Feed(stream[:cut])
	// No event waits: every event complete in the first write is out
	// after it (held text travels in copies of events, never by delay).
	if in, got := strings.Count(string(stream[:cut]), "\n\n"), strings.Count(string(first), "\n\n"); got < in {
		t.Fatalf("cut at %d: %d events in, %d out", cut, in, got)
	}
	out := append(first, s.Feed(stream[cut:])...)
	out = append(out, s.Close()...)
	if got := streamedText(t, out); got != want {
		t.Fatalf("cut at %d: got %q; want %q\n%s", cut, got, want, out)
	}
	if strings.Contains(string(out), "⟦PHONE_1⟧") || strings.Contains(string(out), "⟦EMAIL_1⟧") {
		t.Fatalf("a placeholder reached the client: %s", out)
	}
}

// TestStreamRestoreEverySplit splits the text at every pair of rune
// boundaries into three events, and the byte stream at every point into
// two writes.
func TestStreamRestoreEverySplit(t *testing.T) {
	text := "Hi ⟦PHONE_1⟧, ⟦EMAIL_1⟧⟦PHONE_1⟧ ⟦X⟧"
	want := "Hi 13812345678, li@example.cn13812345678 ⟦X⟧"
	var bounds []int
	for i := range text {
		bounds = append(bounds, i)
	}
	bounds = append(bounds, len(text))
	for _, mk := range []func([]string) []byte{openAIStream, anthropicStream} {
		for _, i := range bounds {
			for _, j := range bounds {
				if j < i {
					continue
				}
				stream := mk([]string{text[:i], text[i:j], text[j:]})
				checkStream(t, stream, (i*7+j)%len(stream), want)
			}
		}
		stream := mk([]string{text[:len("Hi ⟦P")], text[len("Hi ⟦P"):]})
		for cut := range stream {
			checkStream(t, stream, cut, want)
		}
	}
}

func FuzzStreamRestore(f *testing.F) {
	f.Add("Hi ⟦PHONE_1⟧ there", 4, 9, 20)
	f.Add("⟦⟦EMAIL_1⟧⟧", 1, 3, 7)
	f.Fuzz(func(t *testing.T, text string, i, j, cut int) {
		if !utf8.ValidString(text) || strings.ContainsAny(text, "\r") {
			return
		}
		n := len(text)
		i, j = clampRune(text, i), clampRune(text, j)
		if j < i {
			i, j = j, i
		}
		want := testVault().Restore(text)
		stream := openAIStream([]string{text[:i], text[i:j], text[j:]})
		if cut < 0 {
			cut = -cut
		}
		_ = n
		checkStreamLoose(t, stream, cut%(len(stream)+1), want)
	})
}

// checkStreamLoose is checkStream without the no-placeholder rule (fuzzed
// text may spell placeholders of its own around ours).
func checkStreamLoose(t *testing.T, stream []byte, cut int, want string) {
	a := (&Policy{}).Answer(&Outcome{Vault: testVault()})
	s := a.NewStream()
	out := append(s.Feed(stream[:cut]), s.Feed(stream[cut:])...)
	out = append(out, s.Close()...)
	if got := streamedText(t, out); got != want {
		t.Fatalf("got %q; want %q\n%s", got, want, out)
	}
}

func clampRune(s string, i int) int {
	if i < 0 {
		i = -i
	}
	i %= len(s) + 1
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return i
}

// TestAppendStringMatchesDecoder: what appendString writes decodes back
// to the same string, for awkward input too.
func TestAppendStringMatchesDecoder(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s\n\r\t\x01\x1f", "中文⟦PHONE_1⟧", "line\u2028sep\u2029", "bad\xffutf8\xe2\x80", "<&>"} {
		var got string
		if err := json.Unmarshal(appendString(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		var want string // as encoding/json writes it: one U+FFFD per bad byte
		b, _ := json.Marshal(s)
		_ = json.Unmarshal(b, &want)
		if got != want {
			t.Errorf("appendString(%q) decodes to %q", s, got)
		}
	}
}

// TestOutputWords: answers are scanned for the word list; flag counts,
// mask hides the word, cut ends the answer.
func TestOutputWords(t *testing.T) {
	wf := wordsFile(t, "绝密\tsecret\n")
	body := []byte(`{"choices":[{"message":{"content":"这是绝密文件"}}]}`)
	for _, tc := range []struct {
		mode, want string
		cut        bool
	}{
		{OutputFlag, `{"choices":[{"message":{"content":"这是绝密文件"}}]}`, false},
		{OutputMask, `{"choices":[{"message":{"content":"这是＊＊文件"}}]}`, false},
		{OutputCut, `{"choices":[{"message":{"content":"这是"}}]}`, true},
	} {
		p := compile(t, &Config{Words: WordsFile{File: wf}, Actions: map[string]Action{"secret": Flag}, OutputWords: tc.mode})
		a := p.Answer(&Outcome{})
		if got := string(a.Whole(body)); got != tc.want || a.Cut != tc.cut || a.OutputCounts["secret"] != 1 {
			t.Errorf("%s: got %s cut %v counts %v", tc.mode, got, a.Cut, a.OutputCounts)
		}
		a = p.Answer(&Outcome{})
		s := a.NewStream()
		out := append(s.Feed(openAIStream([]string{"这是绝", "密文件"})), s.Close()...)
		got, wantText := streamedText(t, out), "这是绝密文件"
		if tc.mode == OutputMask {
			wantText = "这是＊＊文件"
		}
		if tc.cut {
			wantText = "这是"
		}
		if got != wantText || a.Cut != tc.cut || a.OutputCounts["secret"] != 1 {
			t.Errorf("%s streamed: got %q cut %v counts %v", tc.mode, got, a.Cut, a.OutputCounts)
		}
	}
}

// TestStreamRestoreResponsesAndGemini: Responses API delta events and
// Gemini chunks (whose last one carries finishReason, so nothing may be
// held in it) are restored across events too.
func TestStreamRestoreResponsesAndGemini(t *testing.T) {
	a := (&Policy{}).Answer(&Outcome{Vault: testVault()})
	s := a.NewStream()
	in := "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"call ⟦PHO\"}\n\n" +
		"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"NE_1⟧ now\"}\n\n"
	out := string(append(s.Feed([]byte(in)), s.Close()...))
	if !strings.Contains(out, `"delta":"call "`) || !strings.Contains(out, `"delta":"13812345678 now"`) {
		t.Fatalf("responses stream:\n%s", out)
	}
	s = a.NewStream()
	in = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"mail ⟦EMA\"}]}}]}\r\n\r\n" +
		"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"IL_1⟧ ⟦PH\"}]},\"finishReason\":\"STOP\"}]}\r\n\r\n"
	out = string(append(s.Feed([]byte(in)), s.Close()...))
	if !strings.Contains(out, `"text":"mail "`) || !strings.Contains(out, `"text":"li@example.cn ⟦PH"`) {
		t.Fatalf("gemini stream:\n%s", out)
	}
}

// TestStreamRestoreToolArguments: Anthropic's input_json_delta fragments of
// two tool_use blocks (their own channels by block index) get their
// placeholders back even when a placeholder is split between fragments.
func TestStreamRestoreToolArguments(t *testing.T) {
	a := (&Policy{}).Answer(&Outcome{Vault: testVault()})
	s := a.NewStream()
	delta := func(index int, frag string) string {
		return fmt.Sprintf("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":%s}}\n\n",
			index, jsonQuote(frag))
	}
	in := delta(1, `{"to":"⟦PH`) + delta(2, `{"mail":"⟦EM`) + delta(1, `ONE_1⟧"}`) + delta(2, `AIL_1⟧"}`) +
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
	out := string(append(s.Feed([]byte(in)), s.Close()...))
	args := map[int]string{}
	for _, ev := range strings.Split(out, "\n\n") {
		_, data, ok := strings.Cut(ev, "data: ")
		if !ok {
			continue
		}
		var v struct {
			Index int
			Delta struct {
				PartialJSON string `json:"partial_json"`
			}
		}
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatal(err)
		}
		args[v.Index] += v.Delta.PartialJSON
	}
	if args[1] != `{"to":"13812345678"}` || args[2] != `{"mail":"li@example.cn"}` {
		t.Fatalf("arguments %v\n%s", args, out)
	}
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestVaultMany: past the size where the vault indexes its tokens, every
// value keeps its one placeholder and comes back.
func TestVaultMany(t *testing.T) {
	v := &Vault{}
	var text strings.Builder
	for i := range 100 {
		p := v.mask("cn_mobile", fmt.Sprintf("138%08d", i))
		if again := v.mask("cn_mobile", fmt.Sprintf("138%08d", i)); again != p {
			t.Fatalf("value %d: %s then %s", i, p, again)
		}
		text.WriteString(p + " ")
	}
	if v.mask("email", "a@b.cn") != "⟦EMAIL_1⟧" {
		t.Fatal("labels count apart")
	}
	got := v.Restore(text.String())
	if !strings.HasPrefix(got, "13800000000 13800000001 ") || !strings.HasSuffix(got, "13800000099 ") {
		t.Fatalf("restored %q", got[:60])
	}
}

// TestVaultManyValuesInLinearTime: one request may hold a million distinct
// numbers (32 MiB of them), each masked; finding a value's placeholder
// must not search every value before it, which costs the square of their
// number: 100 000 values took minutes of CPU, for one request of 1.3 MB.
func TestVaultManyValuesInLinearTime(t *testing.T) {
	const n = 100_000
	v := &Vault{}
	start := time.Now()
	for i := range n {
		v.mask("cn_mobile", fmt.Sprintf("138%08d", i))
		if d := time.Since(start); i%1000 == 0 && d > 10*time.Second {
			t.Fatalf("masking %d values took %v", i, d)
		}
	}
	if p := v.mask("cn_mobile", "13800000007"); p != "⟦PHONE_8⟧" {
		t.Fatalf("a value masked again: %s", p)
	}
	if p := v.mask("cn_mobile", "13900000000"); p != fmt.Sprintf("⟦PHONE_%d⟧", n+1) {
		t.Fatalf("a new value: %s", p)
	}
}

// TestStreamOutputWordsKeepsOtherFields: with output_words on, a streamed
// answer's text is held back across events so that a word cut between two
// is seen whole, but nothing else is: event types, ids, roles and finish
// reasons reach the client as they came, and only the one text channel's
// held tail travels in a copy of an event.
func TestStreamOutputWordsKeepsOtherFields(t *testing.T) {
	wf := wordsFile(t, "绝密\tsecret\nproject x\n")
	p := compile(t, &Config{Words: WordsFile{File: wf}, Actions: map[string]Action{"secret": Flag}, OutputWords: OutputFlag})
	for name, stream := range map[string][]byte{
		"openai":    openAIStream([]string{"hello", " world", " again"}),
		"anthropic": anthropicStream([]string{"hello", " world", " again"}),
	} {
		s := p.Answer(&Outcome{}).NewStream()
		out := append(s.Feed(stream), s.Close()...)
		if got := streamedText(t, out); got != "hello world again" {
			t.Errorf("%s: text %q", name, got)
		}
		in, got := strings.Split(string(stream), "\n\n"), strings.Split(string(out), "\n\n")
		if len(got) > len(in)+1 {
			t.Errorf("%s: %d events in, %d out:\n%s", name, len(in), len(got), out)
		}
		sent := map[string]bool{}
		for _, ev := range in {
			sent[textless(ev)] = true
		}
		for _, ev := range got {
			if !sent[textless(ev)] {
				t.Errorf("%s: an event not sent by upstream reached the client: %s", name, ev)
			}
		}
	}
}

// textless is an event with the text strings of its data emptied.
func textless(ev string) string {
	head, data, ok := strings.Cut(ev, "data: ")
	if !ok || !strings.HasPrefix(data, "{") {
		return ev
	}
	return head + string(blankOthers([]byte(data), -1))
}

// TestWholeRestoreGeminiArrayStream: Gemini's streamGenerateContent
// without alt=sse is one JSON array of chunks, held whole; a placeholder
// cut between two chunks' texts is restored like one cut between two SSE
// events, and other strings stay as they came.
func TestWholeRestoreGeminiArrayStream(t *testing.T) {
	chunk := func(text, end string) string {
		return `{"candidates":[{"content":{"parts":[{"text":` + jsonQuote(text) + `}],"role":"model"}` + end + `,"index":0}],"modelVersion":"gemini-2.0-flash"}`
	}
	for _, tc := range []struct{ pieces []string }{
		{[]string{"call ⟦PHO", "NE_1⟧ now"}},
		{[]string{"call ⟦", "PHONE_1", "⟧ or ⟦EMAIL_1⟧"}},
		{[]string{"⟦PHONE_1⟧", " done"}},
	} {
		var body []string
		for i, p := range tc.pieces {
			end := ""
			if i == len(tc.pieces)-1 {
				end = `,"finishReason":"STOP"`
			}
			body = append(body, chunk(p, end))
		}
		a := (&Policy{}).Answer(&Outcome{Vault: testVault()})
		out := a.Whole([]byte("[" + strings.Join(body, ",\r\n") + "]"))
		var chunks []struct {
			Candidates []struct {
				Content struct {
					Parts []struct{ Text string }
					Role  string
				}
				FinishReason string
			}
			ModelVersion string
		}
		if err := json.Unmarshal(out, &chunks); err != nil || len(chunks) != len(tc.pieces) {
			t.Fatalf("%v: %v\n%s", tc.pieces, err, out)
		}
		var text strings.Builder
		for _, c := range chunks {
			text.WriteString(c.Candidates[0].Content.Parts[0].Text)
			if c.Candidates[0].Content.Role != "model" || c.ModelVersion != "gemini-2.0-flash" {
				t.Errorf("%v: fields changed: %s", tc.pieces, out)
			}
		}
		if want := testVault().Restore(strings.Join(tc.pieces, "")); text.String() != want {
			t.Errorf("%v: got %q; want %q\n%s", tc.pieces, text.String(), want, out)
		}
	}
	// A word cut between two chunks is seen whole too.
	p := compile(t, &Config{Words: WordsFile{File: wordsFile(t, "绝密\tsecret\n")}, Actions: map[string]Action{"secret": Flag}, OutputWords: OutputMask})
	a := p.Answer(&Outcome{})
	out := string(a.Whole([]byte("[" + chunk("这是绝", "") + "," + chunk("密文件", `,"finishReason":"STOP"`) + "]")))
	if a.OutputCounts["secret"] != 1 || strings.Contains(out, "绝") || strings.Contains(out, "密") {
		t.Errorf("word across chunks: counts %v\n%s", a.OutputCounts, out)
	}
}

// TestRestoreKeys: a model may name an object's member by a masked value
// (a tool call's input or a function call's arguments as an object, keyed
// by a phone number or an address); the key is restored like a value, in
// a whole answer, a JSON array of chunks and a streamed one.
func TestRestoreKeys(t *testing.T) {
	a := (&Policy{}).Answer(&Outcome{Vault: testVault()})
	body := `{"content":[{"type":"tool_use","id":"t1","name":"n","input":{"⟦PHONE_1⟧":{"\u27e6EMAIL_1\u27e7":"⟦PHONE_1⟧"},"⟦PHONE_9⟧":1}}]}`
	want := `{"content":[{"type":"tool_use","id":"t1","name":"n","input":{"13812345678":{"li@example.cn":"13812345678"},"⟦PHONE_9⟧":1}}]}`
	if got := string(a.Whole([]byte(body))); got != want {
		t.Errorf("whole:\n got %s\nwant %s", got, want)
	}
	gemini := `{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"⟦PHONE_1⟧":"x"}}}]}}]}`
	wantGemini := `{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"13812345678":"x"}}}]}}]}`
	if got := string(a.Whole([]byte("[" + gemini + "]"))); got != "["+wantGemini+"]" {
		t.Errorf("array of chunks: %s", got)
	}
	s := a.NewStream()
	if got := string(append(s.Feed([]byte("data: "+gemini+"\n\n")), s.Close()...)); got != "data: "+wantGemini+"\n\n" {
		t.Errorf("streamed: %s", got)
	}
}
