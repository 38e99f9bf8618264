// Package pool keeps tunnel sessions to a set of relays up and hands out
// streams on the least-loaded live session.
//
// One supervisor goroutine per session slot owns that slot's dial, wait and
// redial cycle, with exponential backoff and jitter; Close stops every slot
// and waits for them, so no goroutine outlives the pool.
package pool

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/tunnel"
)

// Config configures a Pool.
type Config struct {
	// Dialers reach the relays, one Dialer per relay. Required.
	Dialers []tunnel.Dialer
	// SessionsPerRelay is how many sessions to keep to each relay, so that one
	// TCP connection's loss never stalls every request. Zero means 2.
	SessionsPerRelay int
	// MinBackoff and MaxBackoff bound the delay between reconnect attempts;
	// zero means 100ms and 15s.
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds one connection attempt; zero means 10s.
	DialTimeout time.Duration
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
}

// ErrClosed is returned by OpenStream after Close.
var ErrClosed = errors.New("pool: closed")

// Pool maintains the sessions. Create it with New; it is safe for concurrent
// use.
type Pool struct {
	cfg Config
	log *zap.Logger

	mu       sync.Mutex
	live     map[*slot]tunnel.Session
	changed  chan struct{} // closed and replaced whenever live changes
	closedCh chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

type slot struct {
	dialer tunnel.Dialer
	index  int
}

// New starts the supervisors and returns at once; sessions come up in the
// background.
func New(cfg Config) (*Pool, error) {
	if len(cfg.Dialers) == 0 {
		return nil, errors.New("pool: no relays configured")
	}
	cfg = withDefaults(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Pool{
		cfg: cfg, log: cfg.Logger.Named("pool"),
		live: map[*slot]tunnel.Session{}, changed: make(chan struct{}),
		closedCh: make(chan struct{}), cancel: cancel,
	}
	for _, d := range cfg.Dialers {
		for i := range cfg.SessionsPerRelay {
			p.wg.Add(1)
			go p.supervise(ctx, &slot{dialer: d, index: i})
		}
	}
	return p, nil
}

func withDefaults(cfg Config) Config {
	if cfg.SessionsPerRelay <= 0 {
		cfg.SessionsPerRelay = 2
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 15 * time.Second
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg
}

// supervise owns one slot: dial, serve until the session dies, back off,
// dial again, until ctx ends.
func (p *Pool) supervise(ctx context.Context, s *slot) {
	defer p.wg.Done()
	log := p.log.With(zap.String("relay", s.dialer.Addr()), zap.Int("slot", s.index))
	var failures int
	for ctx.Err() == nil {
		sess, err := p.dial(ctx, s.dialer)
		if err != nil {
			failures++
			delay := backoff(p.cfg.MinBackoff, p.cfg.MaxBackoff, failures)
			if ctx.Err() == nil {
				log.Warn("tunnel dial failed", zap.String("reason", certs.DescribeVerifyError(err)),
					zap.Int("attempt", failures), zap.Duration("retry_in", delay))
			}
			sleep(ctx, delay)
			continue
		}
		failures = 0
		p.hold(ctx, s, sess, log)
		// A session that dies at once (a relay that accepts, then drops) must
		// not turn into a tight redial loop: always pause a little.
		sleep(ctx, jitter(p.cfg.MinBackoff))
	}
}

// hold serves sess in slot s until it dies or ctx ends. When the slot's
// dialer is a tunnel.Upgrader and sess runs on its fallback transport, hold
// tries the preferred transport every RetryInterval; on success the new
// session takes the slot first (make before break) and the old one drains.
func (p *Pool) hold(ctx context.Context, s *slot, sess tunnel.Session, log *zap.Logger) {
	logUp(log, "tunnel session up", sess)
	p.setLive(s, sess)
	up, _ := s.dialer.(tunnel.Upgrader)
	for {
		var retry <-chan time.Time
		var t *time.Timer
		if up != nil && !up.IsPreferred(sess) {
			t = time.NewTimer(up.RetryInterval())
			retry = t.C
		}
		stop := func() {
			if t != nil {
				t.Stop()
			}
		}
		select {
		case <-sess.Done():
			stop()
			log.Warn("tunnel session lost", zap.Error(sess.Err()))
		case <-ctx.Done():
			stop()
		case <-retry:
			next, err := up.DialPreferred(ctx)
			if err != nil {
				log.Debug("preferred transport still unavailable", zap.Error(err))
				continue
			}
			logUp(log, "tunnel session upgraded", next, zap.String("from", sess.Info().Transport))
			p.setLive(s, next)
			p.drainThenClose(ctx, sess)
			sess = next
			continue
		}
		p.setLive(s, nil)
		sess.Close()
		return
	}
}

func logUp(log *zap.Logger, msg string, sess tunnel.Session, extra ...zap.Field) {
	info := sess.Info()
	log.Info(msg, append([]zap.Field{zap.String("transport", info.Transport),
		zap.Stringer("local", info.LocalAddr), zap.String("peer", info.PeerName)}, extra...)...)
}

// drainThenClose closes a replaced session once its streams are done (or
// after drainLimit, or at pool shutdown). It no longer gets new streams.
func (p *Pool) drainThenClose(ctx context.Context, sess tunnel.Session) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer sess.Close()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		limit := time.NewTimer(drainLimit)
		defer limit.Stop()
		for sess.NumStreams() > 0 {
			select {
			case <-tick.C:
			case <-limit.C:
				return
			case <-sess.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	}()
}

// drainLimit bounds how long a replaced session may keep serving the
// streams it had; long enough for a reasoning model's answer.
const drainLimit = 15 * time.Minute

// SessionInfo describes one live session, for metrics.
type SessionInfo struct {
	Relay     string
	Slot      int
	Transport string
	Streams   int
}

// Sessions lists the live sessions.
func (p *Pool) Sessions() []SessionInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]SessionInfo, 0, len(p.live))
	for s, sess := range p.live {
		out = append(out, SessionInfo{Relay: s.dialer.Addr(), Slot: s.index,
			Transport: sess.Info().Transport, Streams: sess.NumStreams()})
	}
	return out
}

