package wstun

import (
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/strait/strait/tunnel"
	"golang.org/x/sys/unix"
)

// availableCongestionFile lists the algorithms the kernel has loaded; inside
// a network namespace it is the host's list (modules are global), while the
// default (tcp_congestion_control) may differ per namespace.
const availableCongestionFile = "/proc/sys/net/ipv4/tcp_available_congestion_control"

// availableCongestion lists the congestion controls the kernel has loaded,
// for messages; nil when it cannot be read.
func availableCongestion() []string {
	b, err := os.ReadFile(availableCongestionFile)
	if err != nil {
		return nil
	}
	return parseCongestionList(string(b))
}

// probeCongestion reports whether this process may set name on a TCP socket:
// it tries on a fresh unconnected socket, which may load the module.
func probeCongestion(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return setCongestion(fd, name)
}

// setCongestion sets TCP_CONGESTION with the kernel's reason on failure.
func setCongestion(fd int, name string) error {
	err := unix.SetsockoptString(fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, name)
	switch {
	case errors.Is(err, unix.ENOENT):
		return errors.New("not available in this kernel")
	case errors.Is(err, unix.EPERM):
		return errors.New("not permitted for this process")
	}
	return err
}

// control applies the options to a socket, before connecting (the edge's
// net.Dialer.Control) or once accepted (the relay).
func (o sockopts) control(rc syscall.RawConn) error {
	var opErr error
	err := rc.Control(func(fd uintptr) {
		if o.congestion != "" {
			opErr = setCongestion(int(fd), o.congestion)
		}
		if o.lowat > 0 {
			opErr = errors.Join(opErr, unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, o.lowat))
		}
	})
	return errors.Join(err, opErr)
}

// readSocketInfo reads back the congestion control and TCP_NOTSENT_LOWAT.
func readSocketInfo(rc syscall.RawConn) SocketInfo {
	var si SocketInfo
	_ = rc.Control(func(fd uintptr) {
		if cc, err := unix.GetsockoptString(int(fd), unix.IPPROTO_TCP, unix.TCP_CONGESTION); err == nil {
			si.Congestion = cc
		}
		if v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT); err == nil && v > 0 && v < 1<<31-1 {
			si.NotSentLowat = v
		}
	})
	return si
}

// readRTT is the socket's minimum round-trip time (tcpi_min_rtt, over the
// kernel's window of 5 minutes); zero when unknown.
func readRTT(rc syscall.RawConn) time.Duration {
	if ti := readTCPInfo(rc); ti != nil {
		return time.Duration(ti.Min_rtt) * time.Microsecond
	}
	return 0
}

// readTCPInfo is the socket's TCP_INFO; nil when it cannot be read.
func readTCPInfo(rc syscall.RawConn) *unix.TCPInfo {
	var info *unix.TCPInfo
	_ = rc.Control(func(fd uintptr) {
		if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			info = ti
		}
	})
	return info
}

// infiniteSSThresh is the kernel's slow-start threshold until one is set
// (TCP_INFINITE_SSTHRESH).
const infiniteSSThresh = 0x7fffffff

// readSenderState is what the kernel knows of the socket as a sender
// (tunnel.SenderState); the zero state when TCP_INFO cannot be read.
func readSenderState(rc syscall.RawConn) tunnel.SenderState {
	ti := readTCPInfo(rc)
	if ti == nil {
		return tunnel.SenderState{}
	}
	mss := uint64(ti.Snd_mss)
	s := tunnel.SenderState{Window: uint64(ti.Snd_cwnd) * mss,
		SmoothedRTT: time.Duration(ti.Rtt) * time.Microsecond, MinRTT: time.Duration(ti.Min_rtt) * time.Microsecond,
		PacketsSent: uint64(ti.Segs_out), PacketsLost: uint64(ti.Total_retrans)}
	if ti.Snd_ssthresh < infiniteSSThresh {
		s.SlowStartThreshold = uint64(ti.Snd_ssthresh) * mss
	}
	return s
}

// readCwnd is the congestion window in segments (tcpi_snd_cwnd).
func readCwnd(rc syscall.RawConn) (int, bool) {
	if ti := readTCPInfo(rc); ti != nil {
		return int(ti.Snd_cwnd), true
	}
	return 0, false
}
