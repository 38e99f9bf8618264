package guard

import (
	"bytes"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/strait/strait/edge/guard/detect"
	"github.com/strait/strait/edge/guard/words"
)

// Answer restores a request's masked values in its answer and applies
// output_words to it. One Answer serves one response.
type Answer struct {
	vault   *Vault
	matcher *words.Matcher // the word list, when output_words is set
	output  string
	// OutputCounts are the word finds in the answer per category.
	OutputCounts map[string]int
	// Cut is set once output_words: cut found a word; the rest of the
	// answer must not reach the client.
	Cut   bool
	finds []detect.Match
}

// Answer returns what the answer to a request with outcome o needs, or
// nil when it needs nothing (no masked value, no output words).
func (p *Policy) Answer(o *Outcome) *Answer {
	if p == nil || o.Vault == nil && (p.output == "" || p.words == nil) {
		return nil
	}
	a := &Answer{vault: o.Vault, output: p.output, OutputCounts: map[string]int{}}
	if p.output != "" {
		a.matcher = p.words
	}
	return a
}

// mayHold reports whether doc can hold something to restore or scan.
func (a *Answer) mayHold(doc []byte) bool {
	return a.matcher != nil || a.vault.Len() > 0 && (bytes.Contains(doc, []byte(open)) || bytes.Contains(doc, []byte(`\u27e6`)) ||
		bytes.Contains(doc, []byte(`\u27E6`)))
}

// text restores s, the string at w's place in doc, and applies
// output_words to all of it.
func (a *Answer) text(w *walker, doc []byte, s string) string {
	var lex *jsonLexer
	if inJSONText(w, doc) || jsonText(s) { // JSON a client reads as such, or structured output
		lex = &jsonLexer{}
	}
	r := a.restore(w, doc, s, lex)
	out, _ := a.words(r, len(r), true, wordsPlace(w, doc), lex)
	return out
}

// place is what output_words may do to a string of an answer, by where it
// stands (wordsPlace).
type place uint8

const (
	// notSaid: not text the model wrote (an id, a type, a role, a name,
	// a finish reason, a model version): left alone, a word in it neither
	// counted nor masked nor cutting the answer, since changing it breaks
	// the client's reading of the answer and it says nothing to the user.
	notSaid place = iota
	// said: the model's text; a word is counted, masked or cut.
	said
	// signedSaid: signed reasoning or its signature (signed); a word is
	// counted and cut, never masked.
	signedSaid
)

// wordsPlace is the place of the string at w's place in the answer doc.
func wordsPlace(w *walker, doc []byte) place {
	switch {
	case signed(w, doc):
		return signedSaid
	case modelText(w):
		return said
	}
	return notSaid
}

// modelText reports whether the string at w's place in an answer is text
// the model wrote: a text field's (textKey, as the streaming path holds
// them), a value below an Anthropic tool_use's input or a Gemini
// functionCall's args (the arguments as an object), or a Responses custom
// tool call's input.
func modelText(w *walker) bool {
	n := len(w.path)
	if n == 0 {
		return false
	}
	if last := string(w.path[n-1]); textKey(last) || last == "input" {
		return true
	}
	for _, k := range w.path[:n-1] {
		if string(k) == "input" || string(k) == "args" {
			return true
		}
	}
	return false
}

