// Package tlsaccept is a listener that completes each accepted
// connection's TLS handshake on a goroutine of its own and hands out only
// connections whose handshake succeeded.
//
// Why: a slow or hostile client holds up no other, and the handshake's
// stack (a TLS 1.3 server handshake needs more than 8 KiB) goes back to the
// runtime when the handshake ends, instead of staying with the goroutine
// that then serves the connection: net/http's serving goroutine keeps a
// grown stack while it parks more than a quarter of it deep, as it does for
// a whole streamed response.
package tlsaccept

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Hooks are what a Listener's user sees of each connection. All are
// optional; each runs on the connection's own goroutine.
type Hooks struct {
	// Accepted sees each connection before its handshake (socket options;
	// counting arrivals).
	Accepted func(*tls.Conn)
	// Refused sees a connection whose handshake failed while the listener
	// was open (not one abandoned by Close).
	Refused func(*tls.Conn, error)
	// Dropped sees every connection Accept will never return: refused, or
	// abandoned by Close. The listener closes it.
	Dropped func(*tls.Conn)
	// Ready sees a connection whose handshake succeeded and returns what
	// Accept hands out (the connection itself when Ready is nil).
	Ready func(*tls.Conn) net.Conn
}

// Listener hands out connections whose TLS handshake is done.
type Listener struct {
	inner   net.Listener
	tls     *tls.Config
	timeout time.Duration
	hooks   Hooks

	ready  chan net.Conn
	done   chan struct{}
	base   context.Context
	stop   context.CancelFunc // aborts handshakes in progress
	wg     sync.WaitGroup
	closed sync.Once
}

// New starts accepting on ln. timeout bounds each handshake (0: none).
// Close stops it; Wait waits for its goroutines.
func New(ln net.Listener, cfg *tls.Config, timeout time.Duration, hooks Hooks) *Listener {
	l := &Listener{inner: ln, tls: cfg, timeout: timeout, hooks: hooks,
		ready: make(chan net.Conn), done: make(chan struct{})}
	l.base, l.stop = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			if transient(err) {
				time.Sleep(10 * time.Millisecond) // back off, keep serving
				continue
			}
			l.shut()
			return
		}
		l.wg.Add(1)
		go l.handshake(tls.Server(raw, l.tls))
	}
}

// transient reports an Accept error the listener outlives: a timeout, or
// the process or system out of file descriptors or buffers for a moment
// (a flood of connections does it). accept(2) reports those as EMFILE,
// ENFILE, ENOBUFS and ENOMEM, which are not timeouts: stopping on them
// would leave the listener dead once the flood is over.
func transient(err error) bool {
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

func (l *Listener) handshake(c *tls.Conn) {
	defer l.wg.Done()
	if l.hooks.Accepted != nil {
		l.hooks.Accepted(c)
	}
	// Derived from base so that Close aborts a client stalling its
	// handshake instead of waiting out the timeout.
	ctx, cancel := l.base, context.CancelFunc(func() {})
	if l.timeout > 0 {
		ctx, cancel = context.WithTimeout(l.base, l.timeout)
	}
	err := c.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if l.base.Err() == nil && l.hooks.Refused != nil { // not the listener closing
			l.hooks.Refused(c, err)
		}
		l.drop(c)
		return
	}
	var out net.Conn = c
	if l.hooks.Ready != nil {
		out = l.hooks.Ready(c)
	}
	select {
	case l.ready <- out:
	case <-l.done:
		l.drop(c)
	}
}

func (l *Listener) drop(c *tls.Conn) {
	if l.hooks.Dropped != nil {
		l.hooks.Dropped(c)
	}
	_ = c.NetConn().Close()
}

// Accept returns the next connection whose handshake is done.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Return hands c, a connection Accept returned, back to Accept: its user
// is done with it for now, and it may carry more requests (an HTTP/1.1
// connection taken from net/http to stream one response, see
// edge/detach). It reports false once the listener is closed; c is then
// the caller's to close.
func (l *Listener) Return(c net.Conn) bool {
	select {
	case l.ready <- c:
		return true
	case <-l.done:
		return false
	}
}

// Close stops accepting and abandons the handshakes in progress; Wait
// waits for them.
func (l *Listener) Close() error {
	l.shut()
	return l.inner.Close()
}

func (l *Listener) shut() {
	l.closed.Do(func() {
		close(l.done)
		l.stop()
	})
}

// Wait blocks until the accept loop and every handshake goroutine ended.
func (l *Listener) Wait() { l.wg.Wait() }

// Addr is the listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }
