package main

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestLinkDelayKeepsOrder(t *testing.T) {
	l := NewLink(Params{Delay: 75 * time.Millisecond}, 1)
	var last time.Time
	for i := range 1000 {
		now := t0.Add(time.Duration(i) * 37 * time.Microsecond)
		d, v := l.Admit(now, 1200)
		if v != Pass {
			t.Fatalf("packet %d: verdict %v on a loss-free link", i, v)
		}
		if got := d.Sub(now); got != 75*time.Millisecond {
			t.Fatalf("packet %d: delay %v, want 75ms", i, got)
		}
		if d.Before(last) {
			t.Fatalf("packet %d leaves before its predecessor", i)
		}
		last = d
	}
}

// A parameter change that shortens the delay must not let later packets
// overtake earlier ones when no jitter was asked for.
func TestLinkShorterDelayDoesNotReorder(t *testing.T) {
	l := NewLink(Params{Delay: 100 * time.Millisecond}, 1)
	first, _ := l.Admit(t0, 100)
	l.SetParams(Params{Delay: 10 * time.Millisecond})
	second, _ := l.Admit(t0.Add(time.Millisecond), 100)
	if second.Before(first) {
		t.Fatalf("second packet leaves at %v, before the first at %v", second.Sub(t0), first.Sub(t0))
	}
}

func TestLinkJitterBoundsAndReorders(t *testing.T) {
	p := Params{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond}
	l := NewLink(p, 7)
	reordered := 0
	var last time.Time
	for i := range 5000 {
		now := t0.Add(time.Duration(i) * 100 * time.Microsecond)
		d, _ := l.Admit(now, 100)
		if got := d.Sub(now); got < 40*time.Millisecond || got > 60*time.Millisecond {
			t.Fatalf("packet %d: delay %v outside 50ms±10ms", i, got)
		}
		if d.Before(last) {
			reordered++
		}
		last = d
	}
	if reordered == 0 {
		t.Fatal("jitter of 10ms at 0.1ms spacing reordered nothing")
	}
}

func TestLinkLossRates(t *testing.T) {
	for _, tc := range []struct {
		name        string
		loss, burst float64
	}{
		{"none", 0, 0},
		{"random 1%", 0.01, 0},
		{"random 3%", 0.03, 1},
		{"burst 3% runs of 5", 0.03, 5},
		{"burst 10% runs of 2", 0.10, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 200_000
			l := NewLink(Params{Loss: tc.loss, Burst: tc.burst}, 42)
			lost, runs, run := 0, 0, 0
			for i := range n {
				_, v := l.Admit(t0.Add(time.Duration(i)), 100)
				if v == LossDrop {
					lost++
					run++
					continue
				}
				if run > 0 {
					runs++
				}
				run = 0
			}
			got := float64(lost) / n
			if math.Abs(got-tc.loss) > 0.1*tc.loss+1e-9 {
				t.Fatalf("loss %.4f, want %.4f ±10%%", got, tc.loss)
			}
			if tc.loss == 0 {
				return
			}
			meanRun := float64(lost) / float64(runs)
			want := max(tc.burst, 1) / (1 - tc.loss*boolf(tc.burst <= 1)) // a Bernoulli run has mean 1/(1-p)
			if math.Abs(meanRun-want) > 0.1*want {
				t.Fatalf("mean loss run %.2f packets, want %.2f ±10%%", meanRun, want)
			}
			if st := l.Stats(); st.In != n || st.LossDrops != int64(lost) || st.Passed != int64(n-lost) {
				t.Fatalf("stats %+v disagree with %d lost of %d", st, lost, n)
			}
		})
	}
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Packets arriving faster than the rate queue up, leave spaced by their
// serialization time, and are dropped once the queue is full.
func TestLinkRateAndBoundedQueue(t *testing.T) {
	// 8 Mbit/s: a 1000-byte packet takes 1ms; the queue holds 10 packets.
	l := NewLink(Params{Delay: 20 * time.Millisecond, Rate: 8_000_000, Queue: 10_000}, 1)
	var departs []time.Time
	drops := 0
	for range 30 { // a burst of 30 packets at the same instant
		d, v := l.Admit(t0, 1000)
		switch v {
		case Pass:
			departs = append(departs, d)
		case QueueDrop:
			drops++
		default:
			t.Fatalf("verdict %v", v)
		}
	}
	if len(departs) != 10 || drops != 20 {
		t.Fatalf("passed %d, dropped %d; want 10 and 20 (queue of 10 packets)", len(departs), drops)
	}
	for i, d := range departs {
		if want := time.Duration(i+1)*time.Millisecond + 20*time.Millisecond; d.Sub(t0) != want {
			t.Fatalf("packet %d leaves at %v, want %v", i, d.Sub(t0), want)
		}
	}
	// Once the queue has drained, packets pass again.
	if _, v := l.Admit(t0.Add(11*time.Millisecond), 1000); v != Pass {
		t.Fatalf("after the queue drained: verdict %v", v)
	}
	if st := l.Stats(); st.QueueDrop != 20 {
		t.Fatalf("stats %+v, want 20 queue drops", st)
	}
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Params
		ok bool
	}{
		{Params{}, true},
		{Params{Delay: time.Second, Jitter: time.Second, Loss: 0.5, Burst: 3, Rate: 1, Queue: 1}, true},
		{Params{Delay: -1}, false},
		{Params{Delay: time.Millisecond, Jitter: 2 * time.Millisecond}, false},
		{Params{Loss: 1}, false},
		{Params{Loss: -0.1}, false},
		{Params{Burst: -1}, false},
		{Params{Rate: -5}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: Validate() = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}

func TestLatenessCounts(t *testing.T) {
	var l Lateness
	for _, d := range []time.Duration{0, 500 * time.Microsecond, 2 * time.Millisecond, 25 * time.Millisecond} {
		l.Observe(d)
	}
	if want := (Lateness{Over1ms: 2, Over10ms: 1, MaxMs: 25}); l != want {
		t.Fatalf("Lateness = %+v, want %+v", l, want)
	}
}
