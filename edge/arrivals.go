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
// the burst will need (see pool.Pool.Expect). The client listener
// (acceptClients) announces a connection at its accept and withdraws it
// when its handshake fails, before net/http sees it; from then on
// connState, the http.Server's ConnState hook, withdraws it: net/http
// always ends a connection with StateClosed or StateHijacked, so nothing
// stays announced after its connection is gone.
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
	case http.StateActive, http.StateClosed, http.StateHijacked:
		a.leave(c)
	}
}

// arrive announces c: the client listener calls it at c's accept, before
// its handshake (acceptClients).
func (a *arrivals) arrive(c net.Conn) {
	a.mu.Lock()
	a.pending[c] = struct{}{}
	a.n.Store(int64(len(a.pending)))
	a.mu.Unlock()
	a.pool.Expect(1)
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
