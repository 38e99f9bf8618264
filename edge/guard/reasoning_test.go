package guard

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strait/strait/proto/llmapi"
)

// TestReasoningRoundTrip: a model's reasoning comes back in the client's
// next request (Anthropic's signed thinking must, in a tool loop). The
// answer leaves the placeholders in Anthropic's thinking, whole and
// streamed, so the block goes back unchanged and valid; and reasoning a
// client sends holding a value (Anthropic thinking, a Responses reasoning
// summary, a Chat assistant's reasoning_content) is read like any text,
// so a restored value does not cross unread in the next turn.
func TestReasoningRoundTrip(t *testing.T) {
	a := (&Policy{}).Answer(&Outcome{Vault: testVault()})
	whole := `{"content":[{"type":"thinking","thinking":"the user is ⟦PHONE_1⟧","signature":"sig"},{"type":"text","text":"call ⟦PHONE_1⟧"}]}`
	if got := string(a.Whole([]byte(whole))); got != `{"content":[{"type":"thinking","thinking":"the user is ⟦PHONE_1⟧","signature":"sig"},{"type":"text","text":"call 13812345678"}]}` {
		t.Errorf("whole: %s", got)
	}
	s := a.NewStream()
	ev := func(kind, key, frag string) string {
		return "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"" + kind + "\",\"" + key + "\":" + jsonQuote(frag) + "}}\n\n"
	}
	out := string(append(s.Feed([]byte(ev("thinking_delta", "thinking", "user ⟦PHO")+ev("thinking_delta", "thinking", "NE_1⟧ asks")+
		"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")), s.Close()...))
	if strings.Contains(out, "13812345678") || !strings.Contains(out, "⟦PHO") {
		t.Errorf("streamed thinking restored:\n%s", out)
	}

	p := compile(t, &Config{Detectors: []string{"cn_mobile"}})
	const phone = "13812345678"
	for _, tc := range []struct {
		family     llmapi.Family
		path, body string
	}{
		{llmapi.Anthropic, "/v1/messages", `{"messages":[{"role":"assistant","content":[{"type":"thinking","thinking":"the user is ` + phone + `","signature":"sig"}]}]}`},
		{llmapi.OpenAI, "/v1/responses", `{"input":[{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"the user is ` + phone + `"}]}]}`},
		{llmapi.OpenAI, "/v1/chat/completions", `{"messages":[{"role":"assistant","content":"ok","reasoning_content":"the user is ` + phone + `"}]}`},
	} {
		o, err := p.Inspect(tc.family, tc.path, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		if strings.Contains(string(o.Body), phone) {
			t.Errorf("sent %s", o.Body)
		}
		o.Release()
	}
}

// TestOutputWordsLeaveSignedThinking: output_words: mask masks a word in
// the answer's text but not in an Anthropic model's signed thinking (nor
// its signature, nor a redacted block's data), whole and streamed: the
// client sends the block back as it got it, and a changed one fails its
// signature. The word there is counted, as flag would.
func TestOutputWordsLeaveSignedThinking(t *testing.T) {
	p := compile(t, &Config{Words: WordsFile{File: wordsFile(t, "绝密\tsecret\nabc\tsecret\n")}, Actions: map[string]Action{"secret": Flag},
		OutputWords: OutputMask})
	a := p.Answer(&Outcome{})
	whole := `{"content":[{"type":"thinking","thinking":"这是绝密文件","signature":"x/abc+y"},{"type":"redacted_thinking","data":"x/abc+y"},` +
		`{"type":"text","text":"这是绝密文件"}]}`
	want := `{"content":[{"type":"thinking","thinking":"这是绝密文件","signature":"x/abc+y"},{"type":"redacted_thinking","data":"x/abc+y"},` +
		`{"type":"text","text":"这是＊＊文件"}]}`
	if got := string(a.Whole([]byte(whole))); got != want || a.OutputCounts["secret"] != 4 {
		t.Errorf("whole: %s, counts %v", got, a.OutputCounts)
	}
	a = p.Answer(&Outcome{})
	s := a.NewStream()
	ev := func(kind, key, frag string) string {
		return "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"" + kind + "\",\"" + key + "\":" + jsonQuote(frag) + "}}\n\n"
	}
	out := string(append(s.Feed([]byte(ev("thinking_delta", "thinking", "这是绝")+ev("thinking_delta", "thinking", "密文件")+
		ev("signature_delta", "signature", "x/abc+y")+"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")), s.Close()...))
	var thinking, signature strings.Builder
	for _, line := range strings.Split(out, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var e struct {
			Delta struct{ Thinking, Signature string }
		}
		if err := json.Unmarshal([]byte(data), &e); err != nil {
			t.Fatal(err)
		}
		thinking.WriteString(e.Delta.Thinking)
		signature.WriteString(e.Delta.Signature)
	}
	if thinking.String() != "这是绝密文件" || signature.String() != "x/abc+y" || a.OutputCounts["secret"] != 2 {
		t.Errorf("streamed thinking %q, signature %q, counts %v:\n%s", thinking.String(), signature.String(), a.OutputCounts, out)
	}
}
