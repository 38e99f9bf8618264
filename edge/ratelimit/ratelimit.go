// Package ratelimit holds token buckets per client: requests per minute and
// tokens per minute, where a request takes its estimated tokens up front and
// is corrected by the difference once the response reports real usage. The
// clock is injected, so tests step time instead of sleeping.
package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"time"
)

// bucket refills continuously at rate per second up to capacity. Its level
// may go below zero when a correction charges more than was taken; the
// client then waits for the debt to refill.
type bucket struct {
	capacity, rate, level float64
	last                  time.Time
}

func newBucket(perMinute int64, now time.Time) bucket {
	c := float64(perMinute)
	return bucket{capacity: c, rate: c / 60, level: c, last: now}
}

func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.last).Seconds(); d > 0 {
		b.level = math.Min(b.capacity, b.level+d*b.rate)
	}
	b.last = now
}

// wait is how long until n can be taken. A request larger than the whole
// bucket passes once the bucket is full, so it is slowed, never starved.
func (b *bucket) wait(n float64) time.Duration {
	need := math.Min(n, b.capacity)
	if b.level >= need {
		return 0
	}
	return time.Duration((need - b.level) / b.rate * float64(time.Second))
}

// untilFull is how long until the bucket is full again.
func (b *bucket) untilFull() time.Duration {
	return time.Duration((b.capacity - b.level) / b.rate * float64(time.Second))
}

// Status is one limit as the x-ratelimit-* headers report it.
type Status struct {
	Limit, Remaining int64
	Reset            time.Duration // until the bucket is full again
}

func (b *bucket) status() Status {
	return Status{Limit: int64(b.capacity), Remaining: max(0, int64(b.level)), Reset: b.untilFull()}
}

// Decision is the answer to Take.
type Decision struct {
	OK bool
	// RetryAfter is how long to wait before the request would pass.
	RetryAfter time.Duration
	// Limit names what was exceeded: "requests" or "tokens".
	Limit string
	// Requests and Tokens are the buckets' state after the decision; a
	// zero Limit means that limit is not configured.
	Requests, Tokens Status
}

type state struct {
	client   string
	rpm, tpm int64
	req, tok bucket
}

// full reports whether both buckets are full at now, which is the same as
// never having seen the client.
func (s *state) full(now time.Time) bool {
	s.req.refill(now)
	s.tok.refill(now)
	return s.req.level >= s.req.capacity && s.tok.level >= s.tok.capacity
}

// defaultMaxClients is how many clients a Limiter holds at most. The per-IP
// limiter's clients are whatever source addresses arrive, so this bounds
// its memory (about 2 MB) against a client rotating through addresses.
const defaultMaxClients = 10000

// Limiter holds the buckets of many clients. It is safe for concurrent use.
type Limiter struct {
	now func() time.Time
	// maxClients bounds the map: past it, a new client first makes Take
	// forget clients seen the longest ago whose buckets are full, then, if
	// none is, the one seen the longest ago whatever its bucket: it is
	// let off its debt, and a new client is never refused for want of
	// room. Taking them from the back of lru keeps the cost per Take
	// constant (amortised) instead of a scan of every client.
	maxClients int
	mu         sync.Mutex
	m          map[string]*list.Element // of *state, in lru
	lru        list.List                // most recently seen first
}

// New returns a Limiter reading time from now (nil means time.Now).
func New(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, maxClients: defaultMaxClients, m: map[string]*list.Element{}}
}

// Take asks for one request of an estimated tokens for client, under rpm
// and tpm (zero: unlimited). On success both are taken; on refusal neither.
func (l *Limiter) Take(client string, rpm, tpm, tokens int64) Decision {
	if rpm <= 0 && tpm <= 0 {
		return Decision{OK: true}
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.get(client, rpm, tpm, now)
	var d Decision
	if rpm > 0 {
		if w := s.req.wait(1); w > 0 {
			d.RetryAfter, d.Limit = w, "requests"
		}
	}
	if tpm > 0 {
		if w := s.tok.wait(float64(tokens)); w > d.RetryAfter {
			d.RetryAfter, d.Limit = w, "tokens"
		}
	}
	if d.OK = d.RetryAfter == 0; d.OK {
		if rpm > 0 { // an unlimited bucket keeps no debt to carry into a later limit
			s.req.level--
		}
		if tpm > 0 {
			s.tok.level -= float64(tokens)
		}
	}
	if rpm > 0 {
		d.Requests = s.req.status()
	}
	if tpm > 0 {
		d.Tokens = s.tok.status()
	}
	return d
}

// Adjust corrects client's token bucket by delta tokens (actual minus
// estimated usage): positive charges more, negative gives back.
func (l *Limiter) Adjust(client string, delta int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.m[client]
	if !ok {
		return
	}
	s := el.Value.(*state)
	if s.tpm <= 0 {
		return
	}
	l.lru.MoveToFront(el)
	s.tok.refill(l.now())
	s.tok.level = math.Min(s.tok.capacity, s.tok.level-float64(delta))
}

// get returns client's state, created full or resized to new limits.
func (l *Limiter) get(client string, rpm, tpm int64, now time.Time) *state {
	el, ok := l.m[client]
	if !ok {
		if len(l.m) >= l.maxClients {
			l.makeRoom(now)
		}
		s := &state{client: client, rpm: rpm, tpm: tpm, req: newBucket(rpm, now), tok: newBucket(tpm, now)}
		l.m[client] = l.lru.PushFront(s)
		return s
	}
	l.lru.MoveToFront(el)
	s := el.Value.(*state)
	s.req.refill(now)
	s.tok.refill(now)
	if s.rpm != rpm { // limits changed (key edited): keep the used part
		used := s.req.capacity - s.req.level
		s.rpm, s.req = rpm, newBucket(rpm, now)
		s.req.level -= used
	}
	if s.tpm != tpm {
		used := s.tok.capacity - s.tok.level
		s.tpm, s.tok = tpm, newBucket(tpm, now)
		s.tok.level -= used
	}
	return s
}

// makeRoom forgets the clients seen the longest ago while their buckets
// are full, and if that frees no room, the one seen the longest ago.
func (l *Limiter) makeRoom(now time.Time) {
	for el := l.lru.Back(); el != nil && el.Value.(*state).full(now); el = l.lru.Back() {
		l.forget(el)
	}
	if len(l.m) >= l.maxClients {
		l.forget(l.lru.Back())
	}
}

func (l *Limiter) forget(el *list.Element) {
	delete(l.m, l.lru.Remove(el).(*state).client)
}
