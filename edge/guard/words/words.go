// Package words finds sensitive terms in text with an Aho–Corasick
// automaton over normalised text: full-width forms read as half-width,
// case is folded, and spaces, punctuation, symbols and invisible format
// characters are skipped, so "Ｆａｌｕｎ", "f a l u n" and "f.a.l.u.n" all
// match "falun". Finds are reported as byte ranges of the original text.
//
// It is written here rather than imported: the Go implementations the
// project looked at work on bytes of the text as given, and offsets have
// to map back through a normalisation that drops and rewrites runes, so
// the automaton runs on the normalised rune stream directly and keeps a
// ring of original offsets as long as the longest term.
package words

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/strait/strait/edge/guard/detect"
)

// DefaultCategory is the category of a term listed without one.
const DefaultCategory = "words"

// Term is one sensitive term and its category.
type Term struct {
	Text, Category string
}

// Parse reads a word list: one term a line, optionally followed by a tab
// and its category; blank lines and lines starting with # are skipped.
func Parse(r io.Reader) ([]Term, error) {
	var out []Term
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		text, cat, _ := strings.Cut(line, "\t")
		cat = strings.TrimSpace(cat)
		if cat == "" {
			cat = DefaultCategory
		}
		if !normalisable(text) {
			return nil, fmt.Errorf("line %d: the term has no letter or digit left after normalisation", n)
		}
		out = append(out, Term{Text: text, Category: cat})
	}
	return out, sc.Err()
}

func normalisable(s string) bool {
	for _, r := range s {
		if _, ok := Fold(r); ok {
			return true
		}
	}
	return false
}

// Fold is the normalisation of one rune: ok is false for a rune that is
// skipped (space, punctuation, symbol, control or format character).
func Fold(r rune) (rune, bool) {
	if r < utf8.RuneSelf {
		f := asciiFold[r]
		return rune(f), f != 0
	}
	if r >= 0xFF01 && r <= 0xFF5E { // full-width ASCII
		return Fold(r - 0xFEE0)
	}
	if unicode.In(r, unicode.Z, unicode.P, unicode.S, unicode.Cc, unicode.Cf, unicode.Mn) {
		return 0, false
	}
	return unicode.ToLower(r), true
}

// asciiFold maps ASCII to its folded byte, 0 for skipped bytes.
var asciiFold = func() (t [128]byte) {
	for b := '0'; b <= '9'; b++ {
		t[b] = byte(b)
	}
	for b := 'a'; b <= 'z'; b++ {
		t[b], t[b-'a'+'A'] = byte(b), byte(b)
	}
	return t
}()

// Matcher is a compiled term list. It is safe for concurrent use.
type Matcher struct {
	// symLow is the symbol of each rune below 0x10000 as it stands in the
	// text (folding included): 0 if no term has it, skip if folding drops
	// it. One table look-up per rune keeps the scan at a few ns a rune.
	symLow  []int32
	symHigh map[rune]int32 // by folded rune
	root    []int32        // root's transitions, dense over symbols
	// Nodes: edges of node n are syms/next[first[n]:first[n+1]], sorted by
	// symbol.
	first, syms, next []int32
	fail              []int32
	out               []int32 // term ending at the node, -1 if none
	outLink           []int32 // nearest proper suffix with an out, -1 if none
	depth             []int32 // in folded runes
	terms             []Term
	ring              int // ring size (power of two) ≥ the longest term
	longest           int // the longest term, in folded runes
}

// Longest is the length of the longest term in folded runes: a stream
// scanned piece by piece must keep that many runes minus one to find a
// term that crosses pieces.
func (m *Matcher) Longest() int {
	if m == nil {
		return 0
	}
	return m.longest
}

// New compiles terms. A repeated term keeps its first category.
func New(terms []Term) *Matcher {
	b := newBuilder()
	for i, t := range terms {
		b.insert(t.Text, int32(i))
	}
	m := b.compile()
	m.terms = terms
	return m
}

// Len is the number of terms.
func (m *Matcher) Len() int {
	if m == nil {
		return 0
	}
	return len(m.terms)
}

// skip is the symbol of runes that folding drops.
const skip = -1

// symbol is the symbol of r as found in the text: 0 if no term has it,
// skip if it is dropped.
func (m *Matcher) symbol(r rune) int32 {
	if r < 0x10000 {
		return m.symLow[r]
	}
	f, ok := Fold(r)
	if !ok {
		return skip
	}
	return m.symHigh[f]
}

// step is the automaton's transition from state on sym.
func (m *Matcher) step(state, sym int32) int32 {
	for state != 0 {
		lo, hi := m.first[state], m.first[state+1]
		if hi-lo == 1 { // most nodes past the first level have one edge
			if m.syms[lo] == sym {
				return m.next[lo]
			}
			state = m.fail[state]
			continue
		}
		for lo < hi { // binary search of the node's sorted edges
			mid := int32(uint32(lo+hi) >> 1)
			if m.syms[mid] < sym {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		if lo < m.first[state+1] && m.syms[lo] == sym {
			return m.next[lo]
		}
		state = m.fail[state]
	}
	return m.root[sym]
}

// Find appends every term found in text, as original byte ranges sorted by
// start and without overlaps (the earlier, then the longer find wins).
func (m *Matcher) Find(dst []detect.Match, text string) []detect.Match {
	if m.Len() == 0 {
		return dst
	}
	base := len(dst)
	var ringBuf [64]int
	starts := ringBuf[:]
	if m.ring > len(starts) {
		starts = make([]int, m.ring)
	}
	mask := m.ring - 1
	state, n := int32(0), 0
	for i := 0; i < len(text); {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		sym := m.symbol(r)
		if sym == skip {
			i += size
			continue
		}
		starts[n&mask] = i
		n++
		i += size
		if sym == 0 {
			state = 0
			continue
		}
		state = m.step(state, sym)
		for s := state; s >= 0; s = m.outLink[s] {
			if t := m.out[s]; t >= 0 {
				d := int(m.depth[s])
				dst = append(dst, detect.Match{Start: starts[(n-d)&mask], End: i, Category: m.terms[t].Category, Word: true})
			}
		}
	}
	return detect.Resolve(dst, base)
}

// Categories lists the categories of the terms, sorted, each once.
func (m *Matcher) Categories() []string {
	if m == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range m.terms {
		if !seen[t.Category] {
			seen[t.Category] = true
			out = append(out, t.Category)
		}
	}
	sort.Strings(out)
	return out
}
