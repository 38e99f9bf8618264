package relay

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"
)

// readyTTL caches a readiness answer, so a probe every second does not open
// a connection to every provider every second.
const readyTTL = 10 * time.Second

// readiness remembers the last provider reachability check.
type readiness struct {
	mu      sync.Mutex
	checked time.Time
	err     error
}

// Ready reports whether at least one configured provider is reachable: a
// TCP connection to its host opens. That is what the relay needs to be
// useful; whether a provider accepts the key is the key pool's business.
func (r *Relay) Ready(ctx context.Context) error {
	r.ready.mu.Lock()
	defer r.ready.mu.Unlock()
	if !r.ready.checked.IsZero() && time.Since(r.ready.checked) < readyTTL {
		return r.ready.err
	}
	r.ready.err = r.dialAnyProvider(ctx)
	r.ready.checked = time.Now()
	return r.ready.err
}

func (r *Relay) dialAnyProvider(ctx context.Context) error {
	var errs []error
	var d net.Dialer
	for _, p := range r.Registry().Providers() {
		u, err := url.Parse(p.BaseURL())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		c, err := d.DialContext(dctx, "tcp", net.JoinHostPort(u.Hostname(), port))
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		errs = append(errs, errors.New(p.Name+": "+err.Error()))
	}
	return errors.Join(append([]error{errors.New("no provider reachable")}, errs...)...)
}
