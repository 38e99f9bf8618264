package guard

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strait/strait/proto/llmapi"
)

// benchPolicy is every detector and 10 000 words (two to six Chinese
// characters, a quarter ASCII words).
func benchPolicy(b testing.TB) *Policy {
	rng := rand.New(rand.NewPCG(5, 6))
	var list strings.Builder
	for range 10000 {
		if rng.IntN(4) == 0 {
			for range 4 + rng.IntN(6) {
				list.WriteByte(byte('a' + rng.IntN(26)))
			}
		} else {
			for range 2 + rng.IntN(5) {
				list.WriteRune(rune(0x4E00 + rng.IntN(3000)))
			}
		}
		list.WriteString("\tterms\n")
	}
	return compile(b, &Config{Detectors: allDetectors, Custom: []CustomPattern{{Name: "employee_id", Pattern: `EMP-\d{6}`}},
		Words: WordsFile{File: wordsFile(b, list.String())}, Actions: map[string]Action{"terms": Flag}})
}

// benchBody is a 4 KiB chat request: a system prompt and three turns of
// mixed Chinese and English with a phone number, an ID number and an
// e-mail address.
func benchBody() []byte {
	rng := rand.New(rand.NewPCG(7, 8))
	turn := func(n int) string {
		var b strings.Builder
		for b.Len() < n {
			if rng.IntN(2) == 0 {
				for range 12 {
					b.WriteRune(rune(0x4E00 + rng.IntN(3000)))
				}
			} else {
				b.WriteString("please summarise the order 20241205123456789 for the client at 10.0.0.1, ")
			}
		}
		return b.String()
	}
	msgs := []map[string]string{{"role": "system", "content": turn(700)},
		{"role": "user", "content": turn(1100) + " 手机13812345678 身份证110101199003071233 "},
		{"role": "assistant", "content": turn(1100)},
		{"role": "user", "content": turn(1100) + " mail li.si@example.com"}}
	body, _ := json.Marshal(map[string]any{"model": "gpt-4o", "messages": msgs})
	return body
}

// BenchmarkInspect4KiB times the guard on a 4 KiB prompt with every
// detector and 10 000 words, and reports the p99 of single calls. A call
// is Inspect and the Release the edge does when the request is over.
func BenchmarkInspect4KiB(b *testing.B) {
	p := benchPolicy(b)
	body := benchBody()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	// Room for the timings up front: growing the slice in the loop would
	// be garbage of the benchmark's own.
	times := make([]time.Duration, 0, 1<<16)
	cpu0 := cpuTime()
	for b.Loop() {
		t0 := time.Now()
		o, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", body)
		if err != nil {
			b.Fatal(err)
		}
		masked := o.Vault.Len()
		o.Release() // as the edge does when the request is over
		times = append(times, time.Since(t0))
		if masked != 4 {
			b.Fatalf("%d masked", masked)
		}
	}
	// CPU time per call is what the guard costs whatever else the machine
	// runs; the wall-clock percentiles include waiting for a core.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1000/float64(len(times)), "cpu-µs/op")
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds())/1000, "p99-µs")
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds())/1000, "p50-µs")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkInspectOff is the guard switched off (no policy for the key).
func BenchmarkInspectOff(b *testing.B) {
	var p *Policy
	body := benchBody()
	for b.Loop() {
		if _, err := p.Inspect(llmapi.OpenAI, "/v1/chat/completions", body); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchBodySize(t *testing.T) {
	if n := len(benchBody()); n < 4096 || n > 4700 {
		t.Fatalf("bench body is %d bytes", n)
	}
}
