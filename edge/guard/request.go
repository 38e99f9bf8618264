package guard

import (
	"errors"
	"sort"
	"strings"

	"github.com/strait/strait/edge/guard/detect"
	"github.com/strait/strait/proto/llmapi"
)

// ErrUninspectable: the guard is on and the request has a body it cannot
// read as text (not JSON, or an endpoint whose text fields it does not
// know). Such requests are refused rather than let across unread.
var ErrUninspectable = errors.New("the border guard cannot inspect this request body")

// Outcome is the guard's decision on one request.
type Outcome struct {
	// Body is the request body to send: the client's own bytes with
	// masked and redacted values replaced in text strings (the same
	// slice when nothing changed).
	Body []byte
	// Vault holds the masked values, for the answer; nil when none.
	Vault *Vault
	// Blocked lists the categories that block the request, sorted.
	Blocked []string
	// Home: the request must go to a domestic relay, unchanged.
	Home bool
	// Counts are the finds per category and action, never their values.
	Counts []Count
}

// Count is how many finds of a category met an action.
type Count struct {
	Category string `json:"category"`
	Action   Action `json:"action"`
	N        int    `json:"n"`
}

// textFields are, per kind of endpoint, the paths of the string values
// that hold text (messages, prompts, tool results and tool-call
// arguments). "#" is any array element, "**" anything below. IDs, roles,
// model names, base64 images and thinking signatures are not among them.
var textFields = map[string][][]string{
	"chat": paths("messages.#.content", "messages.#.content.#.text", "messages.#.content.#.refusal", "messages.#.refusal",
		"messages.#.tool_calls.#.function.arguments", "messages.#.function_call.arguments"),
	"responses": paths("input", "instructions", "input.#.content", "input.#.content.#.text", "input.#.output",
		"input.#.output.#.text", "input.#.arguments"),
	"prompt": paths("prompt", "prompt.#", "suffix"),
	"input":  paths("input", "input.#", "input.#.text"),
	"messages": paths("system", "system.#.text", "messages.#.content", "messages.#.content.#.text",
		"messages.#.content.#.content", "messages.#.content.#.content.#.text", "messages.#.content.#.input.**"),
	"contents": paths("contents.#.parts.#.text", "systemInstruction.parts.#.text", "system_instruction.parts.#.text",
		"contents.#.parts.#.functionCall.args.**", "contents.#.parts.#.function_call.args.**",
		"contents.#.parts.#.functionResponse.response.**", "contents.#.parts.#.function_response.response.**",
		"content.parts.#.text"),
}

func paths(ps ...string) [][]string {
	out := make([][]string, len(ps))
	for i, p := range ps {
		out[i] = strings.Split(p, ".")
	}
	return out
}

// endpointKind is which request shape a family's path carries; "" for
// endpoints whose bodies the guard does not know. The generation dialects
// are llmapi's; the other text endpoints (legacy completions, embeddings,
// token counts) are named here.
func endpointKind(family llmapi.Family, path string) string {
	if d, ok := llmapi.ClientDialect(family, "POST", path); ok {
		return map[llmapi.Dialect]string{llmapi.ChatCompletions: "chat", llmapi.Responses: "responses",
			llmapi.Messages: "messages", llmapi.GenerateContent: "contents"}[d]
	}
	switch {
	case family == llmapi.OpenAI && strings.HasSuffix(path, "/completions"):
		return "prompt"
	case family == llmapi.OpenAI && (strings.HasSuffix(path, "/embeddings") || strings.HasSuffix(path, "/moderations")):
		return "input"
	case family == llmapi.Anthropic && strings.HasSuffix(path, "/messages/count_tokens"):
		return "messages"
	case family == llmapi.Anthropic && strings.HasSuffix(path, "/complete"):
		return "prompt"
	case family == llmapi.Gemini && (strings.HasSuffix(path, ":countTokens") || strings.HasSuffix(path, ":embedContent")):
		return "contents"
	}
	return ""
}

func matchPath(pattern []string, path [][]byte) bool {
	for k, p := range pattern {
		if p == "**" {
			return len(path) > k
		}
		if k >= len(path) || p != string(path[k]) {
			return false
		}
	}
	return len(pattern) == len(path)
}

func isText(fields [][]string, path [][]byte) bool {
	for _, f := range fields {
		if matchPath(f, path) {
			return true
		}
	}
	return false
}

// Inspect reads the text of a request body of family sent to path and
// decides. A nil Policy passes
// everything. A request without a body passes; a body the guard cannot
// read is ErrUninspectable.
func (p *Policy) Inspect(family llmapi.Family, path string, body []byte) (*Outcome, error) {
	o := &Outcome{Body: body}
	if p == nil || len(body) == 0 {
		return o, nil
	}
	fields := textFields[endpointKind(family, path)]
	if fields == nil {
		return nil, ErrUninspectable
	}
	counts := map[Count]int{}
	var edits []edit
	vault := &Vault{}
	var finds []detect.Match
	err := walk(body, func(w *walker, s span) error {
		if !isText(fields, w.path) {
			return nil
		}
		text, err := decodeString(body[s.start:s.end])
		if err != nil {
			return err
		}
		finds = p.find(finds[:0], text)
		if len(finds) == 0 {
			return nil
		}
		changed, out := false, make([]byte, 0, len(text)+len(finds)*maxPlaceholder)
		prev := 0
		for _, f := range finds {
			a := p.action(f.Category, f.Word)
			counts[Count{Category: f.Category, Action: a}]++
			switch a {
			case Mask:
				out = append(append(out, text[prev:f.Start]...), vault.mask(f.Category, text[f.Start:f.End])...)
			case Redact:
				out = append(append(out, text[prev:f.Start]...), redacted(f.Category)...)
			default:
				continue
			}
			changed, prev = true, f.End
		}
		if changed {
			edits = append(edits, edit{s, string(append(out, text[prev:]...))})
		}
		return nil
	})
	if err != nil {
		return nil, ErrUninspectable
	}
	for c, n := range counts {
		c.N = n
		o.Counts = append(o.Counts, c)
		switch c.Action {
		case Block:
			o.Blocked = append(o.Blocked, c.Category)
		case KeepHome:
			o.Home = true
		}
	}
	sort.Slice(o.Counts, func(i, j int) bool {
		a, b := o.Counts[i], o.Counts[j]
		return a.Category < b.Category || a.Category == b.Category && a.Action < b.Action
	})
	sort.Strings(o.Blocked)
	o.Blocked = compact(o.Blocked)
	if len(o.Blocked) > 0 || o.Home {
		return o, nil // refused, or sent home as the client wrote it
	}
	o.Body = apply(body, edits)
	if vault.Len() > 0 {
		o.Vault = vault
	}
	return o, nil
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// find is one text's finds, detectors' and words', sorted and without
// overlaps; a word find wins over a detector's that overlaps it, so a
// blocking word is never hidden behind a masked number.
func (p *Policy) find(dst []detect.Match, text string) []detect.Match {
	dst = p.words.Find(dst, text)
	nw := len(dst)
	dst = p.detectors.Find(dst, text)
	if nw == 0 || nw == len(dst) {
		return dst
	}
	kept := dst[:nw]
	for _, m := range dst[nw:] {
		if !overlapsAny(dst[:nw], m) {
			kept = append(kept, m)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Start < kept[j].Start })
	return kept
}

func overlapsAny(ms []detect.Match, m detect.Match) bool {
	for _, x := range ms {
		if m.Start < x.End && x.Start < m.End {
			return true
		}
	}
	return false
}
