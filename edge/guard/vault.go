package guard

import (
	"strconv"
	"strings"

	"github.com/strait/strait/edge/guard/detect"
	"github.com/strait/strait/edge/guard/internal/chars"
)

// Placeholders look like ⟦PHONE_1⟧: brackets that do not occur in ordinary
// text, a label in capitals and a number, which models copy through
// unchanged.
const (
	open  = "⟦"
	close = "⟧"
	// maxPlaceholder bounds a placeholder's length in bytes: labels are cut
	// to maxLabel and numbers stay below a million per request.
	maxLabel       = 24
	maxPlaceholder = len(open) + maxLabel + 1 + 7 + len(close)
)

// labels are the placeholder labels of the built-in detectors; custom
// detectors and word categories use their name in capitals.
var labels = map[string]string{
	detect.CNMobile: "PHONE", detect.CNIDCard: "ID", detect.BankCard: "CARD", detect.Email: "EMAIL",
	detect.IPv4: "IP", detect.IPv6: "IP", detect.PassportCN: "PASSPORT",
}

// label is the placeholder label of a category: [A-Z0-9_], at most
// maxLabel long.
func label(category string) string {
	if l, ok := labels[category]; ok {
		return l
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(category) {
		if b.Len() >= maxLabel {
			break
		}
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "VALUE"
	}
	return b.String()
}

// Vault holds one request's masked values: each distinct value gets one
// placeholder, the same one wherever it occurs in the request. It lives in
// the edge's memory for the request and nowhere else. A request holds a
// handful of values, so a slice searched in order serves, without the
// maps' allocations; past vaultIndexAt entries an index takes over.
type Vault struct {
	entries []vaultEntry
	index   map[string]int // token → entry, once there are many
	// values (category, NUL, value → entry) and labels (label → values
	// masked under it) take over from the search in order once there are
	// many: a client's one request can hold millions of numbers, and a
	// search per find would cost their square.
	values map[string]int
	labels map[string]int
	// arena holds the values and placeholders, each entry's value then
	// its token: one buffer for a request's handful of values, kept with
	// the Outcome's other memory when the Outcome is released (entries
	// hold offsets: the arena moves as it grows).
	arena []byte
}

type vaultEntry struct {
	category, label string
	// The value is arena[start:mid], its placeholder arena[mid:end].
	start, mid, end int
}

// vaultIndexAt is the number of values from which Restore looks tokens up
// in a map.
const vaultIndexAt = 32

// Len is the number of masked values.
func (v *Vault) Len() int {
	if v == nil {
		return 0
	}
	return len(v.entries)
}

func (v *Vault) value(e *vaultEntry) []byte { return v.arena[e.start:e.mid] }

func (v *Vault) token(e *vaultEntry) []byte { return v.arena[e.mid:e.end] }

// mask returns the placeholder for value.
func (v *Vault) mask(category, value string) string {
	return string(maskValue(v, category, label(category), value))
}

// maskValue returns the placeholder for value, of a category whose label
// is l; it is valid until the next maskValue. The vault keeps a copy of
// value: text may be the request's own bytes.
func maskValue[T chars.Text](v *Vault, category, l string, value T) []byte {
	n := 1
	if v.values != nil {
		if k, ok := v.values[category+"\x00"+string(value)]; ok {
			return v.token(&v.entries[k])
		}
		n += v.labels[l]
	} else {
		for k := range v.entries {
			e := &v.entries[k]
			if e.category == category && equal(v.value(e), value) {
				return v.token(e)
			}
			if e.label == l {
				n++
			}
		}
	}
	if cap(v.arena) == 0 {
		v.arena = make([]byte, 0, 256)
	}
	start := len(v.arena)
	v.arena = append(v.arena, value...)
	mid := len(v.arena)
	v.arena = append(append(append(v.arena, open...), l...), '_')
	v.arena = append(strconv.AppendInt(v.arena, int64(n), 10), close...)
	v.entries = append(v.entries, vaultEntry{category, l, start, mid, len(v.arena)})
	e := &v.entries[len(v.entries)-1]
	if len(v.entries) >= vaultIndexAt {
		if v.index == nil {
			v.index = make(map[string]int, 2*vaultIndexAt)
			v.values = make(map[string]int, 2*vaultIndexAt)
			v.labels = map[string]int{}
			for k := range v.entries[:len(v.entries)-1] {
				v.indexEntry(k)
			}
		}
		v.indexEntry(len(v.entries) - 1)
	}
	return v.token(e)
}

// indexEntry adds entry k to the vault's maps.
func (v *Vault) indexEntry(k int) {
	e := &v.entries[k]
	v.index[string(v.token(e))] = k
	v.values[e.category+"\x00"+string(v.value(e))] = k
	v.labels[e.label]++
}

func equal[T chars.Text](a []byte, b T) bool {
	if len(a) != len(b) {
		return false
	}
	for k := 0; k < len(a); k++ {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// lookup is the value behind a token.
func (v *Vault) lookup(token string) ([]byte, bool) {
	if v.index != nil {
		i, ok := v.index[token]
		if !ok {
			return nil, false
		}
		return v.value(&v.entries[i]), true
	}
	for k := range v.entries {
		if e := &v.entries[k]; string(v.token(e)) == token {
			return v.value(e), true
		}
	}
	return nil, false
}

// reset empties v for another request, keeping its arena's room; the
// values are wiped, not only forgotten, so that a pooled buffer holds no
// request's personal data.
func (v *Vault) reset() {
	clear(v.arena)
	v.arena = v.arena[:0]
	if cap(v.arena) > maxKeptArena {
		v.arena = nil
	}
	clear(v.entries)
	v.entries, v.index, v.values, v.labels = v.entries[:0], nil, nil, nil
}

// maxKeptArena bounds the vault arena a released Outcome keeps.
const maxKeptArena = 16 << 10

// redacted is what an irreversibly removed value becomes.
func redacted(category string) string { return open + "REDACTED_" + label(category) + close }

// Restore replaces every placeholder of v in s by its value.
func (v *Vault) Restore(s string) string { return v.restore(s, nil) }

// restore is Restore; with lex, s is a JSON text (a tool call's
// arguments), or a piece of one that lex has followed up to s, whose
// placeholders stand in its strings: a value goes back escaped as the
// body of every string it stands in (at least one), so that a quote or a
// backslash in it does not end or break the string the model wrote (the
// request's view, jsonView, read it unescaped). There a bracket written
// \u-escaped is the bracket (escapedBracket). lex itself is not moved.
func (v *Vault) restore(s string, lex *jsonLexer) string {
	if v.Len() == 0 || !strings.Contains(s, open) && (lex == nil || escapedOpenAt(s) < 0) {
		return s
	}
	var l jsonLexer
	var lp *jsonLexer // a copy of lex, moved along s
	if lex != nil {
		l, lp = *lex, &l
	}
	var b strings.Builder
	for {
		i := strings.Index(s, open)
		if lp != nil {
			if k := escapedOpenAt(s); k >= 0 && (i < 0 || k < i) {
				i = k
			}
		}
		if i < 0 {
			break
		}
		b.WriteString(s[:i])
		lp.write(s[:i])
		s = s[i:]
		depth := 0 // strings the placeholder stands in; 0: not in a JSON text
		if lp != nil {
			depth = max(1, lp.depth())
		}
		tok, n, skip := placeholderAt(s, depth)
		if n > 0 {
			if val, ok := v.lookup(tok); ok {
				for range depth {
					val = appendMinimal(nil, val)
				}
				b.Write(val)
				lp.write(s[:n])
				s = s[n:]
				continue
			}
		}
		b.WriteString(s[:skip]) // not ours: keep it, look further
		lp.write(s[:skip])
		s = s[skip:]
	}
	b.WriteString(s)
	return b.String()
}

// A placeholder in a JSON text may have its brackets written as \u
// escapes (\u27e6, \u27E6): the same placeholder as the model reads it.
// The escape belongs to the string the placeholder stands in or to any
// string around it (a JSON text in a string of the arguments): each
// string outside the one escaping doubles its backslash, so at depth d
// the bracket is 1, 2, 4 … or 2^(d-1) backslashes and the "u" (a run of
// backslashes before them is text, 2^d of them for each backslash the
// innermost string reads).
const (
	openHex  = "u27e6" // after the backslashes; the "e" in either case
	closeHex = "u27e7"
	// maxEscapedBracket is the longest escaped bracket, at maxInnerDepth.
	maxEscapedBracket = 1<<(maxInnerDepth-1) + len(openHex)
	// maxPlaceholderJSON bounds a placeholder's length in a JSON text,
	// both brackets escaped.
	maxPlaceholderJSON = maxPlaceholder + 2*(maxEscapedBracket-len(open))
)

// escapedOpenAt is where the first escaped opening bracket's run of
// backslashes begins in s (the text before them included), or -1.
func escapedOpenAt(s string) int {
	for off := 0; ; {
		k := strings.Index(s[off:], "u27")
		if k < 0 {
			return -1
		}
		k += off
		if k > 0 && s[k-1] == '\\' && hexAt(s[k:], openHex) == len(openHex) {
			for k > 0 && s[k-1] == '\\' {
				k--
			}
			return k
		}
		off = k + 1
	}
}

// hexAt is how many bytes of s match the escape body hex ("u27e6",
// "u27e7", the "e" in either case) from its start.
func hexAt(s, hex string) int {
	n := 0
	for n < len(s) && n < len(hex) && (s[n] == hex[n] || hex[n] == 'e' && s[n] == 'E') {
		n++
	}
	return n
}

// escapedBracket is the length of the bracket at s's start: bare (the
// literal lit), or, at depth > 0, escaped (its escape body hex after
// backslashes, escapedOpenAt); text is the length of the backslashes
// before an escaped bracket that are text. n is 0 when s does not start
// with the bracket; partial is set when s ends in what may still become
// one.
func escapedBracket(s, lit, hex string, depth int) (text, n int, partial bool) {
	if strings.HasPrefix(s, lit) {
		return 0, len(lit), false
	}
	if depth == 0 || s == "" || s[0] != '\\' {
		return 0, 0, len(s) < len(lit) && strings.HasPrefix(lit, s)
	}
	r := 0
	for r < len(s) && s[r] == '\\' {
		r++
	}
	h := hexAt(s[r:], hex)
	if r+h == len(s) && h < len(hex) {
		return 0, 0, true
	}
	m := r % (1 << min(depth, maxInnerDepth))
	if h < len(hex) || m == 0 || m&(m-1) != 0 {
		return 0, 0, false
	}
	return r - m, m + len(hex), false
}

// placeholderAt reads the placeholder at s's start, its brackets bare or,
// at depth > 0 (in a JSON text, see escapedOpenAt), escaped: tok is the
// placeholder as the vault holds it and n its length in s, 0 if there is
// none; skip is how much of s to pass over to look further.
func placeholderAt(s string, depth int) (tok string, n, skip int) {
	text, o, _ := escapedBracket(s, open, openHex, depth)
	if o == 0 { // backslashes that are text, and the "u27e6" after them
		return "", 0, min(len(s), len(s)-len(strings.TrimLeft(s, `\`))+len(openHex))
	}
	if text > 0 {
		return "", 0, text // the backslashes that are text first
	}
	j := o
	for j < len(s) && labelByte(s[j]) {
		j++
	}
	// Backslashes that are text before the closing bracket are not the
	// placeholder's.
	if text, c, _ := escapedBracket(s[j:], close, closeHex, depth); c > 0 && text == 0 && j > o {
		return open + s[o:j] + close, j + c, o
	}
	return "", 0, o
}

func labelByte(c byte) bool { return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' }

// pendingFrom is where a placeholder may begin at the end of s and is not
// complete yet: s[pendingFrom:] must be held back until the next piece.
// In a JSON text (json) its brackets may be escaped (escapedOpenAt), and a
// run of backslashes at the end is held too, whole: what is held must
// come back with all the backslashes before an escaped bracket, which
// say whether it is one. It returns len(s) when nothing needs holding.
func pendingFrom(s string, json bool) int {
	longest := maxPlaceholder
	if json {
		longest = maxPlaceholderJSON
	}
	for i := max(0, len(s)-longest+1); i < len(s); i++ {
		bare := strings.HasPrefix(s[i:], open)
		run := json && s[i] == '\\' && (i == 0 || s[i-1] != '\\')
		if (bare || run) && placeholderPrefix(s[i:], json) {
			return i
		}
	}
	return len(s)
}

// placeholderPrefix: p starts with a bracket, or in a JSON text a run of
// backslashes that may become an escaped one, and is a proper prefix of a
// placeholder (capitals, digits, underscore, no closing bracket yet).
func placeholderPrefix(p string, json bool) bool {
	depth := 0
	if json {
		// Whatever the depth, some run of backslashes escapes the
		// bracket: read the run as one backslash, at depth 1.
		depth = 1
		if rest := strings.TrimLeft(p, `\`); len(rest) < len(p) {
			p = p[len(p)-len(rest)-1:]
		}
	}
	_, o, partial := escapedBracket(p, open, openHex, depth)
	if partial {
		return true
	}
	if o == 0 {
		return false
	}
	j := o
	for j < len(p) && labelByte(p[j]) {
		j++
	}
	if j == len(p) {
		return true
	}
	_, _, partial = escapedBracket(p[j:], close, closeHex, depth)
	return partial
}
