package pool

import (
	"sync"
	"time"
)

// breakerState is a circuit breaker's position.
type breakerState int

const (
	breakerClosed   breakerState = iota // the relay takes streams
	breakerOpen                         // taken out until the cooldown ends
	breakerHalfOpen                     // cooldown over: the next probe decides
)

func (s breakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// breaker takes a relay out of the rotation after threshold consecutive
// failures (sessions lost, probes unanswered, streams broken by the
// tunnel), and puts it back by itself: after the cooldown the next probe
// on one of its sessions decides, closing the breaker on an answer and
// reopening it, with a doubled cooldown, on a timeout. A stream that
// carries data, or an answered probe, counts as a success.
type breaker struct {
	threshold       int
	cooldown, maxCD time.Duration
	onChange        func(from, to breakerState)
	mu              sync.Mutex
	state           breakerState
	consecutive     int
	curCD           time.Duration
	openUntil       time.Time
	opens           int64
	fired           []breakerState // transitions to report after unlocking
	fromState       breakerState   // the state before the first of fired
}

func newBreaker(threshold int, cooldown, maxCooldown time.Duration, onChange func(from, to breakerState)) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, maxCD: maxCooldown, curCD: cooldown, onChange: onChange}
}

// current returns the state, moving open to half-open once the cooldown is
// over.
func (b *breaker) current(now time.Time) breakerState {
	var st breakerState
	b.do(func() { b.tick(now); st = b.state })
	return st
}

// do runs f under the lock, then reports the transitions f made. onChange
// runs unlocked, so it may take other locks (the pool's) without ordering
// against this one.
func (b *breaker) do(f func()) {
	b.mu.Lock()
	f()
	from, fired := b.fromState, b.fired
	b.fired = nil
	b.mu.Unlock()
	for _, to := range fired {
		if b.onChange != nil {
			b.onChange(from, to)
		}
		from = to
	}
}

func (b *breaker) tick(now time.Time) {
	if b.state == breakerOpen && !now.Before(b.openUntil) {
		b.set(breakerHalfOpen)
	}
}

// success records a stream that worked or a probe that was answered.
func (b *breaker) success(probe bool) {
	b.do(func() {
		b.tick(time.Now())
		switch b.state {
		case breakerClosed:
			b.consecutive = 0
		case breakerHalfOpen:
			if probe {
				b.consecutive, b.curCD = 0, b.cooldown
				b.set(breakerClosed)
			}
		}
	})
}

// failure records a failure; probe says whether it was the half-open probe.
func (b *breaker) failure(probe bool) {
	b.do(func() {
		now := time.Now()
		b.tick(now)
		switch b.state {
		case breakerClosed:
			if b.consecutive++; b.consecutive >= b.threshold {
				b.open(now)
			}
		case breakerHalfOpen:
			if probe {
				b.curCD = min(2*b.curCD, b.maxCD)
				b.open(now)
			}
		}
	})
}

func (b *breaker) open(now time.Time) {
	b.openUntil = now.Add(b.curCD)
	b.opens++
	b.set(breakerOpen)
}

func (b *breaker) set(s breakerState) {
	if s == b.state {
		return
	}
	if len(b.fired) == 0 {
		b.fromState = b.state
	}
	b.state = s
	b.fired = append(b.fired, s)
}

// openCount is how many times the breaker has opened.
func (b *breaker) openCount() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.opens
}
