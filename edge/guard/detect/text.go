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

// findIPv4 finds dotted-quad addresses: four octets 0–255 without leading
// zeros, not part of a longer dotted number (OIDs, version strings) or an
// identifier.
func findIPv4(dst []Match, text string) []Match {
	for i := 0; i < len(text); i++ {
		if !isDigit(text[i]) || !boundaryBefore(text, i) || i > 0 && text[i-1] == '.' {
			continue
		}
		j, ok := i, true
		for part := 0; part < 4 && ok; part++ {
			if part > 0 {
				if j >= len(text) || text[j] != '.' {
					ok = false
					break
				}
				j++
			}
			k := j
			for k < len(text) && isDigit(text[k]) && k-j < 4 {
				k++
			}
			ok = octet(text[j:k])
			j = k
		}
		if ok && boundaryAfter(text, j) && !(j+1 < len(text) && text[j] == '.' && isDigit(text[j+1])) {
			dst = append(dst, mk(i, j, IPv4))
		}
		for i < len(text)-1 && isDigit(text[i+1]) {
			i++ // the next candidate starts after this digit run
		}
	}
	return dst
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

// findPassports finds Chinese passport numbers: E, G, D, S or P and eight
// digits, or E, a letter other than I and O, and seven digits (the
// e-passport series), upper case, as a whole word.
func findPassports(dst []Match, text string) []Match {
	for i := 0; i+9 <= len(text); i++ {
		c := text[i]
		switch c {
		case 'E', 'G', 'D', 'S', 'P':
		default:
			continue
		}
		if !boundaryBefore(text, i) || !boundaryAfter(text, i+9) {
			continue
		}
		second := text[i+1]
		ok := isDigit(second) || c == 'E' && second >= 'A' && second <= 'Z' && second != 'I' && second != 'O'
		if ok && allDigits(text[i+2:i+9]) {
			dst = append(dst, mk(i, i+9, PassportCN))
			i += 8
		}
	}
	return dst
}
