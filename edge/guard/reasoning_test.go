package guard

import (
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
