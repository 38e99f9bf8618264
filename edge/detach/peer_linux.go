package detach

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpEstablished is Linux's TCP_ESTABLISHED state in TCP_INFO.
const tcpEstablished = 1

// peerGone reports whether the client of socket rc (see socketOf) closed
// or reset the connection: its socket is no longer ESTABLISHED
// (CLOSE_WAIT after the client's FIN, CLOSE after a reset). A TLS
// close_notify ahead of the FIN does not hide it, as it would from a peek
// at the socket's data. It costs one getsockopt and no goroutine; a
// connection it cannot look into (rc nil) counts as there.
func peerGone(rc syscall.RawConn) bool {
	if rc == nil {
		return false
	}
	gone := false
	_ = rc.Control(func(fd uintptr) {
		ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		gone = err == nil && ti.State != tcpEstablished
	})
	return gone
}

// socketOf is the socket under c's wrappers (TLS, counting), nil when
// there is none to look into.
func socketOf(c net.Conn) syscall.RawConn {
	for {
		if sc, ok := c.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
	}
}

// awaitData waits until the client of socket rc sends something (the next
// request), closes or the read deadline passes, without reading: a peek.
// It returns an error for the deadline, a closed connection or a failed
// socket; nil once data waits.
func awaitData(rc syscall.RawConn) error {
	var b [1]byte
	var n int
	var perr error
	err := rc.Read(func(fd uintptr) bool {
		n, _, perr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return perr != unix.EAGAIN && perr != unix.EINTR
	})
	switch {
	case err != nil:
		return err
	case perr != nil:
		return perr
	case n == 0:
		return net.ErrClosed // the client closed the connection
	}
	return nil
}
