package tlsaccept

import (
	"crypto/tls"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strait/strait/tunnel/tunneltest"
)

// failingOnce is a listener whose first Accept fails with errno, as
// accept(2) does when the process or the system is out of file
// descriptors or buffers for a moment.
type failingOnce struct {
	net.Listener
	errno  syscall.Errno
	failed atomic.Bool
}

func (f *failingOnce) Accept() (net.Conn, error) {
	if !f.failed.Swap(true) {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: f.Addr(), Err: os.NewSyscallError("accept4", f.errno)}
	}
	return f.Listener.Accept()
}

// TestListenerOutlivesTransientAcceptErrors: running out of file
// descriptors (a flood of connections can do it) or kernel buffers fails
// one accept, not the listener: the next client is still served.
func TestListenerOutlivesTransientAcceptErrors(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM} {
		t.Run(errno.Error(), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			l := New(&failingOnce{Listener: ln, errno: errno}, pki.ServerConfig(), time.Minute, Hooks{})
			client := make(chan error, 1)
			defer func() {
				l.Close() // a client still in its handshake is reset
				l.Wait()
				<-client
			}()
			go func() {
				d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: pki.ClientConfig()}
				c, err := d.Dial("tcp", ln.Addr().String())
				if err == nil {
					c.Close()
				}
				client <- err
			}()
			c, err := l.Accept()
			if err != nil {
				t.Fatalf("Accept after a failed accept (%v): %v; want the next connection", errno, err)
			}
			c.Close()
		})
	}
}
