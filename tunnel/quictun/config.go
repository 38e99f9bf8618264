// Package quictun is the QUIC transport of the tunnel (quic-go): mutual TLS
// 1.3 with the project CA, one QUIC connection per session, one QUIC stream
// per tunnel stream.
//
// Across a lossy border, a lost packet on a TCP connection stalls every
// stream multiplexed on it; QUIC streams are independent, so a loss delays
// only the stream it belongs to. UDP is often throttled or blocked, which is
// why the WebSocket transport stays as the fallback.
package quictun

import (
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/zap"

	"github.com/strait/strait/certs"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/quictun/fec"
)

// ALPN is the protocol the QUIC tunnel negotiates.
const ALPN = certs.QUICALPN

// Config tunes one side of the transport. The zero value is usable.
type Config struct {
	// Heartbeat is the keep-alive period: with no other traffic, a PING goes
	// out this often. Zero means tunnel.DefaultHeartbeat (15s).
	Heartbeat time.Duration
	// HeartbeatTimeout is how long past a missed heartbeat the peer may stay
	// silent before the session is declared dead: the idle timeout is
	// Heartbeat + HeartbeatTimeout. Any packet received counts as life, so
	// bulk data never starves liveness. Zero means
	// tunnel.DefaultHeartbeatTimeout (10s).
	HeartbeatTimeout time.Duration
	// StreamWindow is the most unread data one stream may hold at the
	// receiver (a limit, not an allocation). Zero means
	// tunnel.DefaultStreamWindow (4 MiB).
	StreamWindow uint64
	// SessionWindow caps unread data across all streams of a session; several
	// times StreamWindow so one stuck stream cannot starve the rest. Streams
	// whose readers stall hold their unread data against it, and once they
	// hold all of it every stream of the session stalls: the default leaves
	// room for three streams stalled with full windows. The whole window is
	// granted from the start. Zero means 4×StreamWindow.
	SessionWindow uint64
	// MaxStreams is how many streams the peer may have open at once. Zero
	// means 4096.
	MaxStreams int64
	// ResetSecret, on the listening side, derives the QUIC stateless reset
	// key. A relay restarted with the same secret answers packets of its
	// previous life with a stateless reset, so edges learn at once that their
	// sessions are gone instead of waiting out the idle timeout (UDP has no
	// RST). Derive it from something stable and private, such as the relay's
	// private key. Empty disables stateless resets.
	ResetSecret []byte
	// Compression is CompressionZstd (the default when empty) to compress
	// small stream writes when the peer supports it too, or CompressionOff
	// to behave exactly as a peer that predates compression. See
	// compress.go for the format; it is negotiated in the TLS handshake.
	Compression string
	// CompressMinRTT is the connection's minimum round-trip time below
	// which a compressing session writes raw chunks: see
	// tunnel.DefaultCompressMinRTT. Zero or less compresses whatever the
	// round trip. Each write looks at quic-go's current estimate.
	CompressMinRTT time.Duration
	// FEC, on the dialing side, sends every packet of the session in
	// forward error correction frames with parity after each group (see
	// package fec): a lost packet is rebuilt by the receiver before QUIC's
	// loss-based congestion control sees the loss, at the cost of
	// FEC.Parity/FEC.Data more bytes on the wire. The zero value is off.
	// The listening side ignores it: it always accepts both kinds of
	// edges and answers an edge in FEC, in that edge's shape, once the
	// edge has spoken FEC.
	FEC fec.Shape
	// FECMinRTT is the path's least round-trip time below which the dialing
	// side sends without FEC (see DefaultFECMinRTT). Zero or less sends FEC
	// on every path.
	FECMinRTT time.Duration
	// HandshakeTimeout bounds the QUIC and TLS handshake. Zero means
	// tunnel.DefaultHandshakeTimeout (10s).
	HandshakeTimeout time.Duration
	// Logger; nil means zap.NewNop().
	Logger *zap.Logger
}

// DefaultFECMinRTT is the binaries' FECMinRTT. FEC saves a lost packet's
// retransmission, about one round trip, and keeps the loss from NewReno's
// window; on a path of a millisecond or two (one host, one data centre)
// that retransmission costs next to nothing, while FEC costs every small
// write a parity packet (a group closed by its timer with one datagram
// gets one parity frame, a copy) and the edge quic-go's batched reads: on
// loopback it was about 40 % of QUIC's CPU per streamed event
// (scripts/lab/README.md, "2026-12-07").
const DefaultFECMinRTT = tunnel.DefaultCompressMinRTT

func (c Config) withDefaults() Config {
	if c.Heartbeat <= 0 {
		c.Heartbeat = tunnel.DefaultHeartbeat
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = tunnel.DefaultHeartbeatTimeout
	}
	if c.StreamWindow == 0 {
		c.StreamWindow = tunnel.DefaultStreamWindow
	}
	if c.SessionWindow == 0 {
		c.SessionWindow = 4 * c.StreamWindow
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 4096
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = tunnel.DefaultHandshakeTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// protocols is the ALPN list this end offers (edge) or accepts (relay), in
// order of preference.
func (c Config) protocols() []string {
	if c.Compression == CompressionOff {
		return []string{ALPN}
	}
	return []string{alpnZstd1, ALPN}
}

// quicConfig translates Config into quic-go's settings. The server accepts
// no unidirectional streams; the client accepts the one welcome stream.
func (c Config) quicConfig(client bool) *quic.Config {
	initial := min(c.StreamWindow, 512<<10) // grows by auto-tuning up to the max
	// The session window is granted whole from the start, not auto-tuned up
	// from a small one: it grows only as data is read, so a few stalled
	// streams holding their initial windows would stall the whole session.
	return &quic.Config{
		HandshakeIdleTimeout:           c.HandshakeTimeout,
		MaxIdleTimeout:                 c.Heartbeat + c.HeartbeatTimeout,
		KeepAlivePeriod:                c.Heartbeat,
		InitialStreamReceiveWindow:     initial,
		MaxStreamReceiveWindow:         c.StreamWindow,
		InitialConnectionReceiveWindow: c.SessionWindow,
		MaxConnectionReceiveWindow:     c.SessionWindow,
		MaxIncomingStreams:             c.MaxStreams,
		MaxIncomingUniStreams:          map[bool]int64{true: 1, false: -1}[client],
		// With QLOGDIR set, every connection writes a qlog trace there
		// (congestion window, bytes in flight, losses, blocked frames): the
		// evidence for diagnosing throughput on a real or emulated link.
		// Unset, it costs one getenv per connection, except on the relay's
		// sessions from FEC edges, which follow their slow start
		// (phase.go).
		Tracer: connTracer,
	}
}
