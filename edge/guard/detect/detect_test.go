package detect

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// labelled is one corpus line: the text without markers and the finds it
// must yield.
type labelled struct {
	line int
	text string
	want []Match
}

// loadCorpus reads testdata/corpus.txt ([[category:value]] marks a find).
func loadCorpus(t testing.TB) []labelled {
	f, err := os.Open("testdata/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []labelled
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		if raw == "" || strings.HasPrefix(raw, "#") {
			continue
		}
		c := labelled{line: n}
		var b strings.Builder
		for {
			i := strings.Index(raw, "[[")
			if i < 0 {
				b.WriteString(raw)
				break
			}
			j := strings.Index(raw[i:], "]]")
			cat, val, ok := strings.Cut(raw[i+2:i+j], ":")
			if j < 0 || !ok {
				t.Fatalf("corpus line %d: bad marker", n)
			}
			b.WriteString(raw[:i])
			c.want = append(c.want, Match{Start: b.Len(), End: b.Len() + len(val), Category: cat})
			b.WriteString(val)
			raw = raw[i+j+2:]
		}
		c.text = b.String()
		out = append(out, c)
	}
	return out
}

// score counts, per detector, finds that are right (tp), finds that are
// not in the corpus (fp) and corpus values not found (fn).
type score struct{ tp, fp, fn int }

func (s score) precision() float64 { return ratio(s.tp, s.tp+s.fp) }
func (s score) recall() float64    { return ratio(s.tp, s.tp+s.fn) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 1
	}
	return float64(a) / float64(b)
}

// TestCorpusPrecisionRecall runs every built-in detector over the corpus
// of true positives and near misses and holds each to its precision and
// recall.
func TestCorpusPrecisionRecall(t *testing.T) {
	set, err := New(Builtin, nil)
	if err != nil {
		t.Fatal(err)
	}
	scores := map[string]*score{}
	for _, name := range Builtin {
		scores[name] = &score{}
	}
	for _, c := range loadCorpus(t) {
		got := set.Find(nil, c.text)
		for _, m := range got {
			if contains(c.want, m) {
				scores[m.Category].tp++
			} else {
				scores[m.Category].fp++
				t.Logf("line %d: false positive %s %q", c.line, m.Category, c.text[m.Start:m.End])
			}
		}
		for _, w := range c.want {
			if !contains(got, w) {
				scores[w.Category].fn++
				t.Logf("line %d: missed %s %q", c.line, w.Category, c.text[w.Start:w.End])
			}
		}
	}
	var table strings.Builder
	fmt.Fprintf(&table, "| detector | true pos. | false pos. | missed | precision | recall |\n|---|---|---|---|---|---|\n")
	for _, name := range Builtin {
		s := scores[name]
		fmt.Fprintf(&table, "| %s | %d | %d | %d | %.2f | %.2f |\n", name, s.tp, s.fp, s.fn, s.precision(), s.recall())
		if s.tp == 0 {
			t.Errorf("%s: the corpus has no true positive for it", name)
		}
		if s.precision() < 0.95 || s.recall() < 0.95 {
			t.Errorf("%s: precision %.2f, recall %.2f; want both at least 0.95", name, s.precision(), s.recall())
		}
	}
	t.Log("\n" + table.String())
}

func contains(ms []Match, m Match) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		names  []string
		custom []Custom
		want   string
	}{
		{[]string{"cn_phone"}, nil, `unknown detector "cn_phone"`},
		{nil, []Custom{{Name: "emp", Pattern: `EMP-(\d{6}`}}, `custom detector "emp": error parsing regexp`},
		{nil, []Custom{{Name: "emp", Pattern: `\d*`}}, "matches the empty string"},
		{nil, []Custom{{Name: "email", Pattern: `x`}}, "not a built-in"},
		{nil, []Custom{{Name: "a", Pattern: `x`}, {Name: "a", Pattern: `y`}}, "unique"},
		{nil, []Custom{{Name: "a", Pattern: `(?P<x>a)\1`}}, "error parsing regexp"}, // RE2 has no backreferences
	} {
		_, err := New(tc.names, tc.custom)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%v, %v) = %v; want an error containing %q", tc.names, tc.custom, err, tc.want)
		}
	}
}

func TestCustom(t *testing.T) {
	set, err := New([]string{CNMobile}, []Custom{{Name: "employee_id", Pattern: `EMP-\d{6}`}})
	if err != nil {
		t.Fatal(err)
	}
	text := "EMP-123456 called 13812345678"
	got := set.Find(nil, text)
	want := []Match{mk(0, 10, "employee_id"), mk(18, 29, CNMobile)}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("Find = %v; want %v", got, want)
	}
}

func TestEmptySetFindsNothing(t *testing.T) {
	var s *Set
	if got := s.Find(nil, "13812345678"); len(got) != 0 {
		t.Fatalf("nil set found %v", got)
	}
}

// FuzzFind holds the invariants of every find on any input: in bounds,
// sorted, not overlapping, found again when cut out on its own, and the
// same over bytes as over a string.
func FuzzFind(f *testing.F) {
	for _, c := range loadCorpus(f) {
		f.Add(c.text)
	}
	set, err := New(Builtin, []Custom{{Name: "emp", Pattern: `EMP-\d{6}`}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if got, want := set.FindBytes(nil, []byte(text)), set.Find(nil, text); !slices.Equal(got, want) {
			t.Fatalf("FindBytes(%q) = %v; Find %v", text, got, want)
		}
		prev := 0
		for _, m := range set.Find(nil, text) {
			if m.Start < prev || m.End <= m.Start || m.End > len(text) {
				t.Fatalf("bad match %v after %d in %q", m, prev, text)
			}
			prev = m.End
			alone := text[m.Start:m.End]
			again := set.Find(nil, alone)
			if len(again) != 1 || again[0].Start != 0 || again[0].End != len(alone) {
				t.Fatalf("%s %q not found alone: %v", m.Category, alone, again)
			}
		}
	})
}
