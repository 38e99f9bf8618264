package redisstore

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/strait/strait/edge/auth"
	"github.com/strait/strait/edge/quota"
	"github.com/strait/strait/edge/ratelimit"
	"github.com/strait/strait/edge/store"
	"github.com/strait/strait/scripts/redistest"
)

// benchLimits has every limit set, so the script does all its work.
var benchLimits = auth.Limits{RPM: 1e9, TPM: 1e12, DailyTokens: 1e15, MonthlyTokens: 1e15, DailyBudget: 1e9, MonthlyBudget: 1e9}

func admitters(b testing.TB) map[string]store.Admitter {
	srv := redistest.Start(b)
	s, err := New(Config{URL: srv.URL(), Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return map[string]store.Admitter{
		"embedded": store.Local{Limits: ratelimit.New(nil), Ledger: quota.NewLedger(nil)},
		"redis":    s,
	}
}

// admitOnce is one admission and its settlement, as a request makes them.
func admitOnce(tb testing.TB, a store.Admitter, client string) time.Duration {
	start := time.Now()
	ad, err := a.Admit(context.Background(), client, benchLimits, 500, quota.Totals{Tokens: 500, Cost: 0.001})
	d := time.Since(start)
	if err != nil || ad.Hold == nil {
		tb.Fatalf("admission: %+v %v", ad, err)
	}
	ad.Hold.Settle(quota.Totals{Tokens: 400, Cost: 0.0008})
	return d
}

// BenchmarkAdmit: one admission and settlement, back to back.
func BenchmarkAdmit(b *testing.B) {
	for name, a := range admitters(b) {
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				admitOnce(b, a, "k"+strconv.Itoa(i%100))
			}
		})
	}
}

// TestAdmissionLatency measures admission latency (Admit only; Settle runs
// after the response) at a paced rate, as the edge sees it per request:
// STRAIT_ADMIT_RATE requests a second (500) for STRAIT_ADMIT_SECONDS (5)
// over 100 keys. A measurement, not a check: it runs only when
// STRAIT_ADMIT_BENCH=1, under flock /tmp/strait-timing.lock.
func TestAdmissionLatency(t *testing.T) {
	if os.Getenv("STRAIT_ADMIT_BENCH") != "1" {
		t.Skip("a measurement: set STRAIT_ADMIT_BENCH=1 (and run it under flock /tmp/strait-timing.lock)")
	}
	rate, secs := envInt("STRAIT_ADMIT_RATE", 500), envInt("STRAIT_ADMIT_SECONDS", 5)
	for _, name := range []string{"embedded", "redis"} {
		a := admitters(t)[name]
		n := rate * secs
		lat := make([]time.Duration, 0, n)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		for i := range n {
			<-tick.C
			lat = append(lat, admitOnce(t, a, "k"+strconv.Itoa(i%100)))
		}
		tick.Stop()
		slices.Sort(lat)
		q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
		t.Logf("%-8s %d admissions at %d/s: p50 %v p90 %v p99 %v p99.9 %v max %v", name, n, rate,
			q(0.5), q(0.9), q(0.99), q(0.999), lat[len(lat)-1])
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
