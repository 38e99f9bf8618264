package detect

import (
	"net/netip"
	"strings"
)

// findEmails finds addr-spec e-mail addresses (dot-atom local part, a
// domain of at least two labels and an alphabetic top-level label) around
// each '@'. Retina asset names (icon@2x.png) are not addresses.
func findEmails(dst []Match, text string) []Match {
	from := 0
	for {
		at := strings.IndexByte(text[from:], '@')
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
		if local == "" || len(local) > 64 || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
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

func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(labels) < 2 || len(d) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
	}
	tld := labels[len(labels)-1]
	if len(tld) < 2 {
		return false
	}
	for k := 0; k < len(tld); k++ {
		if !isAlpha(tld[k]) {
			return false
		}
	}
	first := labels[0] // 2x, 3x: image scale suffixes
	return !(len(labels) == 2 && len(first) >= 2 && first[len(first)-1]|0x20 == 'x' && allDigits(first[:len(first)-1]))
}

func allDigits(s string) bool {
	for k := 0; k < len(s); k++ {
		if !isDigit(s[k]) {
			return false
		}
	}
	return s != ""
}

// ipv4At reads a dotted-quad address starting at text[i] (a digit at a
// token's start): four octets 0–255 without leading zeros, not part of a
// longer dotted number (OIDs, version strings) or an identifier.
func ipv4At(text string, i int) (int, bool) {
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

func octet(s string) bool {
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
func findIPv6(dst []Match, text string) []Match {
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

func plausibleIPv6(s string) bool {
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
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

// passportAt reads a Chinese passport number whose digits are the run
// text[i:j]: E, G, D, S or P and eight digits, or E, a letter other than I
// and O, and seven digits (the e-passport series), upper case, as a whole
// word.
func passportAt(text string, i, j int) (Match, bool) {
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
