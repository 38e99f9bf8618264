package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// handshakes is the client listener as http.Server sees it: each accepted
// connection's TLS handshake runs on a goroutine of its own, and Accept
// returns the connection only once its handshake is done. A connection
// counts among the arrivals from its TCP accept, as before.
//
// Why: memory per open stream. A TLS 1.3 server handshake needs more than
// 8 KiB of goroutine stack, and a stack that grew stays grown as long as
// its goroutine's parked frames use more than a quarter of it. The serving
// goroutine of a streaming request parks about 5 KiB deep for the stream's
// whole life, so with net/http running the handshake itself every open
// client connection kept a 16 KiB stack, and the runtime, which starts new
// goroutines at the average stack size it sees, gave every other goroutine
// (net/http's background reader of each connection among them) 8 KiB. Here
// the handshake's stack goes back to the runtime when the handshake ends.
type handshakes struct {
	inner    net.Listener
	cfg      *tls.Config
	timeout  time.Duration // for the whole handshake; 0: none
	arrivals *arrivals
	log      *zap.Logger

	ready  chan *tls.Conn // handshakes done, for Accept
	failed chan error     // accept errors, for Accept
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// newHandshakes starts accepting on inner. Close stops it, ends the
// handshakes under way and waits for its goroutines.
func newHandshakes(inner net.Listener, cfg *tls.Config, timeout time.Duration, arr *arrivals, log *zap.Logger) *handshakes {
	ctx, cancel := context.WithCancel(context.Background())
	h := &handshakes{inner: inner, cfg: cfg, timeout: timeout, arrivals: arr, log: log,
		ready: make(chan *tls.Conn), failed: make(chan error), ctx: ctx, cancel: cancel}
	h.wg.Add(1)
	go h.acceptLoop()
	return h
}

// serverTLS is cfg as http.Server.ServeTLS would use it: HTTP/2 and
// HTTP/1.1 offered in ALPN after what cfg offers already.
func serverTLS(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	for _, p := range []string{"h2", "http/1.1"} {
		if !slices.Contains(cfg.NextProtos, p) {
			cfg.NextProtos = append(cfg.NextProtos, p)
		}
	}
	return cfg
}

func (h *handshakes) acceptLoop() {
	defer h.wg.Done()
	for {
		raw, err := h.inner.Accept()
		if err != nil {
			// A temporary error (too many open files) goes to http.Server,
			// which backs off before it calls Accept again; this loop waits
			// for it to take the error, and so backs off with it.
			select {
			case h.failed <- err:
			case <-h.ctx.Done():
				return
			}
			if h.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		tc := tls.Server(raw, h.cfg)
		h.arrivals.arrive(tc)
		h.wg.Add(1)
		go h.handshake(tc)
	}
}

func (h *handshakes) handshake(tc *tls.Conn) {
	defer h.wg.Done()
	if h.timeout > 0 {
		_ = tc.SetDeadline(time.Now().Add(h.timeout))
	}
	if err := tc.HandshakeContext(h.ctx); err != nil {
		// Scanners and broken clients: noise at info, as net/http has it.
		h.log.Debug("client TLS handshake failed", zap.Stringer("remote", tc.RemoteAddr()), zap.Error(err))
		h.drop(tc)
		return
	}
	_ = tc.SetDeadline(time.Time{})
	select {
	case h.ready <- tc:
	case <-h.ctx.Done():
		h.drop(tc)
	}
}

func (h *handshakes) drop(tc *tls.Conn) {
	h.arrivals.leave(tc)
	_ = tc.Close()
}

// Accept returns the next connection whose handshake is done.
func (h *handshakes) Accept() (net.Conn, error) {
	select {
	case tc := <-h.ready:
		return tc, nil
	case err := <-h.failed:
		return nil, err
	case <-h.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close closes the listener and the connections still in their handshake,
// and returns once the goroutines are done.
func (h *handshakes) Close() error {
	var err error
	h.once.Do(func() {
		h.cancel()
		err = h.inner.Close()
		h.wg.Wait()
	})
	return err
}

// Addr is the listener's address.
func (h *handshakes) Addr() net.Addr { return h.inner.Addr() }