// words applies output_words to s, whose first cut bytes may go out now
// (the rest is held for the next piece), by its place pl: in signed text
// a word is counted and cut, never masked; a string the model did not
// write is not scanned. With lex, s is (a piece of) a JSON text that lex
// has followed up to s, and only a word within one of its strings counts
// (inStrings). Unless final, the last
// Longest()-1 runes are held too, so that a word across two pieces is
// seen whole; a word that reaches into the held part is held with it.
// Words are counted once, when they go out. It returns what goes out,
// processed, and the held rest, as it was; with output_words: cut, what
// goes out ends before the first word, and nothing is held.
func (a *Answer) words(s string, cut int, final bool, pl place, lex *jsonLexer) (string, string) {
	if a.matcher == nil || pl == notSaid {
		return s[:cut], s[cut:]
	}
	if !final {
		cut = min(cut, runesBack(s, a.matcher.Longest()-1))
	}
	a.finds = a.matcher.Find(a.finds[:0], s)
	if lex != nil {
		a.finds = inStrings(a.finds, s, *lex)
	}
	for _, f := range a.finds {
		if f.Start < cut && f.End > cut {
			cut = f.Start
		}
	}
	var b strings.Builder
	prev := 0
	for _, f := range a.finds {
		if f.End > cut {
			break
		}
		a.OutputCounts[f.Category]++
		switch a.output {
		case OutputCut: // the answer ends before the word
			a.Cut = true
			b.WriteString(s[prev:f.Start])
			return b.String(), ""
		case OutputMask:
			if pl == signedSaid {
				continue
			}
			b.WriteString(s[prev:f.Start])
			b.WriteString(strings.Repeat("＊", max(1, utf8.RuneCountInString(s[f.Start:f.End]))))
			prev = f.End
		}
	}
	if prev == 0 {
		return s[:cut], s[cut:]
	}
	b.WriteString(s[prev:cut])
	return b.String(), s[cut:]
}

// runesBack is the offset n runes before the end of s.
func runesBack(s string, n int) int {
	i := len(s)
	for ; n > 0 && i > 0; n-- {
		_, size := utf8.DecodeLastRuneInString(s[:i])
		i -= size
	}
	return i
}

// Whole restores a complete JSON answer. A body that is not JSON is
// returned as it is. A JSON array is a stream held whole (Gemini's
// streamGenerateContent without alt=sse), restored as chunks.
func (a *Answer) Whole(body []byte) []byte {
	if !a.mayHold(body) {
		return body
	}
	var edits []edit
	var err error
	if doc := bytes.TrimLeft(body, " \t\r\n"); len(doc) > 0 && doc[0] == '[' {
		edits, err = a.chunks(body)
	} else {
		err = walkPlain(body, func(w *walker, s span) error {
			v, err := decodeString(body[s.start:s.end])
			if err != nil {
				return err
			}
			if r := a.text(w, body, v); r != v {
				edits = append(edits, edit{s, r})
			}
			return nil
		}, a.keys(body, &edits))
	}
	if err != nil {
		return body
	}
	return apply(body, edits)
}

// chunks is Whole's edits of a JSON array of stream chunks. As in an SSE
// stream (Stream), a string continues the one at the same place of the
// chunk before (its channel, less the chunk's position): a placeholder or
// a word cut between two chunks is held back into the next and seen whole.
// What is held when the array ends goes back where it came from.
func (a *Answer) chunks(body []byte) ([]edit, error) {
	type piece struct {
		span
		v, emit, tail string
		place         place
		lex           *jsonLexer // the channel's, at the tail
	}
	var edits []edit
	done := func(p *piece) {
		if p.tail != "" {
			rest, _ := a.words(p.tail, len(p.tail), true, p.place, p.lex)
			p.emit += rest
		}
		if p.emit != p.v {
			edits = append(edits, edit{p.span, p.emit})
		}
	}
	last, lexers := map[string]*piece{}, map[string]*jsonLexer{}
	_, err := walk(body, func(w *walker, s span) error {
		v, err := decodeString(body[s.start:s.end])
		if err != nil {
			return err
		}
		ch := w.channel()
		ch = ch[strings.IndexByte(ch, '.')+1:] // "#=<chunk>." first
		prefix := ""
		if p := last[ch]; p != nil {
			prefix, p.tail = p.tail, ""
			done(p)
		}
		lex := lexer(lexers, ch, w, body)
		t := a.restore(w, body, prefix+v, lex)
		text := len(w.path) > 0 && textKey(string(w.path[len(w.path)-1]))
		pl := wordsPlace(w, body)
		emit, tail := a.words(t, pendingFrom(t, lex != nil), !text, pl, lex)
		lex.write(emit)
		last[ch] = &piece{s, v, emit, tail, pl, lex}
		return nil
	}, a.keys(body, &edits))
	for _, p := range last {
		done(p)
	}
	slices.SortFunc(edits, func(x, y edit) int { return x.start - y.start })
	return edits, err
}

