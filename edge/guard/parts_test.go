package guard

import (
	"testing"

	"github.com/strait/strait/edge/guard/detect"
)

func BenchmarkParts(b *testing.B) {
	p := benchPolicy(b)
	body := benchBody()
	var texts []string
	_ = walkPlain(body, func(w *walker, s span) error {
		t, _ := decodeString(body[s.start:s.end])
		texts = append(texts, t)
		return nil
	}, nil)
	var dst []detect.Match
	b.Run("walk", func(b *testing.B) {
		for b.Loop() {
			_ = walkPlain(body, func(w *walker, s span) error { return nil }, nil)
		}
	})
	b.Run("words", func(b *testing.B) {
		for b.Loop() {
			for _, t := range texts {
				dst = p.words.Find(dst[:0], t)
			}
		}
	})
	b.Run("detectors", func(b *testing.B) {
		for b.Loop() {
			for _, t := range texts {
				dst = p.detectors.Find(dst[:0], t)
			}
		}
	})
	for _, name := range detect.Builtin {
		set, _ := detect.New([]string{name}, nil)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				for _, t := range texts {
					dst = set.Find(dst[:0], t)
				}
			}
		})
	}
}