func (p *Pool) dial(ctx context.Context, d tunnel.Dialer) (tunnel.Session, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	return d.Dial(ctx)
}

func (p *Pool) setLive(s *slot, sess tunnel.Session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sess == nil {
		delete(p.live, s)
	} else {
		p.live[s] = sess
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// OpenStream opens a stream on the least-loaded live session. With no
// session up it waits for one until ctx ends.
func (p *Pool) OpenStream(ctx context.Context) (tunnel.Stream, error) {
	var lastErr error
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		sess, changed, err := p.pick()
		if err != nil {
			return nil, err
		}
		if sess != nil {
			st, err := sess.OpenStream(ctx)
			if err == nil {
				return st, nil
			}
			if ctx.Err() == nil { // keep the session's reason, not our own deadline
				lastErr = err
			}
			// The session failed under us and its supervisor will notice; try
			// again shortly with whatever is live then.
			retry.Reset(20 * time.Millisecond)
		}
		select {
		case <-changed:
		case <-retry.C:
		case <-p.closedCh:
			return nil, ErrClosed
		case <-ctx.Done():
			if lastErr != nil {
				return nil, fmt.Errorf("no tunnel session available: %w (last error: %v)", ctx.Err(), lastErr)
			}
			return nil, fmt.Errorf("no tunnel session available: %w", ctx.Err())
		}
	}
}

// pick returns the live session with the fewest open streams, or nil and a
// channel that closes when the set of sessions changes.
func (p *Pool) pick() (tunnel.Session, <-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.closedCh:
		return nil, nil, ErrClosed
	default:
	}
	var best tunnel.Session
	for _, sess := range p.live {
		select {
		case <-sess.Done():
			continue
		default:
		}
		if best == nil || sess.NumStreams() < best.NumStreams() {
			best = sess
		}
	}
	return best, p.changed, nil
}

// Live is the number of sessions currently up.
func (p *Pool) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

// WaitLive blocks until at least n sessions are up or ctx ends.
func (p *Pool) WaitLive(ctx context.Context, n int) error {
	for {
		p.mu.Lock()
		got, changed := len(p.live), p.changed
		p.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d tunnel sessions up: %w", got, n, ctx.Err())
		}
	}
}

// Close stops every supervisor, closes all sessions and waits.
func (p *Pool) Close() error {
	p.mu.Lock()
	select {
	case <-p.closedCh:
		p.mu.Unlock()
		return nil
	default:
	}
	close(p.closedCh)
	p.mu.Unlock()
	p.cancel() // outside the lock: supervisors take it in setLive
	p.wg.Wait()
	return nil
}

// backoff is min·2^(n-1), capped, with ±50% jitter so that many edges cut
// off by the same event do not reconnect in lockstep.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return jitter(min(d, hi))
}

func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
