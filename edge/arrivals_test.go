package edge

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

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
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = a.connState
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	dial := func() *tls.Conn {
		c, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
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
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
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
	if a.n.Load() != 0 || len(a.pending) != 0 {
		t.Errorf("%d connections still pending after all closed", a.n.Load())
	}
}
