package quota

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/usage"
)

func at(s string) func() time.Time {
	t, _ := time.Parse(time.RFC3339, s)
	return func() time.Time { return t }
}

func TestReserveSettle(t *testing.T) {
	l := NewLedger(at("2026-11-23T23:00:00Z"))
	lim := auth.Limits{DailyTokens: 1000}
	r1, ex := l.Reserve("a", lim, Totals{Tokens: 600})
	if ex != nil {
		t.Fatal(ex)
	}
	// In flight, 600 are held: a second 600 would overrun.
	_, ex = l.Reserve("a", lim, Totals{Tokens: 600})
	if ex == nil || ex.Quota != "daily token quota" || ex.Used != 600 || !ex.Reset.Equal(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("exceeded = %+v", ex)
	}
	if !strings.Contains(ex.Error(), "daily token quota") {
		t.Errorf("message %q does not name the quota", ex.Error())
	}
	r1.Settle(Totals{Tokens: 100}) // it used far less than estimated
	r1.Settle(Totals{Tokens: 100}) // a second Settle is a no-op
	if u := l.Used("a", "2026-11-23"); u.Tokens != 100 {
		t.Fatalf("used %+v after settle", u)
	}
	if u := l.Used("a", "2026-11"); u.Tokens != 100 {
		t.Fatalf("month used %+v", u)
	}
	if _, ex = l.Reserve("a", lim, Totals{Tokens: 600}); ex != nil {
		t.Fatal(ex)
	}
	if _, ex = l.Reserve("b", lim, Totals{Tokens: 1000}); ex != nil {
		t.Fatalf("another client shares the quota: %v", ex)
	}
}

// TestParallelCannotOverrun: of many concurrent requests, only as many as
// fit the quota get a reservation.
func TestParallelCannotOverrun(t *testing.T) {
	l := NewLedger(at("2026-11-23T10:00:00Z"))
	lim := auth.Limits{MonthlyTokens: 10_000}
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for range 100 {
		wg.Go(func() {
			if r, ex := l.Reserve("a", lim, Totals{Tokens: 1000}); ex == nil {
				mu.Lock()
				granted++
				mu.Unlock()
				r.Settle(Totals{Tokens: 1000})
			}
		})
	}
	wg.Wait()
	if granted != 10 {
		t.Fatalf("%d requests of 1000 granted under a quota of 10000", granted)
	}
}

func TestBudgetAndLoad(t *testing.T) {
	l := NewLedger(at("2026-11-30T10:00:00Z"))
	l.Load("a", "2026-11", Totals{Cost: 9.5})
	_, ex := l.Reserve("a", auth.Limits{MonthlyBudget: 10}, Totals{Cost: 1})
	if ex == nil || !ex.Budget || ex.Quota != "monthly spend budget" || !ex.Reset.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("exceeded = %+v", ex)
	}
	if !strings.Contains(ex.Error(), "$9.50 of $10.00") {
		t.Errorf("message %q", ex.Error())
	}
}

func TestPrices(t *testing.T) {
	p := Prices{{Pattern: "gpt-4o-mini*", Price: Price{Input: 0.15, Output: 0.6, CacheRead: 0.075}},
		{Pattern: "gpt-4o*", Price: Price{Input: 2.5, Output: 10}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	u := usage.Usage{Input: 1_000_000, CacheRead: 1_000_000, Output: 1_000_000}
	if c := p.Cost("gpt-4o-mini-2024-07-18", u); c < 0.8249 || c > 0.8251 {
		t.Errorf("mini cost %v, want 0.825", c)
	}
	if c := p.Cost("gpt-4o", u); c != 15 { // cache read at the input price
		t.Errorf("4o cost %v, want 15", c)
	}
	if c := p.Cost("claude-x", u); c != 0 {
		t.Errorf("unpriced model cost %v", c)
	}
	if (Prices{{Pattern: "[", Price: Price{}}}).Validate() == nil {
		t.Error("bad pattern accepted")
	}
}

// TestPastPeriodsForgotten: the first reservation of a new day drops the
// totals of past days (and months), which used to stay forever; Forget also
// drops clients that are gone.
func TestPastPeriodsForgotten(t *testing.T) {
	now := at("2026-11-30T23:00:00Z")
	l := NewLedger(func() time.Time { return now() })
	res, _ := l.Reserve("a", auth.Limits{}, Totals{Tokens: 5})
	res.Settle(Totals{Tokens: 5})
	res, _ = l.Reserve("b", auth.Limits{}, Totals{Tokens: 7})
	res.Settle(Totals{Tokens: 7})
	if l.Len() != 4 {
		t.Fatalf("%d entries, want 4", l.Len())
	}
	now = at("2026-12-01T00:00:01Z")
	if _, ex := l.Reserve("a", auth.Limits{DailyTokens: 10}, Totals{Tokens: 10}); ex != nil {
		t.Fatalf("new day: %v", ex)
	}
	if l.Len() != 0 || l.Used("a", "2026-11-30").Tokens != 0 {
		t.Fatalf("past periods kept: %d entries", l.Len())
	}
	l.Load("a", "2026-12-01", Totals{Tokens: 1})
	l.Load("b", "2026-12-01", Totals{Tokens: 1})
	l.Forget(func(c string) bool { return c == "a" })
	if l.Len() != 1 || l.Used("b", "2026-12-01").Tokens != 0 {
		t.Fatalf("removed client kept: %d entries", l.Len())
	}
}

// TestSettledReservationsLeaveNoTrace: costs are floats, and releasing holds
// in another order than they were taken (0.1+0.2-0.1-0.2) used to leave a
// crumb that kept the period's reservation entry forever, one per client
// and day, and counted it as used.
func TestSettledReservationsLeaveNoTrace(t *testing.T) {
	for _, tc := range []struct {
		name  string
		costs []float64 // reserved in this order, settled in reverse
	}{
		{"one", []float64{0.1}},
		{"tenth and fifth", []float64{0.1, 0.2}},
		{"mixed", []float64{0.7, 0.1, 0.2, 1e-9, 3.3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLedger(at("2026-11-23T12:00:00Z"))
			var held []*Reservation
			for _, c := range tc.costs {
				r, ex := l.Reserve("a", auth.Limits{}, Totals{Tokens: 1, Cost: c})
				if ex != nil {
					t.Fatal(ex)
				}
				held = append(held, r)
			}
			for i := len(held) - 1; i >= 0; i-- {
				held[i].Settle(Totals{})
			}
			if n := len(l.reserved); n != 0 {
				t.Errorf("%d reservation entries left with nothing in flight", n)
			}
			if u := l.Used("a", "2026-11-23"); u != (Totals{}) {
				t.Errorf("used %+v with nothing settled or in flight", u)
			}
		})
	}
}
