package tlsaccept

import (
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strait/strait/tunnel/tunneltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wrapped is what a Ready hook hands out.
type wrapped struct{ net.Conn }

// TestListener: Accept hands out only finished handshakes, as Ready made
// them; a client that says nothing holds up no other; a failed handshake
// is Refused and Dropped; Close abandons a handshake in progress (Dropped,
// not Refused) and Wait returns once every goroutine is done.
func TestListener(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused, dropped := make(chan error, 4), make(chan struct{}, 4)
	l := New(ln, pki.ServerConfig(), time.Minute, Hooks{
		Refused: func(_ *tls.Conn, err error) { refused <- err },
		Dropped: func(*tls.Conn) { dropped <- struct{}{} },
		Ready:   func(c *tls.Conn) net.Conn { return wrapped{c} },
	})
	addr := ln.Addr().String()
	silent, err := net.Dial("tcp", addr) // in its handshake until Close
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	client := make(chan error, 1)
	go func() {
		c, err := tls.Dial("tcp", addr, pki.ClientConfig())
		if err == nil {
			err = c.Handshake()
			defer c.Close()
		}
		client <- err
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(wrapped); !ok || !c.(wrapped).Conn.(*tls.Conn).ConnectionState().HandshakeComplete {
		t.Fatalf("Accept returned %T; want Ready's wrapping of a finished handshake", c)
	}
	if err := <-client; err != nil {
		t.Fatal(err)
	}
	// A connection handed back comes out of Accept again, as it is.
	returned := make(chan bool, 1)
	go func() { returned <- l.Return(c) }()
	again, err := l.Accept()
	if err != nil || again != c || !<-returned {
		t.Fatalf("Accept after Return: %v, %v; want the connection returned", again, err)
	}
	c.Close()

	bad, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil { // not TLS
		t.Fatal(err)
	}
	select {
	case <-refused:
	case <-time.After(10 * time.Second):
		t.Fatal("a failed handshake was not refused")
	}
	<-dropped
	bad.Close()

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.Wait()
	select {
	case <-dropped: // the silent client's
	default:
		t.Fatal("the handshake abandoned by Close was not dropped")
	}
	select {
	case err := <-refused:
		t.Fatalf("Close's abandoned handshake was refused: %v", err)
	default:
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	if l.Return(c) {
		t.Fatal("Return after Close took the connection")
	}
}
