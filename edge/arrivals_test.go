package edge

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/tunnel/tunneltest"
	"go.uber.org/zap"
)

// serveHandshakes serves h over TLS as Edge.Serve does (acceptClients
// with a 5 s handshake timeout, a's ConnState hook) until the
// test ends, and returns its address and the roots that trust its
// certificate.
func serveHandshakes(t *testing.T, a *arrivals, h http.Handler) (string, *x509.CertPool) {
	t.Helper()
	return serveHandshakesWith(t, a, h, 5*time.Second, nil)
}

// serveHandshakesWith is serveHandshakes with the handshake timeout given
// and, when set, edit applied to the server's TLS config.
func serveHandshakesWith(t *testing.T, a *arrivals, h http.Handler, timeout time.Duration, edit func(*tls.Config)) (string, *x509.CertPool) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pki := tunneltest.NewPKI(t, "")
	cfg := serverTLS(certs.FrontConfig(certs.StaticKeyPair(pki.Relay)))
	if edit != nil {
		edit(cfg)
	}
	hl := acceptClients(ln, cfg, timeout, a, zap.NewNop())
	srv := &http.Server{Handler: h, TLSConfig: cfg, ConnState: a.connState, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(hl) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
		hl.Wait()
	})
	roots := x509.NewCertPool()
	roots.AddCert(pki.CA.Cert)
	return ln.Addr().String(), roots
}

// announcements records what arrivals tells the pool, one call at a time.
type announcements chan int

func (a announcements) Expect(n int) { a <- n }

// next waits for the next announcement.
func (a announcements) next(t *testing.T) int {
	t.Helper()
	select {
	case n := <-a:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no announcement")
		return 0
	}
}

// none checks that nothing more was announced once the server has handled
// what came before (the caller waited for a response or a close).
func (a announcements) none(t *testing.T) {
	t.Helper()
	select {
	case n := <-a:
		t.Fatalf("announced %+d; want nothing", n)
	default:
	}
}

// TestArrivals: a client connection counts as a stream on its way from its
// accept (before its TLS handshake) until its first request is read, or
// until it closes without one (a handshake that fails included), and once
// only: the requests that follow on a kept-alive connection announce
// nothing.
func TestArrivals(t *testing.T) {
	got := make(announcements, 16)
	a := newArrivals(got)
	addr, roots := serveHandshakes(t, a, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	get := func(c net.Conn, br *bufio.Reader) {
		t.Helper()
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	t.Run("request", func(t *testing.T) {
		c := dial()
		if n := got.next(t); n != 1 {
			t.Fatalf("accept announced %+d; want +1", n)
		}
		br := bufio.NewReader(c)
		get(c, br)
		if n := got.next(t); n != -1 {
			t.Fatalf("first request withdrew %+d; want -1", n)
		}
		get(c, br) // kept alive: nothing more
		got.none(t)
		c.Close()
		// c's close announces nothing (its first request withdrew it), so
		// what comes next is the next connection's.
		idle := dial()
		if n := got.next(t); n != 1 {
			t.Fatalf("after a kept-alive connection closed: %+d; want only the next accept's +1", n)
		}
		idle.Close()
		if n := got.next(t); n != -1 {
			t.Fatalf("a connection closed without a request withdrew %+d; want -1", n)
		}
	})
	t.Run("failed handshake", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if n := got.next(t); n != 1 {
			t.Fatalf("accept announced %+d; want +1", n)
		}
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\n\r\n"); err != nil { // not TLS
			t.Fatal(err)
		}
		if n := got.next(t); n != -1 {
			t.Fatalf("a failed handshake withdrew %+d; want -1", n)
		}
	})
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n.Load() != 0 || len(a.pending) != 0 {
		t.Errorf("%d connections still pending after all closed", a.n.Load())
	}
}
