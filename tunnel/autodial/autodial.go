// Package autodial picks a transport per relay: it prefers one dialer (QUIC)
// and falls back to another (WebSocket over TCP) when the preferred one
// cannot connect within a short bound, as when UDP is blocked or throttled
// at the border. While on the fallback, the pool asks it periodically to try
// the preferred transport again and moves to it without failing requests.
package autodial

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/tunnel"
)

// Auto is how configuration names this dialer's choice among the
// transports: QUIC preferred, WebSocket as the fallback. No session reports
// it; each reports the transport that carries it.
const Auto tunnel.Transport = "auto"

// Config configures a Dialer.
type Config struct {
	Preferred tunnel.Dialer // required, e.g. QUIC
	Fallback  tunnel.Dialer // required, e.g. WebSocket
	// PreferredTransport is the Info().Transport of Preferred's sessions
	// (tunnel.TransportQUIC).
	PreferredTransport tunnel.Transport
	// PreferredTimeout bounds one attempt on the preferred transport before
	// falling back. Zero means 3s.
	PreferredTimeout time.Duration
	// RetryPreferred is how long to stay on the fallback before trying the
	// preferred transport again. Zero means 1 minute.
	RetryPreferred time.Duration
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
}

// Dialer implements tunnel.Dialer and tunnel.Upgrader.
type Dialer struct {
	cfg Config
	log *zap.Logger

	mu         sync.Mutex
	failedAt   time.Time // last time the preferred transport failed
	onFallback bool      // for logging state changes once
}

// New returns a Dialer.
func New(cfg Config) (*Dialer, error) {
	if cfg.Preferred == nil || cfg.Fallback == nil {
		return nil, fmt.Errorf("autodial: both dialers are required")
	}
	if cfg.PreferredTimeout <= 0 {
		cfg.PreferredTimeout = 3 * time.Second
	}
	if cfg.RetryPreferred <= 0 {
		cfg.RetryPreferred = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Dialer{cfg: cfg, log: cfg.Logger.Named("autodial").With(zap.String("relay", cfg.Fallback.Addr()))}, nil
}

// Addr names the relay (the fallback's address).
func (d *Dialer) Addr() string { return d.cfg.Fallback.Addr() }

// Dial tries the preferred transport unless it failed recently, then the
// fallback. A recent failure skips the preferred attempt so that reconnects
// do not each pay PreferredTimeout while UDP is blocked.
func (d *Dialer) Dial(ctx context.Context) (tunnel.Session, error) {
	if !d.recentlyFailed() {
		if s, err := d.DialPreferred(ctx); err == nil {
			return s, nil
		} else if ctx.Err() != nil {
			return nil, err
		}
	}
	return d.cfg.Fallback.Dial(ctx)
}

// DialPreferred makes one bounded attempt on the preferred transport.
func (d *Dialer) DialPreferred(ctx context.Context) (tunnel.Session, error) {
	pctx, cancel := context.WithTimeout(ctx, d.cfg.PreferredTimeout)
	defer cancel()
	s, err := d.cfg.Preferred.Dial(pctx)
	d.record(err, ctx.Err() != nil)
	return s, err
}

// IsPreferred reports whether s runs on the preferred transport.
func (d *Dialer) IsPreferred(s tunnel.Session) bool {
	return s.Info().Transport == d.cfg.PreferredTransport
}

// RetryInterval is how often the pool should try to upgrade a fallback
// session.
func (d *Dialer) RetryInterval() time.Duration { return d.cfg.RetryPreferred }

func (d *Dialer) recentlyFailed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.failedAt.IsZero() && time.Since(d.failedAt) < d.cfg.RetryPreferred
}

// record notes the outcome of a preferred attempt and logs transitions.
func (d *Dialer) record(err error, canceled bool) {
	if canceled {
		return // the caller gave up; says nothing about the transport
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case err != nil:
		d.failedAt = time.Now()
		if !d.onFallback {
			d.onFallback = true
			d.log.Warn("preferred transport unavailable; falling back",
				zap.String("preferred", string(d.cfg.PreferredTransport)), zap.Error(err),
				zap.Duration("retry_in", d.cfg.RetryPreferred))
		}
	case d.onFallback:
		d.onFallback = false
		d.failedAt = time.Time{}
		d.log.Info("preferred transport is back", zap.String("preferred", string(d.cfg.PreferredTransport)))
	}
}

var (
	_ tunnel.Dialer   = (*Dialer)(nil)
	_ tunnel.Upgrader = (*Dialer)(nil)
)
