package redisstore

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/quota"
	"github.com/strait/strait/edge/store"
	"github.com/strait/strait/edge/usage"
	"github.com/strait/strait/scripts/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// edges returns n stores on one Redis: n edges' views of the same policy.
func edges(t *testing.T, srv *redistest.Server, n int, cfg Config) []*Store {
	t.Helper()
	var out []*Store
	for range n {
		c := cfg
		c.URL = srv.URL()
		if c.Timeout == 0 {
			c.Timeout = 5 * time.Second // the shared test machine is slow; the hot-path default is measured apart
		}
		s, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out
}

// TestRPMAcrossEdges: a key's RPM limit holds across two edges to within
// one request (the bucket refills by one request every 6 s at 10 RPM, so a
// fast run sees exactly 10; a slow one may see 11).
func TestRPMAcrossEdges(t *testing.T) {
	srv := redistest.Start(t)
	es := edges(t, srv, 2, Config{})
	lim := auth.Limits{RPM: 10}
	admitted := 0
	var last store.Admission
	for i := range 30 {
		a, err := es[i%2].Admit(context.Background(), "k", lim, 1, quota.Totals{Tokens: 1})
		if err != nil {
			t.Fatal(err)
		}
		if a.Hold != nil {
			admitted++
			a.Hold.Settle(quota.Totals{Tokens: 1})
		} else {
			last = a
		}
	}
	if admitted < 10 || admitted > 11 {
		t.Fatalf("admitted %d of 30 across two edges at 10 RPM; want 10 (±1)", admitted)
	}
	if last.Rate.OK || last.Rate.Limit != "requests" || last.Rate.RetryAfter <= 0 || last.Rate.Requests.Limit != 10 {
		t.Fatalf("refusal = %+v; want a requests limit with a retry time", last.Rate)
	}
}

// TestParallelReservationsExact: 100 parallel reservations from two edges
// against a quota that fits 33 of them grant exactly 33.
func TestParallelReservationsExact(t *testing.T) {
	srv := redistest.Start(t)
	es := edges(t, srv, 2, Config{})
	lim := auth.Limits{DailyTokens: 1000}
	var granted, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			a, err := es[i%2].Admit(context.Background(), "k", lim, 30, quota.Totals{Tokens: 30})
			switch {
			case err != nil:
				t.Error(err)
			case a.Hold != nil:
				granted.Add(1)
			case a.Exceeded != nil:
				refused.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if granted.Load() != 33 || refused.Load() != 67 {
		t.Fatalf("granted %d, refused %d; want 33 and 67", granted.Load(), refused.Load())
	}
	if u := es[0].Used("k", quota.Day(time.Now())).Tokens; u != 990 {
		t.Fatalf("used (reserved) %d tokens; want 990", u)
	}
}

// TestBudgetSpentOnce: a daily budget of $1 is spent once across two edges,
// not once per edge; settling releases the estimate and charges the
// actual cost.
func TestBudgetSpentOnce(t *testing.T) {
	srv := redistest.Start(t)
	es := edges(t, srv, 2, Config{})
	lim := auth.Limits{DailyBudget: 1}
	spent := 0.0
	var refusal *quota.Exceeded
	for i := range 10 {
		// Reserve $0.30, spend $0.25: after four, $1.00 is settled.
		a, err := es[i%2].Admit(context.Background(), "k", lim, 100, quota.Totals{Tokens: 100, Cost: 0.3})
		if err != nil {
			t.Fatal(err)
		}
		if a.Hold == nil {
			refusal = a.Exceeded
			break
		}
		a.Hold.Settle(quota.Totals{Tokens: 90, Cost: 0.25})
		spent += 0.25
	}
	if spent != 0.75 || refusal == nil || refusal.Quota != "daily spend budget" || !refusal.Budget ||
		math.Abs(refusal.Used-0.75) > 1e-9 || refusal.Limit != 1 {
		t.Fatalf("spent $%.2f, refusal %+v; want $0.75 spent, then the daily spend budget refused at $0.75 used", spent, refusal)
	}
	for i, e := range es {
		if u := e.Used("k", quota.Month(time.Now())); math.Abs(u.Cost-0.75) > 1e-9 || u.Tokens != 270 {
			t.Fatalf("edge %d sees %+v used this month; want $0.75 and 270 tokens (reservations released)", i, u)
		}
	}
}

// TestTokensCorrected: the token bucket is charged the estimate at
// admission and corrected to the actual use at settlement, across edges.
func TestTokensCorrected(t *testing.T) {
	srv := redistest.Start(t)
	es := edges(t, srv, 2, Config{})
	lim := auth.Limits{TPM: 1000}
	a, err := es[0].Admit(context.Background(), "k", lim, 900, quota.Totals{Tokens: 900})
	if err != nil || a.Hold == nil {
		t.Fatalf("first admission: %+v %v", a, err)
	}
	if b, _ := es[1].Admit(context.Background(), "k", lim, 500, quota.Totals{Tokens: 500}); b.Hold != nil || b.Rate.Limit != "tokens" {
		t.Fatalf("second edge admitted 500 tokens with 900 of 1000 taken: %+v", b.Rate)
	}
	a.Hold.Settle(quota.Totals{Tokens: 100}) // used far less than estimated: 800 come back
	b, _ := es[1].Admit(context.Background(), "k", lim, 500, quota.Totals{Tokens: 500})
	if b.Hold == nil {
		t.Fatalf("after the correction the second edge still refuses: %+v", b.Rate)
	}
	b.Hold.Settle(quota.Totals{Tokens: 500})
}

// TestLargestEstimateAdmitted: a request whose max_tokens is int64's
// maximum is judged by the script like any other (admitted under a rate
// limit, over a token quota refused), not failed as if Redis were down:
// its estimate is one the script can count.
func TestLargestEstimateAdmitted(t *testing.T) {
	srv := redistest.Start(t)
	es := edges(t, srv, 1, Config{})
	tokens := usage.Request{MaxOutput: math.MaxInt64}.Estimate(400, 1024)
	want := quota.Totals{Tokens: tokens}
	a, err := es[0].Admit(context.Background(), "k", auth.Limits{RPM: 10}, tokens, want)
	if err != nil || a.Hold == nil {
		t.Fatalf("estimate %d under a rate limit: %+v, %v; want it admitted", tokens, a, err)
	}
	a.Hold.Settle(quota.Totals{Tokens: 100})
	a, err = es[0].Admit(context.Background(), "k", auth.Limits{DailyTokens: 1000}, tokens, want)
	if err != nil || a.Exceeded == nil {
		t.Fatalf("estimate %d under a daily token quota: %+v, %v; want it over the quota", tokens, a, err)
	}
}

// TestRedisDown: with Redis killed mid-run, fail_closed refuses at once
// with ErrUnavailable and fail_open admits on a local share; requests
// admitted before the failure settle once Redis is back, and readiness
// follows Redis.
func TestRedisDown(t *testing.T) {
	srv := redistest.Start(t)
	closed := edges(t, srv, 1, Config{Timeout: 50 * time.Millisecond})[0]
	open := edges(t, srv, 1, Config{Timeout: 50 * time.Millisecond, FailOpen: true, Edges: 2})[0]
	lim := auth.Limits{RPM: 10, DailyTokens: 10000}
	inflight, err := open.Admit(context.Background(), "k", lim, 100, quota.Totals{Tokens: 100})
	if err != nil || inflight.Hold == nil {
		t.Fatalf("admission before the failure: %+v %v", inflight, err)
	}
	srv.Stop()

	start := time.Now()
	if _, err := closed.Admit(context.Background(), "k", lim, 1, quota.Totals{Tokens: 1}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("fail_closed with Redis down: %v; want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the refusal took %v; the per-call timeout is 50ms", d)
	}
	for deadline := time.Now().Add(2 * time.Second); closed.Ready(context.Background()) == nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("still ready 2s after Redis went down")
		}
	}
	admitted := 0
	for range 20 {
		a, err := open.Admit(context.Background(), "k", lim, 10, quota.Totals{Tokens: 10})
		if err != nil {
			t.Fatal(err)
		}
		if a.Hold != nil {
			admitted++
			a.Hold.Settle(quota.Totals{Tokens: 10})
		}
	}
	if admitted != 5 { // this edge's share of 10 RPM between two edges
		t.Fatalf("fail_open admitted %d while Redis was down; want 5 (10 RPM / 2 edges)", admitted)
	}
	inflight.Hold.Settle(quota.Totals{Tokens: 50}) // Redis is away: this waits

	srv.Restart() // an empty Redis: what it gets now is what the edges replayed
	deadline := time.Now().Add(5 * time.Second)
	for open.Ready(context.Background()) != nil || open.pending.len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("after Redis returned: ready %v, %d settlements pending", open.Ready(context.Background()), open.pending.len())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// 50 settled by the request in flight (its reservation was lost with
	// Redis's memory) and 5×10 admitted locally.
	if u := open.Used("k", quota.Day(time.Now())).Tokens; u != 100 {
		t.Fatalf("Redis has %d tokens used after the replay; want 100", u)
	}
}

