package chars

import (
	"testing"
	"unicode/utf8"
)

// FuzzDecodeRune: DecodeRune and Valid are package utf8's, over strings
// and bytes, at every offset.
func FuzzDecodeRune(f *testing.F) {
	for _, s := range []string{"abc", "中文", "\xe0\x80\x80", "\xed\xa0\x80", "\xef\xbf\xbd", "\xe4\xb8", "😀x", "\xff", "\xc3\xa9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i := 0; i < len(s); i++ {
			r, n := DecodeRune(s, i)
			wr, wn := utf8.DecodeRuneInString(s[i:])
			br, bn := DecodeRune([]byte(s), i)
			if r != wr || n != wn || br != wr || bn != wn {
				t.Fatalf("DecodeRune(%q, %d) = %U %d, bytes %U %d; utf8 %U %d", s, i, r, n, br, bn, wr, wn)
			}
		}
		if Valid(s) != utf8.ValidString(s) || Valid([]byte(s)) != utf8.ValidString(s) {
			t.Fatalf("Valid(%q) = %v; utf8 %v", s, Valid(s), utf8.ValidString(s))
		}
	})
}
