package quictun

import (
	"net"

	"go.uber.org/zap"
)

// wantBuffer is the UDP buffer size quic-go asks the OS for (7 MiB); below
// it, bursts at border bandwidth-delay products overflow the socket and turn
// into packet loss.
const wantBuffer = 7 << 20

// sizeBuffers raises the socket's buffers to wantBuffer before quic-go sees
// the socket: first within net.core.{r,w}mem_max, then, where the process
// may (CAP_NET_ADMIN), past it. quic-go's own attempt compares against the
// doubled size Linux reports and so can believe a capped buffer is big
// enough; measuring here is what makes the warning below truthful.
func sizeBuffers(udp *net.UDPConn) {
	_ = udp.SetReadBuffer(wantBuffer)
	_ = udp.SetWriteBuffer(wantBuffer)
	forceBuffers(udp, wantBuffer) // no-op where unsupported
}

// checkBuffers reports the buffer sizes the OS granted and says clearly when
// they fall short and how to fix it. (quic-go's own warning goes to the
// standard logger; the binaries silence it in favour of this one.)
func checkBuffers(udp *net.UDPConn, log *zap.Logger, fields ...zap.Field) {
	rcv, snd, err := bufferSizes(udp)
	if err != nil {
		log.Debug("cannot read UDP buffer sizes", zap.Error(err))
		return
	}
	fields = append(fields, zap.Int("recv_buffer", rcv), zap.Int("send_buffer", snd), zap.Int("wanted", wantBuffer))
	if rcv < wantBuffer || snd < wantBuffer {
		log.Warn("the OS refused the UDP buffer sizes QUIC needs; throughput will suffer under loss. "+
			"Fix: sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000, or grant CAP_NET_ADMIN", fields...)
		return
	}
	log.Debug("UDP buffers sized for QUIC", fields...)
}
