package upstream

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// KeyPolicy tunes the per-key state machine. Zero fields take the defaults.
type KeyPolicy struct {
	// MaxCooldown caps how long a rate-limited key cools, whatever the
	// provider's Retry-After says; zero means 60s.
	MaxCooldown time.Duration
	// Backoff is the cooldown after a 429 without Retry-After; it doubles
	// with each such 429 in a row, up to MaxCooldown. Zero means 1s.
	Backoff time.Duration
	// ProbeAfter is how long a disabled key rests before one request probes
	// it; it doubles after each failed probe, up to an hour. Zero means 5m.
	ProbeAfter time.Duration
	// Now is the clock of the state machine; nil means time.Now. Tests set
	// a clock they move by hand, so cooldowns end when the test says, not
	// when a loaded machine gets round to it.
	Now func() time.Time
}

func (p KeyPolicy) withDefaults() KeyPolicy {
	if p.MaxCooldown <= 0 {
		p.MaxCooldown = 60 * time.Second
	}
	if p.Backoff <= 0 {
		p.Backoff = time.Second
	}
	if p.ProbeAfter <= 0 {
		p.ProbeAfter = 5 * time.Minute
	}
	return p
}

// maxProbeAfter caps the rest of a key that keeps failing its probes.
const maxProbeAfter = time.Hour

// KeyState is where a key is in its state machine:
// healthy → cooling (429) → healthy when the cooldown ends;
// any → disabled (401/403/402, quota exhausted) → half-open after a rest →
// healthy when the probe succeeds, disabled again (longer) when it fails.
type KeyState int

// Key states.
const (
	Healthy KeyState = iota
	Cooling
	Disabled
	HalfOpen
)

// KeyStates lists every state, for metrics.
var KeyStates = []KeyState{Healthy, Cooling, Disabled, HalfOpen}

func (s KeyState) String() string {
	return [...]string{"healthy", "cooling", "disabled", "half_open"}[s]
}

// KeySlot is one key of a provider with its state. Callers get it from
// Acquire and must hand it back through exactly one Report call.
type KeySlot struct {
	Key    Key
	weight int
	pool   *keyPool

	// Guarded by pool.mu.
	state   KeyState
	until   time.Time // end of a cooldown, or when a disabled key may be probed
	strikes int       // 429s without Retry-After in a row, or failed probes
	probing bool      // a half-open key has its one probe in flight
}

// keyPool is a provider's keys.
type keyPool struct {
	provider string
	policy   KeyPolicy
	now      func() time.Time
	pick     func(n int) int // random int in [0, n)

	mu    sync.Mutex
	slots []*KeySlot
}

func newKeyPool(provider string, keys []Key, weights []int, policy KeyPolicy, old *keyPool) (*keyPool, error) {
	p := &keyPool{provider: provider, policy: policy, now: policy.Now, pick: rand.IntN}
	if p.now == nil {
		p.now = time.Now
	}
	prior := map[string]*KeySlot{}
	if old != nil {
		old.mu.Lock()
		defer old.mu.Unlock()
		for _, s := range old.slots {
			prior[s.Key.Fingerprint()] = s
		}
	}
	for i, k := range keys {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		if w <= 0 {
			return nil, fmt.Errorf("key %d: weight %d, want > 0", i, w)
		}
		s := &KeySlot{Key: k, weight: w, pool: p}
		if o := prior[k.Fingerprint()]; o != nil {
			// A probe in flight reports to the old pool; here the key is
			// simply half-open again.
			s.state, s.until, s.strikes = o.state, o.until, o.strikes
		}
		p.slots = append(p.slots, s)
	}
	return p, nil
}

func (p *keyPool) keyList() []Key {
	out := make([]Key, len(p.slots))
	for i, s := range p.slots {
		out[i] = s.Key
	}
	return out
}

// refresh moves keys whose time has come: cooling → healthy, disabled →
// half-open. Called with mu held.
func (p *keyPool) refresh(now time.Time) {
	for _, s := range p.slots {
		if now.Before(s.until) {
			continue
		}
		switch s.state {
		case Cooling:
			s.state = Healthy
		case Disabled:
			s.state, s.probing = HalfOpen, false
		}
	}
}

