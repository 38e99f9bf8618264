//go:build !linux

package detach

import (
	"net"
	"syscall"
)

// socketOf and peerGone cannot look into sockets here: a client that goes
// away is noticed by the next write that fails.
func socketOf(net.Conn) syscall.RawConn { return nil }

func peerGone(syscall.RawConn) bool { return false }

// awaitData is never called here: socketOf gives no socket to wait on.
func awaitData(syscall.RawConn) error { return nil }
