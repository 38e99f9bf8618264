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
// request's view, jsonView, read it unescaped). lex itself is not moved.
func (v *Vault) restore(s string, lex *jsonLexer) string {
	if v.Len() == 0 || !strings.Contains(s, open) {
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
		if i < 0 {
			break
		}
		j := strings.Index(s[i:], close)
		if j < 0 {
			break
		}
		tok := s[i : i+j+len(close)]
		b.WriteString(s[:i])
		lp.write(s[:i])
		if val, ok := v.lookup(tok); ok {
			for k := 0; lp != nil && k < max(1, lp.depth()); k++ {
				val = appendMinimal(nil, val)
			}
			b.Write(val)
			lp.write(tok)
			s = s[i+len(tok):]
			continue
		}
		b.WriteString(s[i : i+len(open)]) // not ours: keep it, look further
		lp.write(open)
		s = s[i+len(open):]
	}
	b.WriteString(s)
	return b.String()
}

// pendingFrom is where a placeholder may begin at the end of s and is not
// complete yet: s[pendingFrom:] must be held back until the next piece.
// It returns len(s) when nothing needs holding.
func pendingFrom(s string) int {
	from := max(0, len(s)-maxPlaceholder+1)
	if i := strings.LastIndex(s[from:], open); i >= 0 && placeholderPrefix(s[from+i:]) {
		return from + i
	}
	return len(s)
}

// placeholderPrefix: p starts with the bracket and is a proper prefix of
// a placeholder (capitals, digits, underscore, no closing bracket yet).
func placeholderPrefix(p string) bool {
	for k := len(open); k < len(p); k++ {
		c := p[k]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return len(p) < maxPlaceholder
}