// Acquire picks a key by weight among the healthy ones (and half-open ones
// whose probe is not taken), preferring keys the request has not tried.
// When none is usable it returns nil and how long until the earliest one
// recovers; wait < 0 means no recovery is scheduled.
func (p *keyPool) Acquire(tried map[*KeySlot]bool) (slot *KeySlot, wait time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.refresh(now)
	var fresh, any []*KeySlot
	for _, s := range p.slots {
		if s.state == Healthy || (s.state == HalfOpen && !s.probing) {
			any = append(any, s)
			if !tried[s] {
				fresh = append(fresh, s)
			}
		}
	}
	if len(fresh) == 0 {
		fresh = any
	}
	if len(fresh) == 0 {
		return nil, p.earliest(now)
	}
	s := p.weighted(fresh)
	if s.state == HalfOpen {
		s.probing = true
	}
	return s, 0
}

func (p *keyPool) weighted(c []*KeySlot) *KeySlot {
	total := 0
	for _, s := range c {
		total += s.weight
	}
	n := p.pick(total)
	for _, s := range c {
		if n < s.weight {
			return s
		}
		n -= s.weight
	}
	return c[len(c)-1]
}

func (p *keyPool) earliest(now time.Time) time.Duration {
	wait := time.Duration(-1)
	for _, s := range p.slots {
		if s.state == Cooling || s.state == Disabled {
			if d := s.until.Sub(now); wait < 0 || d < wait {
				wait = d
			}
		}
	}
	return wait
}

// Outcome is what an attempt taught about its key.
type Outcome int

// Outcomes of an attempt, as Report sees them.
const (
	// Worked: the provider accepted the key (any answer but the ones below).
	Worked Outcome = iota
	// RateLimited: 429; the key cools.
	RateLimited
	// Rejected: 401, 402, 403 or quota exhausted; the key is disabled.
	Rejected
	// Inconclusive: connection error, timeout or 5xx; says nothing of the key.
	Inconclusive
)

// Transition is a state change Report made, for logs.
type Transition struct {
	From, To KeyState
	For      time.Duration // cooldown or rest, for Cooling and Disabled
}

// Report records an attempt's outcome; retryAfter is the provider's
// Retry-After (zero when absent). It returns the transition, if any.
func (s *KeySlot) Report(o Outcome, retryAfter time.Duration) (Transition, bool) {
	p := s.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	from, now := s.state, p.now()
	probe := s.probing
	s.probing = false
	switch o {
	case Worked:
		s.state, s.strikes = Healthy, 0
	case RateLimited:
		d := retryAfter
		if d <= 0 {
			d = p.policy.Backoff << min(s.strikes, 16)
			s.strikes++
		} else {
			s.strikes = 0
		}
		d = min(d, p.policy.MaxCooldown)
		s.state, s.until = Cooling, now.Add(d)
		return Transition{From: from, To: Cooling, For: d}, true
	case Rejected:
		if !probe {
			s.strikes = 0
		}
		d := min(p.policy.ProbeAfter<<min(s.strikes, 16), maxProbeAfter)
		s.strikes++
		s.state, s.until = Disabled, now.Add(d)
		return Transition{From: from, To: Disabled, For: d}, true
	case Inconclusive:
		return Transition{}, false
	}
	return Transition{From: from, To: s.state}, from != s.state
}

// Release gives the key back without an outcome (the client left first).
func (s *KeySlot) Release() {
	s.pool.mu.Lock()
	s.probing = false
	s.pool.mu.Unlock()
}

// KeyStatus is one key's state, for metrics and `check`.
type KeyStatus struct {
	Provider    string
	Fingerprint string
	State       KeyState
}

// KeyStatuses lists every key's current state.
func (r *Registry) KeyStatuses() []KeyStatus {
	var out []KeyStatus
	for _, pr := range r.order {
		p := pr.pool
		p.mu.Lock()
		p.refresh(p.now())
		for _, s := range p.slots {
			out = append(out, KeyStatus{Provider: p.provider, Fingerprint: s.Key.Fingerprint(), State: s.state})
		}
		p.mu.Unlock()
	}
	return out
}

// Acquire picks a key of the provider; see keyPool.Acquire.
func (p *Provider) Acquire(tried map[*KeySlot]bool) (*KeySlot, time.Duration) {
	return p.pool.Acquire(tried)
}

// EarliestCooling is how long until the provider's first cooling key
// recovers; -1 when none is cooling (every unusable key is disabled or
// being probed). It tells a rate limit from a dead provider.
func (p *Provider) EarliestCooling() time.Duration {
	k := p.pool
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	k.refresh(now)
	wait := time.Duration(-1)
	for _, s := range k.slots {
		if d := s.until.Sub(now); s.state == Cooling && (wait < 0 || d < wait) {
			wait = d
		}
	}
	return wait
}
