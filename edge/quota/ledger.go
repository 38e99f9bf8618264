package quota

import (
	"fmt"
	"sync"
	"time"

	"github.com/strait/strait/edge/auth"
)

// Totals are tokens and spend.
type Totals struct {
	Tokens int64
	Cost   float64 // USD
}

func (t Totals) plus(o Totals) Totals  { return Totals{t.Tokens + o.Tokens, t.Cost + o.Cost} }
func (t Totals) minus(o Totals) Totals { return Totals{t.Tokens - o.Tokens, t.Cost - o.Cost} }

// Day and Month name the UTC periods quotas count in.
func Day(t time.Time) string   { return t.UTC().Format("2006-01-02") }
func Month(t time.Time) string { return t.UTC().Format("2006-01") }

// Exceeded says which quota a request would cross.
type Exceeded struct {
	Quota string  // e.g. "daily token quota"
	Limit float64 // tokens, or USD for budgets
	Used  float64 // settled plus reserved by requests in flight
	Reset time.Time
	// Budget is true for a spend budget (USD), false for tokens.
	Budget bool
}

func (e *Exceeded) Error() string {
	unit := func(v float64) string { return fmt.Sprintf("%.0f tokens", v) }
	if e.Budget {
		unit = func(v float64) string { return fmt.Sprintf("$%.2f", v) }
	}
	return fmt.Sprintf("Strait %s exhausted: %s of %s used (including requests in flight); it resets at %s",
		e.Quota, unit(e.Used), unit(e.Limit), e.Reset.UTC().Format(time.RFC3339))
}

// Check is one of a client's quotas, in the order Reserve checks them.
type Check struct {
	Name    string  // e.g. "daily token quota"
	Limit   float64 // tokens, or USD for budgets; zero: no limit
	Budget  bool    // a spend budget (USD), else tokens
	Monthly bool    // counted per UTC month, else per UTC day
	Reset   time.Time
}

// Checks lists lim's quotas at now: daily and monthly tokens, then daily
// and monthly spend. A shared store checks the same list in its own
// script, so both refuse with the same words.
func Checks(lim auth.Limits, now time.Time) [4]Check {
	now = now.UTC()
	tomorrow := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
	nextMonth := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	return [4]Check{
		{"daily token quota", float64(lim.DailyTokens), false, false, tomorrow},
		{"monthly token quota", float64(lim.MonthlyTokens), false, true, nextMonth},
		{"daily spend budget", lim.DailyBudget, true, false, tomorrow},
		{"monthly spend budget", lim.MonthlyBudget, true, true, nextMonth},
	}
}

// Of picks what c counts from the day's and month's totals and the
// request's want: the used amount and the wanted one.
func (c Check) Of(day, month, want Totals) (used, w float64) {
	t := day
	if c.Monthly {
		t = month
	}
	if c.Budget {
		return t.Cost, want.Cost
	}
	return float64(t.Tokens), float64(want.Tokens)
}

// Exceeded is the refusal of a request when used is already counted.
func (c Check) Exceeded(used float64) *Exceeded {
	return &Exceeded{Quota: c.Name, Limit: c.Limit, Used: used, Reset: c.Reset, Budget: c.Budget}
}

type slot struct{ client, period string }

// holds are the reservations in flight on one slot. Their sum is of
// floats, and releasing them in another order than they were taken leaves
// a crumb (0.1+0.2-0.1-0.2 is not 0); so the last release, counted by n,
// drops the entry outright rather than wait for an exact zero.
type holds struct {
	Totals
	n int
}

// Ledger holds settled and reserved totals per client and period. It is
// safe for concurrent use.
type Ledger struct {
	now      func() time.Time
	mu       sync.Mutex
	used     map[slot]Totals
	reserved map[slot]holds // only slots with reservations in flight
	day      string         // the day of the last Reserve; past periods go when it changes
}

// NewLedger returns an empty ledger reading time from now (nil: time.Now).
func NewLedger(now func() time.Time) *Ledger {
	if now == nil {
		now = time.Now
	}
	return &Ledger{now: now, used: map[slot]Totals{}, reserved: map[slot]holds{}}
}

// Load adds totals already spent in period (a Day or Month string), e.g.
// from the usage store at start-up.
func (l *Ledger) Load(client, period string, t Totals) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := slot{client, period}
	l.used[k] = l.used[k].plus(t)
}

// Used is client's settled and reserved totals for period.
func (l *Ledger) Used(client, period string) Totals {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := slot{client, period}
	return l.used[k].plus(l.reserved[k].Totals)
}

// Reservation is a request's hold on its client's quotas until Settle.
type Reservation struct {
	l          *Ledger
	client     string
	day, month string
	held       Totals
	settled    bool
}

// Reserve holds want against client's quotas in lim, or says which quota
// it would exceed (and holds nothing). Clients without limits still get a
// reservation, so their usage is counted.
func (l *Ledger) Reserve(client string, lim auth.Limits, want Totals) (*Reservation, *Exceeded) {
	now := l.now()
	day, month := Day(now), Month(now)
	l.mu.Lock()
	defer l.mu.Unlock()
	if day != l.day {
		l.day = day
		l.pruneLocked(day, month, nil)
	}
	d, m := slot{client, day}, slot{client, month}
	dUsed, mUsed := l.used[d].plus(l.reserved[d].Totals), l.used[m].plus(l.reserved[m].Totals)
	for _, c := range Checks(lim, now) {
		used, w := c.Of(dUsed, mUsed, want)
		if c.Limit > 0 && used+w > c.Limit {
			return nil, c.Exceeded(used)
		}
	}
	for _, k := range []slot{d, m} {
		h := l.reserved[k]
		l.reserved[k] = holds{h.plus(want), h.n + 1}
	}
	return &Reservation{l: l, client: client, day: day, month: month, held: want}, nil
}

// Settle releases the hold and charges actual instead. It may be called
// once; later calls do nothing.
func (r *Reservation) Settle(actual Totals) {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.settled {
		return
	}
	r.settled = true
	for _, p := range []string{r.day, r.month} {
		k := slot{r.client, p}
		if h := l.reserved[k]; h.n > 1 {
			l.reserved[k] = holds{h.minus(r.held), h.n - 1}
		} else {
			delete(l.reserved, k)
		}
		l.used[k] = l.used[k].plus(actual)
	}
}

// Forget drops the settled totals of periods other than the current day
// and month, and those of clients that keep reports false for (keys that
// were removed), so the ledger does not grow forever. Past periods also go
// at the first Reserve of each day. Reservations of
// requests in flight stay until they settle.
func (l *Ledger) Forget(keep func(client string) bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(Day(now), Month(now), keep)
}

// pruneLocked drops settled totals of other periods than day and month, and
// of clients keep (when not nil) reports false for.
func (l *Ledger) pruneLocked(day, month string, keep func(string) bool) {
	for k := range l.used {
		if (k.period != day && k.period != month) || (keep != nil && !keep(k.client)) {
			delete(l.used, k)
		}
	}
}

// Len is the number of settled totals held, for tests and metrics.
func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.used)
}
