package wstun

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/strait/strait/certs"
)

// handshakeListener completes TLS handshakes in their own goroutines and
// hands only authenticated connections to Accept. A slow or hostile client
// cannot hold up others, and each refusal is logged once with its reason.
type handshakeListener struct {
	net.Listener
	tls     *tls.Config
	timeout time.Duration
	log     *zap.Logger
	// tune, when set, applies socket options to each accepted connection
	// before its handshake.
	tune func(net.Conn)

	ready  chan net.Conn
	done   chan struct{}
	stop   context.CancelFunc // aborts handshakes in progress
	base   context.Context
	wg     sync.WaitGroup
	closed sync.Once
}

func newHandshakeListener(ln net.Listener, tc *tls.Config, timeout time.Duration, log *zap.Logger,
	tune func(net.Conn)) *handshakeListener {
	h := &handshakeListener{Listener: ln, tls: tc, timeout: timeout, log: log, tune: tune,
		ready: make(chan net.Conn), done: make(chan struct{})}
	h.base, h.stop = context.WithCancel(context.Background())
	h.wg.Add(1)
	go h.acceptLoop()
	return h
}

func (h *handshakeListener) acceptLoop() {
	defer h.wg.Done()
	for {
		raw, err := h.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond) // fd exhaustion: back off, keep serving
				continue
			}
			h.shut()
			return
		}
		h.wg.Add(1)
		go h.handshake(raw)
	}
}

func (h *handshakeListener) handshake(raw net.Conn) {
	defer h.wg.Done()
	if h.tune != nil {
		h.tune(raw)
	}
	// Derived from base so that Close aborts a client stalling its handshake
	// instead of waiting out the timeout.
	ctx, cancel := context.WithTimeout(h.base, h.timeout)
	defer cancel()
	conn := tls.Server(raw, h.tls)
	if err := conn.HandshakeContext(ctx); err != nil {
		if h.base.Err() != nil { // listener closing: not a refusal
			raw.Close()
			return
		}
		h.log.Warn("tunnel handshake refused",
			zap.String("remote", raw.RemoteAddr().String()),
			zap.String("reason", certs.DescribeVerifyError(err)))
		raw.Close()
		return
	}
	cs := conn.ConnectionState()
	var out net.Conn = conn
	if isEnrol(&cs) {
		h.log.Info("enrolment connection", zap.String("remote", raw.RemoteAddr().String()))
		out = enrolConn{conn}
	} else {
		h.log.Info("edge authenticated",
			zap.String("remote", raw.RemoteAddr().String()),
			zap.String("peer", peerName(cs)),
			zap.String("cert_fingerprint", certs.Fingerprint(cs.PeerCertificates[0])))
	}
	select {
	case h.ready <- out:
	case <-h.done:
		conn.Close()
	}
}

// Accept returns the next authenticated connection.
func (h *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ready:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; pending handshakes are abandoned.
func (h *handshakeListener) Close() error {
	h.shut()
	return h.Listener.Close()
}

func (h *handshakeListener) shut() {
	h.closed.Do(func() {
		close(h.done)
		h.stop()
	})
}

// wait blocks until the accept loop and every handshake goroutine ended.
func (h *handshakeListener) wait() { h.wg.Wait() }
