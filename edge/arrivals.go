package edge

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// expecter hears of streams on their way: the tunnel pool (pool.Expect).
type expecter interface{ Expect(n int) }

// arrivals announces each new client connection to the tunnel pool as a
// stream on its way, from its accept until its first request is read or it
// closes without one. A client's TCP and TLS handshakes come before its
// request; when a burst of clients connects at once they take a few
// hundred milliseconds of CPU, which the pool uses to dial the sessions
// the burst will need (see pool.Pool.Expect). Its connState is the
// http.Server's ConnState hook: net/http calls it for one connection at a
// time, in order, and always ends with StateClosed or StateHijacked, so
// nothing stays announced after its connection is gone. The handshakes
// listener announces a connection at its accept and withdraws it when its
// handshake fails, before net/http sees it.
type arrivals struct {
	pool    expecter
	n       atomic.Int64 // len(pending), read without mu on every request
	mu      sync.Mutex
	pending map[net.Conn]struct{}
}

func newArrivals(pool expecter) *arrivals {
	return &arrivals{pool: pool, pending: make(map[net.Conn]struct{})}
}

func (a *arrivals) connState(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		a.arrive(c)
	case http.StateActive, http.StateClosed, http.StateHijacked:
		a.leave(c)
	}
}

// arrive announces c, once: the listener announces it at its accept, and
// http.Server's StateNew for it, after its handshake, then changes nothing.
func (a *arrivals) arrive(c net.Conn) {
	a.mu.Lock()
	_, known := a.pending[c]
	a.pending[c] = struct{}{}
	a.n.Store(int64(len(a.pending)))
	a.mu.Unlock()
	if !known {
		a.pool.Expect(1)
	}
}

// leave withdraws c if it is announced.
func (a *arrivals) leave(c net.Conn) {
	if a.n.Load() == 0 { // kept-alive connections, between bursts
		return
	}
	a.mu.Lock()
	_, ok := a.pending[c]
	delete(a.pending, c)
	a.n.Store(int64(len(a.pending)))
	a.mu.Unlock()
	if ok {
		a.pool.Expect(-1)
	}
}
