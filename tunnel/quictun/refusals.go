package quictun

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/tunnel"
)

// How many refused handshakes are logged: the first refusalBurst, then one
// per refusalEvery. Variables so tests can make the refill never come.
var (
	refusalBurst = 10
	refusalEvery = 10 * time.Second
)

// refusals logs refused handshakes, limited: anyone who can send the relay
// a UDP datagram can make a handshake fail (a spoofed Initial is enough; it
// times out), and a line for each would let them fill the relay's disk.
// The first ones are logged; past the burst, each logged line says how
// many were left out since the one before, and the count has them all.
type refusals struct {
	log   *zap.Logger
	count atomic.Uint64

	mu      sync.Mutex
	tokens  int
	filled  time.Time // when tokens were last topped up
	skipped uint64    // refusals not logged since the last line
}

func newRefusals(log *zap.Logger) *refusals {
	return &refusals{log: log, tokens: refusalBurst, filled: time.Now()}
}

// note counts a refusal and logs it if the limit allows.
func (r *refusals) note(remote net.Addr, cause error) {
	r.count.Add(1)
	skipped, ok := r.allow(time.Now())
	if !ok {
		return
	}
	fields := []zap.Field{zap.String("transport", string(tunnel.TransportQUIC)),
		zap.Stringer("remote", remote), zap.String("reason", certs.DescribeVerifyError(cause))}
	if skipped > 0 {
		fields = append(fields, zap.Uint64("not_logged", skipped))
	}
	r.log.Warn("tunnel handshake refused", fields...)
}

// allow takes a token, if there is one, and returns the refusals skipped
// since the last one logged.
func (r *refusals) allow(now time.Time) (skipped uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := now.Sub(r.filled) / refusalEvery; n > 0 {
		r.tokens = min(r.tokens+int(n), refusalBurst)
		r.filled = r.filled.Add(n * refusalEvery)
	}
	if r.tokens == 0 {
		r.skipped++
		return 0, false
	}
	r.tokens--
	skipped, r.skipped = r.skipped, 0
	return skipped, true
}
