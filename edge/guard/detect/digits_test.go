package detect

import "testing"

// TestNextDigit: the eight-byte skip stops at the first digit wherever it
// stands, and never at bytes next to the digits (/ : and non-ASCII).
func TestNextDigit(t *testing.T) {
	for n := 0; n < 20; n++ {
		for at := 0; at <= n; at++ {
			b := make([]byte, n)
			for k := range b {
				b[k] = "/:\xb0\xb9\xff a"[k%7]
			}
			want := n
			if at < n {
				b[at], want = "0123456789"[at%10], at
			}
			if got := nextDigit(b, 0); got != want {
				t.Fatalf("nextDigit(%q) = %d, want %d", b, got, want)
			}
			if got := nextDigit(string(b), 0); got != want {
				t.Fatalf("nextDigit(string %q) = %d, want %d", b, got, want)
			}
		}
	}
}
