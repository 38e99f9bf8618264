// Package chars holds what the guard's scanners share to read text that
// is either a string or bytes read in place (a request body is scanned
// without being copied into strings).
package chars

import "unicode/utf8"

// Text is a string or bytes.
type Text interface{ ~string | ~[]byte }

// DecodeRune is utf8.DecodeRune of s[i:]: the rune and its size, and
// (utf8.RuneError, 1) for an invalid byte. ASCII and three-byte runes
// (CJK) are decoded inline; the rest by package utf8.
func DecodeRune[T Text](s T, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	if i+2 < len(s) && s[i]&0xF0 == 0xE0 && s[i+1]&0xC0 == 0x80 && s[i+2]&0xC0 == 0x80 {
		// Not overlong, not a surrogate.
		if r := rune(s[i]&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F); r >= 0x800 && (r < 0xD800 || r > 0xDFFF) {
			return r, 3
		}
	}
	return decodeRest(s, i)
}

func decodeRest[T Text](s T, i int) (rune, int) {
	var b [utf8.UTFMax]byte
	n := copy(b[:], s[i:]) // a copy rather than a type switch, whose interface conversion may allocate
	return utf8.DecodeRune(b[:n])
}

// Valid reports whether s is valid UTF-8.
func Valid[T Text](s T) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := DecodeRune(s, i)
		if r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
	}
	return true
}