// TestDeadEdgeReleased: the reservations of an edge that stopped with
// requests in flight (and will never settle them) are released by the
// next edge's heartbeat, so they do not hold a quota until the period ends.
func TestDeadEdgeReleased(t *testing.T) {
	srv := redistest.Start(t)
	gone := edges(t, srv, 1, Config{})[0]
	a, err := gone.Admit(context.Background(), "k", auth.Limits{DailyTokens: 1000}, 600, quota.Totals{Tokens: 600})
	if err != nil || a.Hold == nil {
		t.Fatalf("%+v %v", a, err)
	}
	gone.Close() // as a crash would leave it, minus the heartbeat's expiry
	next := edges(t, srv, 1, Config{})[0]
	if u := next.Used("k", quota.Day(time.Now())).Tokens; u != 0 {
		t.Fatalf("%d tokens still reserved by the edge that stopped", u)
	}
}

// TestURLErrorHidesPassword: store.redis.url takes its password from the
// environment; a URL that does not parse must not print it at start.
func TestURLErrorHidesPassword(t *testing.T) {
	_, err := options(Config{URL: "redis://:p%zzSECRET@127.0.0.1:6379"})
	if err == nil || strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "store.redis.url") {
		t.Errorf("error %v; want one naming store.redis.url, without the password", err)
	}
}
