package guard

import (
	"bytes"
	"strings"

	"github.com/strait/strait/edge/guard/detect"
	"github.com/strait/strait/edge/guard/words"
)

// Answer restores a request's masked values in its answer and applies
// output_words to it. One Answer serves one response.
type Answer struct {
	vault  *Vault
	words  *words.Matcher
	output string
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
		a.words = p.words
	}
	return a
}

// mayHold reports whether doc can hold something to restore or scan.
func (a *Answer) mayHold(doc []byte) bool {
	return a.words != nil || a.vault.Len() > 0 && (bytes.Contains(doc, []byte(open)) || bytes.Contains(doc, []byte(`\u27e6`)) ||
		bytes.Contains(doc, []byte(`\u27E6`)))
}

// text restores s and applies output_words.
func (a *Answer) text(s string) string {
	s = a.vault.Restore(s)
	if a.words == nil {
		return s
	}
	a.finds = a.words.Find(a.finds[:0], s)
	if len(a.finds) == 0 {
		return s
	}
	for _, f := range a.finds {
		a.OutputCounts[f.Category]++
	}
	switch a.output {
	case OutputCut:
		a.Cut = true
	case OutputMask:
		var b strings.Builder
		prev := 0
		for _, f := range a.finds {
			b.WriteString(s[prev:f.Start])
			b.WriteString(strings.Repeat("＊", max(1, len([]rune(s[f.Start:f.End])))))
			prev = f.End
		}
		b.WriteString(s[prev:])
		s = b.String()
	}
	return s
}

// Whole restores a complete JSON answer. A body that is not JSON is
// returned as it is.
func (a *Answer) Whole(body []byte) []byte {
	if !a.mayHold(body) {
		return body
	}
	var edits []edit
	err := walk(body, func(_ *walker, s span) error {
		v, err := decodeString(body[s.start:s.end])
		if err != nil {
			return err
		}
		if r := a.text(v); r != v {
			edits = append(edits, edit{s, r})
		}
		return nil
	})
	if err != nil {
		return body
	}
	return apply(body, edits)
}
