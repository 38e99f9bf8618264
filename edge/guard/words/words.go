// Package words finds sensitive terms in text over normalised text:
// full-width forms read as half-width, case is folded, and spaces,
// punctuation, symbols and invisible format characters are skipped, so
// "Ｆａｌｕｎ", "f a l u n" and "f.a.l.u.n" all match "falun". Latin terms
// (letters and digits) match whole words only, or skipping spaces would
// find "sex" in "was expected"; Chinese terms match anywhere. Finds are
// reported as byte ranges of the original text.
//
// The terms form one trie over folded runes, walked from every place a
// term may begin (a rune some term begins with, not inside a Latin word),
// skipping dropped runes as it goes. A walk ends where the trie has no
// edge, so the cost is bounded by the longest term per start. Most walks
// are not even begun: a hashed filter of every term's first two symbols
// is asked first, so a rune of Chinese text costs a decode and three or
// four look-ups in small tables; a Latin word is looked at only where it
// begins. The trie is laid out breadth first so that its first levels,
// where walks end, stay in the cache. An Aho–Corasick automaton (the
// first version, in the history) reads each rune once, but with the
// word-edge rule every find starts at a known place, and on Latin text
// the automaton's failure chains made it three times slower than the walk
// (4 KiB mixed text, 10 000 terms). Written here rather than imported: the
// Go libraries match bytes as given, and offsets must map back through a
// normalisation that drops and rewrites runes.
package words

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/strait/strait/edge/guard/detect"
	"github.com/strait/strait/edge/guard/internal/chars"
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
	// asciiRoot is root's transition on each ASCII byte: the scan's
	// fast path over Latin text.
	asciiRoot [utf8.RuneSelf]int32
	pairs     *pairFilter
	// nodes and their edges: a node's edges are
	// edges[first:first+count], sorted by symbol. Each is one small record,
	// so a step touches two cache lines, not five arrays.
	nodes []node
	edges []edge
	// cats are the categories, sorted; a node's out indexes them. The
	// terms themselves are not kept: ten thousand strings would be
	// pointers for every garbage collection to follow.
	cats    []string
	n       int // terms
	longest int // the longest term, in folded runes
}

type node struct {
	first, count int32
	out          int32 // category of the term ending at the node, -1 if none
}

type edge struct{ sym, next int32 }

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
	var cats []string
	for _, t := range terms {
		cats = append(cats, t.Category)
	}
	slices.Sort(cats)
	cats = slices.Compact(cats)
	b := newBuilder()
	for _, t := range terms {
		c, _ := slices.BinarySearch(cats, t.Category)
		b.insert(t.Text, int32(c))
	}
	m := b.compile()
	m.cats, m.n = cats, len(terms)
	return m
}

// Len is the number of terms.
func (m *Matcher) Len() int {
	if m == nil {
		return 0
	}
	return m.n
}

// skip is the symbol of runes that folding drops.
const skip = -1

// symbol is the symbol of r as found in the text: 0 if no term has it,
// skip if it is dropped.
func (m *Matcher) symbol(r rune) int32 {
	if r < 0x10000 {
		return m.symLow[r]
	}
	return m.symbolHigh(r)
}

//go:noinline
func (m *Matcher) symbolHigh(r rune) int32 { // out of line: symbol is inlined in the scan
	f, ok := Fold(r)
	if !ok {
		return skip
	}
	return m.symHigh[f]
}

