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
	// arena holds the values and placeholders: one allocation for a
	// request's handful of values rather than two strings each. Strings
	// taken from a strings.Builder stay valid as it grows.
	arena strings.Builder
}

type vaultEntry struct {
	category, label, value, token string
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

// mask returns the placeholder for value.
func (v *Vault) mask(category, value string) string {
	return maskValue(v, category, label(category), value)
}

// maskValue returns the placeholder for value, of a category whose label
// is l. The vault keeps a copy of value: text may be the request's own
// bytes.
func maskValue[T chars.Text](v *Vault, category, l string, value T) string {
	n := 1
	for _, e := range v.entries {
		if e.category == category && equal(e.value, value) {
			return e.token
		}
		if e.label == l {
			n++
		}
	}
	if v.arena.Cap() == 0 {
		v.arena.Grow(256)
	}
	at := v.arena.Len()
	switch t := any(value).(type) {
	case string:
		v.arena.WriteString(t)
	case []byte:
		v.arena.Write(t)
	}
	kept := v.arena.String()[at:]
	at = v.arena.Len()
	v.arena.WriteString(open)
	v.arena.WriteString(l)
	v.arena.WriteByte('_')
	var num [20]byte
	v.arena.Write(strconv.AppendInt(num[:0], int64(n), 10))
	v.arena.WriteString(close)
	token := v.arena.String()[at:]
	v.entries = append(v.entries, vaultEntry{category, l, kept, token})
	if len(v.entries) >= vaultIndexAt {
		if v.index == nil {
			v.index = make(map[string]int, 2*vaultIndexAt)
			for i, e := range v.entries {
				v.index[e.token] = i
			}
		}
		v.index[token] = len(v.entries) - 1
	}
	return token
}

func equal[T chars.Text](a string, b T) bool {
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
func (v *Vault) lookup(token string) (string, bool) {
	if v.index != nil {
		i, ok := v.index[token]
		if !ok {
			return "", false
		}
		return v.entries[i].value, true
	}
	for _, e := range v.entries {
		if e.token == token {
			return e.value, true
		}
	}
	return "", false
}

// redacted is what an irreversibly removed value becomes.
func redacted(category string) string { return open + "REDACTED_" + label(category) + close }

// Restore replaces every placeholder of v in s by its value.
func (v *Vault) Restore(s string) string {
	if v.Len() == 0 || !strings.Contains(s, open) {
		return s
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
		if val, ok := v.lookup(tok); ok {
			b.WriteString(val)
			s = s[i+len(tok):]
			continue
		}
		b.WriteString(s[i : i+len(open)]) // not ours: keep it, look further
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