// keys is a walker's key visitor that adds to edits the restoring of the
// object keys of the answer doc that hold placeholders: a model may name
// a member by a masked value (a tool call's input or a function call's
// arguments as an object, keyed by a phone number). A key is whole in
// one chunk of a stream, so it is restored on its own. Nil when the
// vault is empty.
func (a *Answer) keys(doc []byte, edits *[]edit) func(w *walker, s span) error {
	if a.vault.Len() == 0 {
		return nil
	}
	return func(w *walker, s span) error {
		lit := doc[s.start:s.end]
		if !a.mayHold(lit) {
			return nil
		}
		k, err := decodeString(lit)
		if err != nil {
			return err
		}
		if r := a.vault.restore(k, nil); r != k {
			*edits = append(*edits, edit{s, r})
		}
		return nil
	}
}

// restore puts the vault's values back into s, the string (or a piece of
// it) at w's place in the answer doc, escaped for JSON in a JSON text
// (lex, see Vault.restore);
// not into an Anthropic model's thinking. That thinking is signed and a
// client sends it back as it got it in the next request (as it must in a
// tool loop): with the values in it, they would cross the border in that
// request, and the changed text would fail its signature. Its
// placeholders stay; the client sees them there only.
func (a *Answer) restore(w *walker, doc []byte, s string, lex *jsonLexer) string {
	if signed(w, doc) {
		return s
	}
	return a.vault.restore(s, lex)
}

// lexer is the jsonLexer of the channel ch of a stream, kept in lexers
// from piece to piece, when the string at w's place in doc is a JSON text
// (inJSONText); else nil. Whoever takes a piece's text out moves it on.
func lexer(lexers map[string]*jsonLexer, ch string, w *walker, doc []byte) *jsonLexer {
	if !inJSONText(w, doc) {
		return nil
	}
	l := lexers[ch]
	if l == nil {
		l = &jsonLexer{}
		lexers[ch] = l
	}
	return l
}

// signed reports whether the string at w's place in the answer doc is
// signed reasoning, or its signature, which the client must send back
// as it got it: Anthropic's thinking, its signature and a redacted
// thinking block's data, Gemini's thought signature, the Responses
// API's encrypted reasoning. Nothing in it is changed: neither restored
// nor masked by output_words (a changed block fails its signature, and
// the model provider rejects the client's next request).
func signed(w *walker, doc []byte) bool {
	if len(w.path) == 0 {
		return false
	}
	switch string(w.path[len(w.path)-1]) {
	case "thinking", "signature", "thoughtSignature", "thought_signature", "encrypted_content":
		return true
	case "data":
		return bytes.Contains(doc, []byte(`"redacted_thinking"`))
	}
	return false
}

// inJSONText reports whether the string at w's place in the answer doc is
// a JSON text, or a piece of one: a tool call's arguments, whole or
// streamed (Chat, Responses, Anthropic's input_json_delta).
func inJSONText(w *walker, doc []byte) bool {
	if len(w.path) == 0 {
		return false
	}
	switch string(w.path[len(w.path)-1]) {
	case "arguments", "partial_json":
		return true
	case "delta":
		return bytes.Contains(doc, []byte(`"response.function_call_arguments.delta"`))
	}
	return false
}

// inStrings keeps of finds, in s, a JSON text or a piece of one that l
// has followed up to s, those that stand within one string, neither
// reaching across its quotes nor into an escape. The word list lets
// punctuation stand between a word's characters: a find could take the
// quotes and the comma between two strings (["sec","ret"]), or the t of
// a \t, and masking it would change the text's shape or break it. The
// model did not write the word there.
func inStrings(finds []detect.Match, s string, l jsonLexer) []detect.Match {
	kept, at := finds[:0], 0
	for _, f := range finds {
		if f.Start < at {
			continue
		}
		l.write(s[at:f.Start])
		start, inStart := l.mark()
		l.write(s[f.Start:f.End])
		end, inEnd := l.mark()
		at = f.End
		if inStart && inEnd && start == end {
			kept = append(kept, f)
		}
	}
	return kept
}
