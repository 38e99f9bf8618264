// Package detect finds personal data in text: Chinese resident ID numbers,
// bank card numbers, mainland mobile numbers, e-mail addresses, IPv4 and
// IPv6 addresses, Chinese passport numbers, and operator-defined RE2
// patterns.
//
// The built-in detectors are hand-written scanners, not regular
// expressions: each candidate is a maximal token with word boundaries on
// both sides, and it must pass the format's own check (ID check digit and
// birth date, Luhn and issuer prefix, assigned mobile prefixes), so order
// numbers, timestamps and numbers inside identifiers are not taken. Every
// detector that starts from digits (ID, card, mobile, IPv4, passport) shares
// one pass over the digit runs; e-mail looks around each '@', IPv6 only
// runs on text with a ':'. Nothing is allocated unless something is found.
package detect

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/strait/strait/edge/guard/internal/chars"
)

// Match is one find: Text[Start:End] is the value.
type Match struct {
	Start, End int
	// Category is the detector's name (cn_mobile, ..., or a custom name),
	// or a word list category.
	Category string
	// Word marks a find of a word list (package words) rather than of a
	// detector.
	Word bool
}

// The built-in detector names, as they appear in the config.
const (
	CNIDCard   = "cn_id_card"
	BankCard   = "bank_card"
	CNMobile   = "cn_mobile"
	Email      = "email"
	IPv4       = "ipv4"
	IPv6       = "ipv6"
	PassportCN = "passport_cn"
)

// Builtin lists the built-in detectors.
var Builtin = []string{CNIDCard, BankCard, CNMobile, Email, IPv4, IPv6, PassportCN}

// Custom is an operator-defined detector.
type Custom struct {
	Name    string
	Pattern string // RE2 syntax
}

// Set is a compiled set of detectors. It is safe for concurrent use.
type Set struct {
	digits   bool // any detector that works on digit runs
	id, card bool
	mobile   bool
	email    bool
	ipv4     bool
	ipv6     bool
	passport bool
	custom   []compiled
	names    []string
}

// Names lists the detectors of the set, built-in and custom.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	out := slices.Clone(s.names)
	for _, c := range s.custom {
		out = append(out, c.name)
	}
	return out
}

type compiled struct {
	name string
	re   *regexp.Regexp
}

// New compiles the named built-ins and the custom patterns (each once).
// An unknown name, a custom name that shadows a built-in or repeats, or a
// pattern that does not compile is an error naming it.
func New(names []string, custom []Custom) (*Set, error) {
	s := &Set{}
	for _, n := range names {
		switch n {
		case CNIDCard:
			s.id = true
		case BankCard:
			s.card = true
		case CNMobile:
			s.mobile = true
		case Email:
			s.email = true
		case IPv4:
			s.ipv4 = true
		case IPv6:
			s.ipv6 = true
		case PassportCN:
			s.passport = true
		default:
			return nil, fmt.Errorf("unknown detector %q (want one of %v)", n, Builtin)
		}
	}
	s.digits = s.id || s.card || s.mobile
	s.names = slices.Clone(names)
	seen := map[string]bool{}
	for _, c := range custom {
		if c.Name == "" || slices.Contains(Builtin, c.Name) || seen[c.Name] {
			return nil, fmt.Errorf("custom detector %q: name must be set, unique and not a built-in's", c.Name)
		}
		seen[c.Name] = true
		re, err := regexp.Compile(c.Pattern)
		if err != nil {
			return nil, fmt.Errorf("custom detector %q: %w", c.Name, err)
		}
		if re.MatchString("") {
			return nil, fmt.Errorf("custom detector %q: pattern %q matches the empty string", c.Name, c.Pattern)
		}
		s.custom = append(s.custom, compiled{c.Name, re})
	}
	return s, nil
}

// Empty reports whether the set detects nothing.
func (s *Set) Empty() bool {
	return s == nil || !s.digits && !s.email && !s.ipv4 && !s.ipv6 && !s.passport && len(s.custom) == 0
}

// Find appends the finds in text to dst, sorted by start, without
// overlaps (the earlier and then the longer find wins).
func (s *Set) Find(dst []Match, text string) []Match {
	return find(s, dst, text, strings.IndexByte, (*regexp.Regexp).FindAllStringIndex)
}

// FindBytes is Find over bytes, read in place.
func (s *Set) FindBytes(dst []Match, text []byte) []Match {
	return find(s, dst, text, bytes.IndexByte, (*regexp.Regexp).FindAllIndex)
}

// find is Find for either; indexByte and findAll are the string or bytes
// functions, passed in rather than chosen by a type switch, whose
// conversion to an interface may allocate.
func find[T chars.Text](s *Set, dst []Match, text T, indexByte func(T, byte) int,
	findAll func(*regexp.Regexp, T, int) [][]int) []Match {
	if s.Empty() {
		return dst
	}
	base := len(dst)
	if s.digits || s.ipv4 || s.passport {
		dst = findDigits(s, dst, text)
	}
	if s.email {
		dst = findEmails(dst, text, indexByte)
	}
	// The IPv6 scanner looks at every hex letter; text without ':' cannot
	// hold an address.
	if s.ipv6 && indexByte(text, ':') >= 0 {
		dst = findIPv6(dst, text)
	}
	for _, c := range s.custom {
		for _, loc := range findAll(c.re, text, -1) {
			dst = append(dst, Match{Start: loc[0], End: loc[1], Category: c.name})
		}
	}
	return Resolve(dst, base)
}

// Resolve sorts dst[base:] by start and drops finds that overlap an
// earlier one (at the same start, the longer wins).
func Resolve(dst []Match, base int) []Match {
	ms := dst[base:]
	if len(ms) < 2 {
		return dst
	}
	slices.SortStableFunc(ms, func(a, b Match) int {
		if a.Start != b.Start {
			return a.Start - b.Start
		}
		return b.End - a.End
	})
	out := ms[:1]
	for _, m := range ms[1:] {
		if m.Start >= out[len(out)-1].End {
			out = append(out, m)
		}
	}
	return dst[:base+len(out)]
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func isAlpha(b byte) bool { return b|0x20 >= 'a' && b|0x20 <= 'z' }

// isWord is an ASCII identifier byte: a find must not touch one, so
// numbers inside identifiers (ORD13812345678, id_110101...) are left.
func isWord(b byte) bool { return isDigit(b) || isAlpha(b) || b == '_' }

// boundaryBefore reports whether a token may start at i.
func boundaryBefore[T chars.Text](text T, i int) bool { return i == 0 || !isWord(text[i-1]) }

// boundaryAfter reports whether a token may end at j.
func boundaryAfter[T chars.Text](text T, j int) bool { return j == len(text) || !isWord(text[j]) }

// decimalNeighbour reports whether the digit run text[i:j] is part of a
// larger dotted number (3.14159..., 1.2.3.4, 12345.67).
func decimalNeighbour[T chars.Text](text T, i, j int) bool {
	return i >= 2 && text[i-1] == '.' && isDigit(text[i-2]) ||
		j+1 < len(text) && text[j] == '.' && isDigit(text[j+1])
}

func mk(start, end int, category string) Match {
	return Match{Start: start, End: end, Category: category}
}
