package main

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Params describe one direction of the emulated link. The zero value is a
// perfect link: no delay, no loss, no rate limit.
type Params struct {
	// Delay is the one-way propagation delay added to every packet.
	Delay time.Duration `json:"delay"`
	// Jitter adds a uniform random offset in [-Jitter, +Jitter] to Delay.
	// With jitter, packets may leave out of order (as on a real path); without
	// it, they always leave in arrival order.
	Jitter time.Duration `json:"jitter"`
	// Loss is the long-run fraction of packets dropped, in [0, 1).
	Loss float64 `json:"loss"`
	// Burst is the mean length, in packets, of a run of losses. At most 1
	// means independent (Bernoulli) losses; above 1 a two-state
	// Gilbert–Elliott chain drops every packet while "bad", with the same
	// long-run Loss.
	Burst float64 `json:"burst"`
	// Rate limits the link to this many bits per second; zero is unlimited.
	Rate int64 `json:"rate"`
	// Queue bounds the bytes waiting for the rate limiter; a packet that does
	// not fit is dropped (tail drop). Zero means 64 KiB when Rate is set.
	Queue int `json:"queue"`
}

// Validate reports parameters no link can have.
func (p Params) Validate() error {
	switch {
	case p.Delay < 0 || p.Jitter < 0:
		return fmt.Errorf("delay and jitter must not be negative (delay %v, jitter %v)", p.Delay, p.Jitter)
	case p.Jitter > p.Delay:
		return fmt.Errorf("jitter %v larger than delay %v would need negative delays", p.Jitter, p.Delay)
	case p.Loss < 0 || p.Loss >= 1:
		return fmt.Errorf("loss %v outside [0, 1)", p.Loss)
	case p.Burst < 0:
		return fmt.Errorf("burst %v must not be negative", p.Burst)
	case p.Rate < 0 || p.Queue < 0:
		return fmt.Errorf("rate %d and queue %d must not be negative", p.Rate, p.Queue)
	}
	return nil
}

// Verdict is what a Link decided for one packet.
type Verdict int

// The verdicts of Link.Admit.
const (
	Pass      Verdict = iota // forward at the returned departure time
	LossDrop                 // dropped by the loss model
	QueueDrop                // dropped because the rate limiter's queue was full
)

// Stats count packets by verdict.
type Stats struct {
	In        int64 `json:"in"`
	Passed    int64 `json:"passed"`
	LossDrops int64 `json:"loss_drops"`
	QueueDrop int64 `json:"queue_drops"`
	// InBytes is the IP bytes of the packets counted in In: what the
	// contenders put on the link, overheads (FEC parity) included.
	InBytes int64 `json:"in_bytes"`
}

// Link is the impairment model of one direction. It is pure bookkeeping over
// the times it is given, so it is tested without sockets or clocks; the
// forwarder calls Admit from a single goroutine per direction.
type Link struct {
	p     Params
	rng   *rand.Rand
	bad   bool      // Gilbert–Elliott state
	busy  time.Time // when the rate limiter finishes sending what it holds
	last  time.Time // latest departure handed out, for order without jitter
	stats Stats
}

// NewLink returns a link with parameters p (which must be valid) whose
// random choices are drawn from a generator seeded with seed, so a run can
// be repeated exactly.
func NewLink(p Params, seed uint64) *Link {
	return &Link{p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// SetParams changes the parameters from the next packet on; the queue and
// the loss state carry over.
func (l *Link) SetParams(p Params) { l.p = p }

// Params returns the current parameters.
func (l *Link) Params() Params { return l.p }

// Stats returns the counters so far.
func (l *Link) Stats() Stats { return l.stats }

// Admit decides the fate of a packet of size bytes arriving at now: whether
// it is lost, whether it fits the rate limiter's queue, and when it leaves.
// Arrival times must not decrease between calls.
func (l *Link) Admit(now time.Time, size int) (time.Time, Verdict) {
	l.stats.In++
	l.stats.InBytes += int64(size)
	if l.lost() {
		l.stats.LossDrops++
		return time.Time{}, LossDrop
	}
	sent := now
	if l.p.Rate > 0 {
		if l.busy.Before(now) {
			l.busy = now
		}
		backlog := int64(l.busy.Sub(now)) * l.p.Rate / 8 / int64(time.Second)
		if backlog+int64(size) > int64(l.queue()) {
			l.stats.QueueDrop++
			return time.Time{}, QueueDrop
		}
		l.busy = l.busy.Add(time.Duration(int64(size) * 8 * int64(time.Second) / l.p.Rate))
		sent = l.busy
	}
	depart := sent.Add(l.p.Delay)
	if l.p.Jitter > 0 {
		depart = depart.Add(time.Duration(l.rng.Int64N(int64(2*l.p.Jitter)+1)) - l.p.Jitter)
	} else if depart.Before(l.last) {
		depart = l.last // a parameter change must not reorder packets
	}
	if depart.After(l.last) {
		l.last = depart
	}
	l.stats.Passed++
	return depart, Pass
}

func (l *Link) queue() int {
	if l.p.Queue > 0 {
		return l.p.Queue
	}
	return 64 << 10
}

// lost runs the loss model for one packet.
func (l *Link) lost() bool {
	p := l.p.Loss
	if p <= 0 {
		l.bad = false
		return false
	}
	if l.p.Burst <= 1 {
		return l.rng.Float64() < p
	}
	// Gilbert–Elliott with a loss-free good state and a lossy bad state: leave
	// bad with r = 1/Burst (mean run Burst), enter it with q such that the
	// stationary share of bad, q/(q+r), equals p.
	r := 1 / l.p.Burst
	q := p * r / (1 - p)
	if l.bad {
		l.bad = l.rng.Float64() >= r
	} else {
		l.bad = l.rng.Float64() < q
	}
	return l.bad
}
