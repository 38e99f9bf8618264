package guard

import (
	"encoding/json"
	"strings"
	"testing"
)

// choiceTexts collects a Chat stream's text per choice index.
func choiceTexts(t *testing.T, stream []byte) map[int]string {
	t.Helper()
	texts := map[int]string{}
	for _, ev := range strings.Split(string(stream), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var v struct {
			Choices []struct {
				Index int
				Delta struct{ Content string }
			}
		}
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatalf("bad event %q: %v", data, err)
		}
		for _, c := range v.Choices {
			texts[c.Index] += c.Delta.Content
		}
	}
	return texts
}

// TestStreamRestoreSeveralChoices: a Chat stream with n > 1 carries its
// choices' pieces interleaved, one choice's finish reason while another
// still writes, and may name a choice's index after its delta. A
// placeholder held back in one choice is restored in that choice: another
// choice's end neither lets it out unrestored nor ends its text, and no
// choice's text continues another's.
func TestStreamRestoreSeveralChoices(t *testing.T) {
	const stop = `,"finish_reason":"stop"`
	chunk := func(choices ...string) string {
		return `data: {"id":"c","choices":[` + strings.Join(choices, ",") + "]}\n\n"
	}
	choice := func(i, text, end string) string {
		if end == "" {
			end = `,"finish_reason":null`
		}
		return `{"index":` + i + `,"delta":{"content":` + jsonQuote(text) + `}` + end + `}`
	}
	indexLast := func(i, text, end string) string {
		return `{"delta":{"content":` + jsonQuote(text) + `}` + end + `,"index":` + i + `}`
	}
	for name, stream := range map[string]string{
		"other choice ends in its own event": chunk(choice("0", "Call ⟦PHO", "")) + chunk(choice("1", "fine", stop)) +
			chunk(choice("0", "NE_1⟧ now", "")) + chunk(choice("0", "", stop)),
		"other choice ends in the same event": chunk(choice("0", "Call ⟦PHO", ""), choice("1", "fine", stop)) +
			chunk(choice("0", "NE_1⟧ now", stop)),
		"index after the delta": chunk(indexLast("0", "Call ⟦PHO", "")) + chunk(indexLast("1", "fine", "")) +
			chunk(indexLast("0", "NE_1⟧ now", "")) + chunk(indexLast("1", "", stop)) + chunk(indexLast("0", "", stop)),
	} {
		stream += "data: [DONE]\n\n"
		for cut := 0; cut <= len(stream); cut += 7 {
			s := (&Policy{}).Answer(&Outcome{Vault: testVault()}).NewStream()
			out := append(s.Feed([]byte(stream[:cut])), s.Feed([]byte(stream[cut:]))...)
			out = append(out, s.Close()...)
			if got := choiceTexts(t, out); got[0] != "Call 13812345678 now" || got[1] != "fine" {
				t.Errorf("%s, cut at %d: choices %#v\n%s", name, cut, got, out)
				break
			}
		}
	}
}
