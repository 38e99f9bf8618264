package convert

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOneChoice: only n's value changes; the rest of the body, member
// order and stream_options included, stays the client's.
func TestOneChoice(t *testing.T) {
	in := `{"model":"claude-x", "n" : 4,"stream":true,"stream_options":{"include_usage":true},"messages":[]}`
	out, err := OneChoice([]byte(in))
	if want := strings.Replace(in, "4", "1", 1); err != nil || string(out) != want {
		t.Fatalf("got %s %v, want %s", out, err, want)
	}
	if ChatChoices([]byte(in)) != 4 || ChatChoices(out) != 1 || ChatChoices([]byte(`{"n":0}`)) != 1 || ChatChoices([]byte(`nope`)) != 1 {
		t.Fatal("ChatChoices")
	}
	if _, err := OneChoice([]byte(`{"model":"m"}`)); err == nil {
		t.Fatal("a body without n")
	}
}

// TestMergeChatResponses: choice i is body i's, at index i; the first
// body's envelope stays; usage is summed, cached and cache-write tokens
// included.
func TestMergeChatResponses(t *testing.T) {
	body := func(id, text string, prompt, cached int) []byte {
		return mustJSON(obj{"id": id, "object": "chat.completion", "model": "claude-x",
			"choices": []any{obj{"index": 0, "message": obj{"role": "assistant", "content": text}, "finish_reason": "stop"}},
			"usage": obj{"prompt_tokens": prompt, "completion_tokens": 2, "total_tokens": prompt + 2,
				"prompt_tokens_details": obj{"cached_tokens": cached}}})
	}
	out, err := MergeChatResponses([][]byte{body("a", "x", 10, 4), body("b", "y", 10, 0), body("c", "z", 10, 0)})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID      string `json:"id"`
		Choices []struct {
			Index   int `json:"index"`
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
			Details          struct {
				Cached int `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "a" || len(got.Choices) != 3 || got.Choices[2].Index != 2 || got.Choices[2].Message.Content != "z" {
		t.Fatalf("merged: %s", out)
	}
	if u := got.Usage; u.PromptTokens != 30 || u.CompletionTokens != 6 || u.TotalTokens != 36 || u.Details.Cached != 4 {
		t.Fatalf("usage: %s", out)
	}
	if _, err := MergeChatResponses([][]byte{[]byte("{")}); err == nil {
		t.Fatal("a broken body merged")
	}
}

// TestChatStreamMerge: each call's chunks get its index and the first
// chunk's id; [DONE] and usage chunks are held back (a usage on a chunk
// with choices is taken and nulled); keep-alives and error events pass as
// they are; End sends one summed usage chunk when asked, then [DONE].
func TestChatStreamMerge(t *testing.T) {
	chunk := func(id, text string, usage any) string {
		return "data: " + string(mustJSON(obj{"id": id, "object": "chat.completion.chunk", "created": 7, "model": "m",
			"choices": []any{obj{"index": 0, "delta": obj{"content": text}, "finish_reason": nil}}, "usage": usage})) + "\n\n"
	}
	usage := obj{"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
	m := NewChatStreamMerge([]byte(`{"stream":true,"stream_options":{"include_usage":true}}`))
	for _, tc := range []struct {
		i        int
		in, want string
		failed   bool
	}{
		{0, chunk("first", "a", nil), chunk("first", "a", nil), false},
		{1, chunk("second", "b", nil), strings.Replace(chunk("first", "b", nil), `"index":0`, `"index":1`, 1), false},
		{1, ": keep-alive\n\n", ": keep-alive\n\n", false},
		{1, chunk("second", "c", usage), strings.Replace(chunk("first", "c", nil), `"index":0`, `"index":1`, 1), false},
		{0, `data: {"id":"first","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}` + "\n\n", "", false},
		{0, "data: [DONE]\n\n", "", false},
		{2, `data: {"error":{"message":"overloaded"}}` + "\n\n", `data: {"error":{"message":"overloaded"}}` + "\n\n", true},
	} {
		out, failed, err := m.Event(tc.i, []byte(tc.in))
		if err != nil || failed != tc.failed || !sameChunk(t, string(out), tc.want) {
			t.Fatalf("%q: got %q %v %v, want %q", tc.in, out, failed, err, tc.want)
		}
	}
	end := string(m.End())
	if !strings.Contains(end, `"choices":[]`) || !strings.Contains(end, `"prompt_tokens":10`) ||
		!strings.Contains(end, `"id":"first"`) || !strings.HasSuffix(end, "data: [DONE]\n\n") {
		t.Fatalf("end: %s", end)
	}
	if end := string(NewChatStreamMerge([]byte(`{"stream":true}`)).End()); end != "data: [DONE]\n\n" {
		t.Fatalf("end without include_usage: %q", end)
	}
}

// sameChunk compares two SSE events, JSON data as values (a rewritten
// choice's members may come in another order).
func sameChunk(t *testing.T, got, want string) bool {
	t.Helper()
	g, gok := strings.CutPrefix(got, "data: {")
	w, wok := strings.CutPrefix(want, "data: {")
	if !gok || !wok {
		return got == want
	}
	var a, b any
	if json.Unmarshal([]byte("{"+g), &a) != nil || json.Unmarshal([]byte("{"+w), &b) != nil {
		return false
	}
	return string(mustJSON(a)) == string(mustJSON(b))
}
