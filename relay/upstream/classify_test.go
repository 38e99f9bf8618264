package upstream

import (
	"net/http"
	"testing"
	"time"
)

// TestClassify pins which answers are retried, and how they mark the key.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status  int
		body    string
		verdict Verdict
		outcome Outcome
	}{
		{200, "", Deliver, Worked},
		{400, "", Deliver, Worked},
		{404, "", Deliver, Worked},
		{413, "", Deliver, Worked},
		{429, `{"error":{"type":"requests","code":"rate_limit_exceeded"}}`, RotateKey, RateLimited},
		{429, `{"error":{"type":"insufficient_quota","code":"insufficient_quota"}}`, DisableKey, Rejected},
		{401, "", DisableKey, Rejected},
		{402, "", DisableKey, Rejected},
		{403, "", DisableKey, Rejected},
		{500, "", Backoff, Inconclusive},
		{502, "", Backoff, Inconclusive},
		{503, "", Backoff, Inconclusive},
		{504, "", Backoff, Inconclusive},
		{529, "", Backoff, Inconclusive},
		{501, "", Deliver, Worked},
	} {
		if v, o := Classify(tc.status, []byte(tc.body)); v != tc.verdict || o != tc.outcome {
			t.Errorf("Classify(%d, %s) = %v, %v; want %v, %v", tc.status, tc.body, v, o, tc.verdict, tc.outcome)
		}
	}
}

// TestRetryAfter reads OpenAI's retry-after-ms before Retry-After, in
// seconds or as an HTTP date, and ignores what it cannot read.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{}, 0},
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {"3"}, "Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
		{http.Header{"Retry-After": {now.Add(7 * time.Second).Format(http.TimeFormat)}}, 7 * time.Second},
		{http.Header{"Retry-After": {now.Add(-7 * time.Second).Format(http.TimeFormat)}}, 0},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{"Retry-After": {"-4"}}, 0},
	} {
		if got := RetryAfter(tc.h, now); got != tc.want {
			t.Errorf("RetryAfter(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// TestKeyPoolWeightsAndWait proves the weighted choice follows the weights
// and that a pool with every key cooling reports the earliest recovery.
func TestKeyPoolWeightsAndWait(t *testing.T) {
	now := time.Unix(1000, 0)
	p, err := newKeyPool("p", keys("a", "b"), []int{3, 1}, KeyPolicy{}.withDefaults(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.now = func() time.Time { return now }
	counts := map[string]int{}
	for n := range 4 {
		p.pick = func(int) int { return n } // each point of the total weight once
		s, _ := p.Acquire(nil)
		counts[s.Key.Reveal()]++
		s.Report(Worked, 0)
	}
	if counts["a"] != 3 || counts["b"] != 1 {
		t.Fatalf("choices %v, want a 3 times and b once", counts)
	}
	a, _ := p.Acquire(nil)
	a.Report(RateLimited, 5*time.Second)
	b, _ := p.Acquire(nil)
	b.Report(RateLimited, 2*time.Hour) // capped at MaxCooldown (60s)
	if s, wait := p.Acquire(nil); s != nil || wait != 5*time.Second {
		t.Fatalf("all cooling: got %v, wait %v; want nil, 5s", s, wait)
	}
	now = now.Add(5 * time.Second)
	if s, _ := p.Acquire(nil); s == nil || s.Key.Reveal() != a.Key.Reveal() {
		t.Fatalf("after 5s: got %v, want the first key back", s)
	}
	now = now.Add(56 * time.Second)
	if s, _ := p.Acquire(map[*KeySlot]bool{a: true}); s == nil || s.Key.Reveal() != b.Key.Reveal() {
		t.Fatalf("after the 60s cap: got %v, want the second key back", s)
	}
}