// child is node's edge on sym, or -1.
func (m *Matcher) child(n, sym int32) int32 {
	nd := m.nodes[n]
	es := m.edges[nd.first : nd.first+nd.count]
	lo, hi := 0, len(es)
	for lo < hi { // binary search of the node's sorted edges
		mid := int(uint(lo+hi) >> 1)
		if es[mid].sym < sym {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(es) && es[lo].sym == sym {
		return es[lo].next
	}
	return -1
}

// latin reports whether r folds to an ASCII letter or digit: such runes
// form words, and a term begins and ends only at a word's edge, so "sex"
// is not found in "Essex" nor in "was expected" (spaces are skipped).
func latin(r rune) bool {
	if r < utf8.RuneSelf {
		return asciiFold[r] != 0
	}
	return r >= 0xFF10 && r <= 0xFF5A && asciiFold[r-0xFEE0] != 0
}

// Find appends every term found in text, as original byte ranges sorted by
// start and without overlaps (the earlier, then the longer find wins).
//
// It walks the trie from every place a term may begin: every rune that
// some term begins with, except a Latin letter or digit inside a word. A
// walk skips what folding drops and ends where the trie has no edge, so
// it is never longer than the longest term.
func (m *Matcher) Find(dst []detect.Match, text string) []detect.Match { return find(m, dst, text) }

// FindBytes is Find over bytes, read in place.
func (m *Matcher) FindBytes(dst []detect.Match, text []byte) []detect.Match {
	return find(m, dst, text)
}

func find[T chars.Text](m *Matcher, dst []detect.Match, text T) []detect.Match {
	if m.Len() == 0 {
		return dst
	}
	base := len(dst)
	prevLatin := false
	// A non-ASCII rune that begins terms only of two runes or more waits
	// here for the next kept rune: the trie is walked only if that pair
	// begins some term (m.pairs), so most starts in Chinese text cost two
	// look-ups and every rune is decoded once.
	pend, pendEnd := -1, 0
	var pendSym, pendNode int32
	var pendLatin bool
	for i := 0; i < len(text); {
		if c := text[i]; c < utf8.RuneSelf {
			// ASCII is a letter or digit, or skipped. Inside a Latin word
			// no term begins: the rest of the word is passed over here.
			if asciiFold[c] == 0 {
				prevLatin = false
				i++
				continue
			}
			if pend >= 0 {
				if sym := m.symLow[c]; sym > 0 && m.pairs.has(pendSym, sym) {
					dst = walk(m, dst, text, pend, pendEnd, pendNode, pendLatin)
				}
				pend = -1
			}
			if !prevLatin {
				if n := m.asciiRoot[c]; n != 0 {
					dst = walk(m, dst, text, i, i+1, n, true)
				}
				prevLatin = true
			}
			for i++; i < len(text) && text[i] < utf8.RuneSelf && asciiFold[text[i]] != 0; i++ {
			}
			continue
		}
		r, size := chars.DecodeRune(text, i)
		isLatin := latin(r)
		if sym := m.symbol(r); sym != skip {
			if pend >= 0 {
				if sym > 0 && m.pairs.has(pendSym, sym) {
					dst = walk(m, dst, text, pend, pendEnd, pendNode, pendLatin)
				}
				pend = -1
			}
			if n := m.root[max(sym, 0)]; n != 0 && !(isLatin && prevLatin) {
				if m.nodes[n].out >= 0 { // a one-rune term
					dst = walk(m, dst, text, i, i+size, n, isLatin)
				} else {
					pend, pendEnd, pendSym, pendNode, pendLatin = i, i+size, sym, n, isLatin
				}
			}
		}
		prevLatin = isLatin
		i += size
	}
	return detect.Resolve(dst, base)
}

// walk follows the trie from node (reached by the rune at text[start:j])
// and appends the terms that end on the way.
func walk[T chars.Text](m *Matcher, dst []detect.Match, text T, start, j int, n int32, lastLatin bool) []detect.Match {
	for {
		if t := m.nodes[n].out; t >= 0 && !(lastLatin && j < len(text) && latinAt(text, j)) {
			dst = append(dst, detect.Match{Start: start, End: j, Category: m.cats[t], Word: true})
		}
		var r rune
		var sym int32
		k := j
		for { // the next rune that folding keeps
			if k >= len(text) {
				return dst
			}
			size := 1
			r = rune(text[k])
			if r >= utf8.RuneSelf {
				r, size = chars.DecodeRune(text, k)
			}
			k += size
			if sym = m.symbol(r); sym != skip {
				break
			}
		}
		if sym == 0 {
			return dst
		}
		if n = m.child(n, sym); n < 0 {
			return dst
		}
		j, lastLatin = k, latin(r)
	}
}

func latinAt[T chars.Text](text T, j int) bool {
	r, _ := chars.DecodeRune(text, j)
	return latin(r)
}

// Categories lists the categories of the terms, sorted, each once.
func (m *Matcher) Categories() []string {
	if m == nil {
		return nil
	}
	return slices.Clone(m.cats)
}
