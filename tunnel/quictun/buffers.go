package quictun

import (
	"net"
	"syscall"

	"go.uber.org/zap"
)

// wantBuffer is the UDP buffer size quic-go asks the OS for (7 MiB); below
// it, bursts at border bandwidth-delay products overflow the socket and turn
// into packet loss.
const wantBuffer = 7 << 20

// checkBuffers reads back the socket buffer sizes the OS granted after
// quic-go's attempt to raise them, and says clearly when they fall short and
// how to fix it. (quic-go's own warning goes to the standard logger; the
// binaries silence it in favour of this one.)
func checkBuffers(udp *net.UDPConn, log *zap.Logger, fields ...zap.Field) {
	rcv, snd, err := bufferSizes(udp)
	if err != nil {
		log.Debug("cannot read UDP buffer sizes", zap.Error(err))
		return
	}
	fields = append(fields, zap.Int("recv_buffer", rcv), zap.Int("send_buffer", snd), zap.Int("wanted", wantBuffer))
	if rcv < wantBuffer || snd < wantBuffer {
		log.Warn("the OS refused the UDP buffer sizes QUIC needs; throughput will suffer under loss. "+
			"Fix: sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000 (or run as root)", fields...)
		return
	}
	log.Debug("UDP buffers sized for QUIC", fields...)
}

func bufferSizes(udp *net.UDPConn) (rcv, snd int, err error) {
	raw, err := udp.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		rcv, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		if serr == nil {
			snd, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		}
	})
	if err == nil {
		err = serr
	}
	// Linux reports double the requested size (it counts bookkeeping).
	return rcv / 2, snd / 2, err
}
