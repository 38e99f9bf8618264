package wstun_test

import (
	"context"
	"crypto/tls"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// opTimeout bounds every single blocking step of a test, so a hang fails the
// test with a message instead of stalling until go test's global timeout.
const opTimeout = 10 * time.Second

// testConfig keeps the handshake bound short; heartbeats stay at their
// production defaults unless a test needs otherwise.
func testConfig() wstun.Config {
	return wstun.Config{HandshakeTimeout: 5 * time.Second}
}

// listen starts a relay-side Listener on a loopback port; it is closed when
// the test ends.
func listen(t *testing.T, pki *tunneltest.PKI, cfg wstun.Config) *wstun.Listener {
	t.Helper()
	ln, err := listenWith(t, pki.ServerConfig(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	return ln
}

// listenWith is listen with the caller's server TLS config.
func listenWith(t *testing.T, tc *tls.Config, cfg wstun.Config) (*wstun.Listener, error) {
	t.Helper()
	ln, err := wstun.Listen(tunneltest.Listen(t), tc, cfg)
	if err == nil {
		t.Cleanup(func() { ln.Close() })
	}
	return ln, err
}

// dial opens an edge-side session to addr; a successful session is closed
// when the test ends.
func dial(t *testing.T, addr string, tc *tls.Config, cfg wstun.Config) (tunnel.Session, error) {
	t.Helper()
	d, err := wstun.NewDialer(addr, tc, cfg)
	if err != nil {
		t.Fatalf("NewDialer: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	sess, err := d.Dial(ctx)
	if err == nil {
		t.Cleanup(func() { sess.Close() })
	}
	return sess, err
}

// accept waits for the next session on ln and closes it when the test ends.
func accept(t *testing.T, ln tunnel.Listener) tunnel.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	sess, err := ln.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { sess.Close() })
	return sess
}

// pair is one edge session and the relay session it landed on.
type pair struct {
	pki         *tunneltest.PKI
	ln          *wstun.Listener
	edge, relay tunnel.Session
}

// newPair connects an edge to a relay directly over loopback.
func newPair(t *testing.T, cfg wstun.Config) *pair {
	t.Helper()
	pki := tunneltest.NewPKI(t, "")
	ln := listen(t, pki, cfg)
	return connect(t, pki, ln, ln.Addr().String(), cfg)
}

// connect dials addr and accepts the resulting session on ln.
func connect(t *testing.T, pki *tunneltest.PKI, ln *wstun.Listener, addr string, cfg wstun.Config) *pair {
	t.Helper()
	edge, err := dial(t, addr, pki.ClientConfig(), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	return &pair{pki: pki, ln: ln, edge: edge, relay: accept(t, ln)}
}

// open opens a stream with a bounded context and a deadline on all I/O.
func open(t *testing.T, s tunnel.Session) tunnel.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	st, err := s.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	st.SetDeadline(time.Now().Add(opTimeout))
	t.Cleanup(func() { st.Close() })
	return st
}

// serveEcho accepts streams on s and echoes each after verifying the SHA-256
// prefix. stop waits for every handler after ending the accept loop.
func serveEcho(t *testing.T, s tunnel.Session) (stop func()) {
	return serveStreams(t, s, func(st tunnel.Stream) {
		st.SetDeadline(time.Now().Add(opTimeout))
		if err := tunneltest.EchoVerified(st); err != nil {
			t.Errorf("relay stream %d: %v", st.ID(), err)
		}
	})
}

// serveStreams accepts streams on s and runs handle on each in its own
// goroutine, closing the stream after. stop waits for every handler after
// ending the accept loop.
func serveStreams(t *testing.T, s tunnel.Session, handle func(tunnel.Stream)) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			st, err := s.AcceptStream(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				defer st.Close()
				handle(st)
			})
		}
	})
	return func() { cancel(); wg.Wait() }
}
