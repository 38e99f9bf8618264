//go:build !linux

package wstun

import (
	"syscall"
	"time"

	"github.com/strait/strait/tunnel"
)

// availableCongestion is unknown outside Linux.
func availableCongestion() []string { return nil }

// probeCongestion fails: only Linux lets a socket choose its algorithm here.
func probeCongestion(string) error { return errNoSockopts }

// control applies nothing outside Linux.
func (o sockopts) control(syscall.RawConn) error { return nil }

// readSocketInfo knows nothing outside Linux.
func readSocketInfo(syscall.RawConn) SocketInfo { return SocketInfo{} }

// readRTT is unknown outside Linux, which counts as a slow path.
func readRTT(syscall.RawConn) time.Duration { return 0 }

// readSenderState knows nothing outside Linux: the relay never renews a
// session for its window there.
func readSenderState(syscall.RawConn) tunnel.SenderState { return tunnel.SenderState{} }

// readCwnd is unknown outside Linux: small writes are never paced.
func readCwnd(syscall.RawConn) (int, bool) { return 0, false }
