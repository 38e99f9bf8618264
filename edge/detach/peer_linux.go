package detach

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpEstablished is Linux's TCP_ESTABLISHED state in TCP_INFO.
const tcpEstablished = 1

// peerGone reports whether c's client closed or reset the connection: its
// socket is no longer ESTABLISHED (CLOSE_WAIT after the client's FIN,
// CLOSE after a reset). A TLS close_notify ahead of the FIN does not hide
// it, as it would from a peek at the socket's data. It costs one
// getsockopt and no goroutine; a connection it cannot look into counts as
// there.
func peerGone(c net.Conn) bool {
	rc, err := rawConn(c)
	if err != nil {
		return false
	}
	gone := false
	_ = rc.Control(func(fd uintptr) {
		ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		gone = err == nil && ti.State != tcpEstablished
	})
	return gone
}

// rawConn is the socket under c's wrappers (TLS, counting).
func rawConn(c net.Conn) (syscall.RawConn, error) {
	for {
		if sc, ok := c.(syscall.Conn); ok {
			return sc.SyscallConn()
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil, errNotTCP
		}
		c = u.NetConn()
	}
}

// errNotTCP is rawConn's answer for a connection it cannot look into.
var errNotTCP = errors.New("not a TCP connection")
