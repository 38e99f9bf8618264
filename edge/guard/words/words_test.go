package words

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/strait/strait/edge/guard/detect"
)

func TestFindNormalised(t *testing.T) {
	m := New([]Term{{"falun", "religion"}, {"机密文件", "secret"}, {"Project X", "codename"}, {"zq", "short"}, {"sex", "sexy"}})
	for _, tc := range []struct {
		text string
		want []string // "category:original text"
	}{
		{"about falun gong", []string{"religion:falun"}},
		{"ＦＡＬＵＮ", []string{"religion:ＦＡＬＵＮ"}},
		{"f a l u n", []string{"religion:f a l u n"}},
		{"F.a-L_u/N!", []string{"religion:F.a-L_u/N"}},
		{"这是机 密·文\u200b件。", []string{"secret:机 密·文\u200b件"}},
		{"projectx and PROJECT-X", []string{"codename:projectx", "codename:PROJECT-X"}},
		{"fal un and falu", []string{"religion:fal un"}},
		{"xzq zqzq zq,zq", []string{"short:zq", "short:zq"}},
		{"Essex was expected", nil},
		{"sex", []string{"sexy:sex"}},
		{"ＳＥＸ！", []string{"sexy:ＳＥＸ"}},
		{"s e x y", []string{"sexy:s e x"}},
		{"中sex中", []string{"sexy:sex"}},
		{"nothing here", nil},
		{"", nil},
	} {
		var got []string
		for _, f := range m.Find(nil, tc.text) {
			got = append(got, f.Category+":"+tc.text[f.Start:f.End])
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("Find(%q) = %q; want %q", tc.text, got, tc.want)
		}
	}
}

func TestOverlapsKeepEarlierLonger(t *testing.T) {
	m := New([]Term{{"abc", "a"}, {"bcd", "b"}, {"abcde", "c"}, {"de", "d"}})
	got := m.Find(nil, "abcde")
	if len(got) != 1 || got[0] != (detect.Match{Start: 0, End: 5, Category: "c", Word: true}) {
		t.Fatalf("got %v", got)
	}
}

func TestParse(t *testing.T) {
	terms, err := Parse(strings.NewReader("# list\nfalun\treligion\n\n机密\r\nsecret plan\tcodename \n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Term{{"falun", "religion"}, {"机密", DefaultCategory}, {"secret plan", "codename"}}
	if fmt.Sprint(terms) != fmt.Sprint(want) {
		t.Fatalf("Parse = %v; want %v", terms, want)
	}
	if _, err := Parse(strings.NewReader("ok\n -- \n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a term of punctuation only: err = %v", err)
	}
}

// naive finds every term by normalising the text to runes with offsets and
// comparing at every position: the reference the automaton must agree with.
func naive(terms []Term, text string) []detect.Match {
	type pos struct {
		r          rune
		start, end int
	}
	var norm []pos
	for i, r := range text {
		if f, ok := Fold(r); ok {
			norm = append(norm, pos{f, i, i + utf8.RuneLen(r)})
		}
	}
	var out []detect.Match
	seen := map[string]bool{}
	for _, t := range terms {
		var want []rune
		for _, r := range t.Text {
			if f, ok := Fold(r); ok {
				want = append(want, f)
			}
		}
		if seen[string(want)] {
			continue
		}
		seen[string(want)] = true
	next:
		for i := 0; i+len(want) <= len(norm); i++ {
			for k, r := range want {
				if norm[i+k].r != r {
					continue next
				}
			}
			start, end := norm[i].start, norm[i+len(want)-1].end
			if latinBefore(text, start) && latin(want[0]) || end < len(text) && latinAt(text, end) && latin(want[len(want)-1]) {
				continue
			}
			out = append(out, detect.Match{Start: start, End: end, Category: t.Category, Word: true})
		}
	}
	return detect.Resolve(out, 0)
}

// latinBefore: the rune before text[i] is a Latin letter or digit.
func latinBefore(text string, i int) bool {
	r, _ := utf8.DecodeLastRuneInString(text[:i])
	return i > 0 && latin(r)
}

func FuzzAgainstNaive(f *testing.F) {
	terms := []Term{{"he", "1"}, {"she", "2"}, {"his", "3"}, {"hers", "4"}, {"机密", "5"}, {"密文", "6"}, {"a", "7"}, {"ｘｙ", "8"}, {"密a", "9"}, {"b机", "10"},
		{"文", "11"}, {"Ｑz", "12"}}
	m := New(terms)
	for _, s := range []string{"ushers", "s h e", "机密文", "XY", "ahishers", "h\u200be", "ｑｚ 机 q z", "机·a 文"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got, want := m.Find(nil, text), naive(terms, text)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Find(%q) = %v; naive %v", text, got, want)
		}
		if b := m.FindBytes(nil, []byte(text)); fmt.Sprint(b) != fmt.Sprint(got) {
			t.Fatalf("FindBytes(%q) = %v; Find %v", text, b, got)
		}
	})
}

// TestManyTermsAgainstNaive: with thousands of terms (the pair filter
// then passes pairs that begin no term, and the trie has every shape) the
// matcher finds what the naive reference finds.
func TestManyTermsAgainstNaive(t *testing.T) {
	terms := benchTerms(3000)
	text := BenchText()[:2048]
	for _, term := range terms[:40] { // plant some, spaced and full-width
		text += " " + term.Text + "。" + strings.Join(strings.Split(term.Text, ""), " ")
	}
	m := New(terms)
	got, want := m.Find(nil, text), naive(terms, text)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Find = %v\nnaive %v", got, want)
	}
	if len(want) < 40 {
		t.Fatalf("only %d finds: the planted terms are not found", len(want))
	}
}

// benchTerms makes n distinct terms, mostly two to six Chinese characters,
// some ASCII words.
func benchTerms(n int) []Term {
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	var out []Term
	for len(out) < n {
		var b strings.Builder
		if rng.IntN(4) == 0 {
			for k := 0; k < 4+rng.IntN(6); k++ {
				b.WriteByte(byte('a' + rng.IntN(26)))
			}
		} else {
			for k := 0; k < 2+rng.IntN(5); k++ {
				b.WriteRune(rune(0x4E00 + rng.IntN(3000)))
			}
		}
		if s := b.String(); !seen[s] {
			seen[s] = true
			out = append(out, Term{s, "words"})
		}
	}
	return out
}

// BenchText is a 4 KiB prompt, half Chinese, half English, the mix the
// guard's budget is stated for.
func BenchText() string {
	rng := rand.New(rand.NewPCG(3, 4))
	var b strings.Builder
	for b.Len() < 4096 {
		if rng.IntN(2) == 0 {
			for k := 0; k < 20; k++ {
				b.WriteRune(rune(0x4E00 + rng.IntN(3000)))
			}
		} else {
			b.WriteString("The quick brown fox jumps over the lazy dog, again and again. ")
		}
	}
	return b.String()[:4096]
}

func BenchmarkFind10kTerms4KiB(b *testing.B) {
	m := New(benchTerms(10000))
	text := BenchText()
	var dst []detect.Match
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		dst = m.Find(dst[:0], text)
	}
}
