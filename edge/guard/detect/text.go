package detect

import (
	"net/netip"
	"strings"

	"github.com/strait/strait/edge/guard/internal/chars"
)

// findEmails finds addr-spec e-mail addresses (dot-atom local part, a
// domain of at least two labels and an alphabetic top-level label) around
// each '@'. Retina asset names (icon@2x.png) are not addresses.
func findEmails[T chars.Text](dst []Match, text T, indexByte func(T, byte) int) []Match {
	from := 0
	for {
		at := indexByte(text[from:], '@')
		if at < 0 {
			return dst
		}
		at += from
		from = at + 1
		i := at
		for i > 0 && localChar(text[i-1]) {
			i--
		}
		local := text[i:at]
		if len(local) == 0 || len(local) > 64 || local[0] == '.' || local[len(local)-1] == '.' || doubleDot(local) {
			continue
		}
		j := at + 1
		for j < len(text) && (isDigit(text[j]) || isAlpha(text[j]) || text[j] == '-' || text[j] == '.') {
			j++
		}
		for j > at+1 && (text[j-1] == '.' || text[j-1] == '-') {
			j-- // a sentence's full stop is not part of the domain
		}
		if !boundaryAfter(text, j) || !validDomain(text[at+1:j]) {
			continue
		}
		dst = append(dst, mk(i, j, Email))
		from = j
	}
}

func localChar(b byte) bool {
	return isDigit(b) || isAlpha(b) || strings.IndexByte("._%+-", b) >= 0
}

func doubleDot[T chars.Text](s T) bool {
	for k := 1; k < len(s); k++ {
		if s[k] == '.' && s[k-1] == '.' {
			return true
		}
	}
	return false
}

// validDomain: at least two dot-separated labels, none empty, longer than
// 63 or starting or ending with '-', an alphabetic top-level label of two
// or more letters, and not an image scale suffix (2x.png).
func validDomain[T chars.Text](d T) bool {
	if len(d) > 253 {
		return false
	}
	labels, start, firstEnd := 0, 0, 0
	for k := 0; k <= len(d); k++ {
		if k < len(d) && d[k] != '.' {
			continue
		}
		if k == start || k-start > 63 || d[start] == '-' || d[k-1] == '-' {
			return false
		}
		if labels == 0 {
			firstEnd = k
		}
		labels++
		start = k + 1
	}
	if labels < 2 {
		return false
	}
	tld := d[lastDot(d)+1:]
	if len(tld) < 2 {
		return false
	}
	for k := 0; k < len(tld); k++ {
		if !isAlpha(tld[k]) {
			return false
		}
	}
	first := d[:firstEnd] // 2x, 3x: image scale suffixes
	return !(labels == 2 && len(first) >= 2 && first[len(first)-1]|0x20 == 'x' && allDigits(first[:len(first)-1]))
}

func lastDot[T chars.Text](s T) int {
	for k := len(s) - 1; k >= 0; k-- {
		if s[k] == '.' {
			return k
		}
	}
	return -1
}

func allDigits[T chars.Text](s T) bool {
	for k := 0; k < len(s); k++ {
		if !isDigit(s[k]) {
			return false
		}
	}
	return len(s) > 0
}

// ipv4At reads a dotted-quad address starting at text[i] (a digit at a
// token's start): four octets 0–255 without leading zeros, not part of a
// longer dotted number (OIDs, version strings) or an identifier.
func ipv4At[T chars.Text](text T, i int) (int, bool) {
	j := i
	for part := 0; part < 4; part++ {
		if part > 0 {
			if j >= len(text) || text[j] != '.' {
				return 0, false
			}
			j++
		}
		k := j
		for k < len(text) && isDigit(text[k]) && k-j < 4 {
			k++
		}
		if !octet(text[j:k]) {
			return 0, false
		}
		j = k
	}
	return j, boundaryAfter(text, j) && !(j+1 < len(text) && text[j] == '.' && isDigit(text[j+1]))
}

func octet[T chars.Text](s T) bool {
	if len(s) == 0 || len(s) > 3 || len(s) > 1 && s[0] == '0' {
		return false
	}
	n := 0
	for k := 0; k < len(s); k++ {
		n = n*10 + int(s[k]-'0')
	}
	return n <= 255
}

func isHex(b byte) bool { return isDigit(b) || b|0x20 >= 'a' && b|0x20 <= 'f' }

// findIPv6 finds IPv6 addresses (RFC 4291 text forms, with :: and an
// embedded IPv4 tail). To leave times (12:30:45), MAC addresses and C++ or
// Rust paths (abc::def) alone, a find must parse as IPv6 and hold at least
// five hex digits, one of them a decimal digit.
func findIPv6[T chars.Text](dst []Match, text T) []Match {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if !(isHex(c) || c == ':') || !boundaryBefore(text, i) || i > 0 && (text[i-1] == ':' || text[i-1] == '.') {
			continue
		}
		j, colons := i, 0
		for j < len(text) && (isHex(text[j]) || text[j] == ':' || text[j] == '.') {
			if text[j] == ':' {
				colons++
			}
			j++
		}
		for j > i && text[j-1] == '.' {
			j--
		}
		if colons >= 2 && boundaryAfter(text, j) && plausibleIPv6(text[i:j]) {
			dst = append(dst, mk(i, j, IPv6))
		}
		i = j
	}
	return dst
}

func plausibleIPv6[T chars.Text](s T) bool {
	hex, dec := 0, false
	for k := 0; k < len(s); k++ {
		if isHex(s[k]) {
			hex++
			dec = dec || isDigit(s[k])
		}
	}
	if hex < 5 || !dec {
		return false
	}
	a, err := netip.ParseAddr(string(s))
	return err == nil && a.Is6()
}

// passportAt reads a Chinese passport number whose digits are the run
// text[i:j]: E, G, D, S or P and eight digits, or E, a letter other than I
// and O, and seven digits (the e-passport series), upper case, as a whole
// word.
func passportAt[T chars.Text](text T, i, j int) (Match, bool) {
	if !boundaryAfter(text, j) {
		return Match{}, false
	}
	switch n := j - i; {
	case n == 8 && i >= 1 && strings.IndexByte("EGDSP", text[i-1]) >= 0 && boundaryBefore(text, i-1):
		return mk(i-1, j, PassportCN), true
	case n == 7 && i >= 2 && text[i-2] == 'E' && text[i-1] >= 'A' && text[i-1] <= 'Z' && text[i-1] != 'I' && text[i-1] != 'O' &&
		boundaryBefore(text, i-2):
		return mk(i-2, j, PassportCN), true
	}
	return Match{}, false
}
