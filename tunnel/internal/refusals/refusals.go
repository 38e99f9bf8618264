// Package refusals counts the handshakes a tunnel listener refused and
// logs them, limited. Both transports use it: anyone who can reach the
// relay's port can make a handshake fail (garbage on the TCP port, a TLS
// client without a certificate, a spoofed QUIC Initial that times out),
// and a warning for each would let them fill the relay's disk.
package refusals

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/tunnel"
)

// Limit is how many refusals are logged: the first Burst, then one per
// Every.
type Limit struct {
	Burst int
	Every time.Duration
	// Now is the clock; time.Now when nil. Tests pass their own to make a
	// token come back without waiting for it.
	Now func() time.Time
}

// Default is the relay's limit: the first 10, then one line per 10s.
var Default = Limit{Burst: 10, Every: 10 * time.Second}

// Log counts refused handshakes and logs them, limited: the first ones
// are logged; past the burst, each logged line says how many were left
// out since the one before (not_logged), and Count has them all.
type Log struct {
	log       *zap.Logger
	transport tunnel.Transport
	limit     Limit
	count     atomic.Uint64

	mu      sync.Mutex
	tokens  int
	filled  time.Time // when tokens were last topped up
	skipped uint64    // refusals not logged since the last line
}

// New returns a Log writing to log, its lines naming transport.
func New(log *zap.Logger, transport tunnel.Transport, limit Limit) *Log {
	if limit.Now == nil {
		limit.Now = time.Now
	}
	return &Log{log: log, transport: transport, limit: limit, tokens: limit.Burst, filled: limit.Now()}
}

// Note counts a refusal and logs it if the limit allows. The count goes
// up once the line, if any, is written.
func (r *Log) Note(remote net.Addr, cause error) {
	defer r.count.Add(1)
	skipped, ok := r.allow(r.limit.Now())
	if !ok {
		return
	}
	fields := []zap.Field{zap.String("transport", string(r.transport)),
		zap.Stringer("remote", remote), zap.String("reason", certs.DescribeVerifyError(cause))}
	if skipped > 0 {
		fields = append(fields, zap.Uint64("not_logged", skipped))
	}
	r.log.Warn("tunnel handshake refused", fields...)
}

// Count is how many refusals were noted, logged or not.
func (r *Log) Count() uint64 { return r.count.Load() }

// allow takes a token, if there is one, and returns the refusals skipped
// since the last one logged.
func (r *Log) allow(now time.Time) (skipped uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := now.Sub(r.filled) / r.limit.Every; n > 0 {
		r.tokens = min(r.tokens+int(n), r.limit.Burst)
		r.filled = r.filled.Add(n * r.limit.Every)
	}
	if r.tokens == 0 {
		r.skipped++
		return 0, false
	}
	r.tokens--
	skipped, r.skipped = r.skipped, 0
	return skipped, true
}
