package relaycmd

import (
	"net"

	"go.uber.org/zap"
)

// quicOff is the listen_quic value that serves WebSocket only.
const quicOff = "off"

// quicAddr is the explicit QUIC address: empty when listen_quic is unset
// (QUIC beside the WebSocket listener, see quicBesideWS) or off.
func (f *File) quicAddr() string {
	if f.ListenQUIC == quicOff {
		return ""
	}
	return f.ListenQUIC
}

// quicBesideWS reports whether QUIC is served by default on the WebSocket
// listener's port: the edge's default transport (auto) tries QUIC at the
// relay's address first, so a relay configured with listen alone must
// answer there, or every edge pays the QUIC fallback timeout on each
// connect.
func (f *File) quicBesideWS() bool {
	return f.ListenQUIC == "" && f.Listen != ""
}

// udpBeside binds UDP on the host and port of the bound TCP listener (so
// "listen: :0" gets QUIC on the same ephemeral port). The default is
// implicit, so a taken UDP port is a warning, not a failure: the relay
// still serves WebSocket, and the warning says how to silence it.
func udpBeside(tcp net.Addr, log *zap.Logger) *net.UDPConn {
	ta, ok := tcp.(*net.TCPAddr)
	if !ok {
		return nil
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ta.IP, Port: ta.Port, Zone: ta.Zone})
	if err != nil {
		log.Warn("QUIC not served: the UDP port of the WebSocket listener is unavailable (set listen_quic to another address, or to off)",
			zap.Stringer("addr", ta), zap.Error(err))
		return nil
	}
	return udp
}
