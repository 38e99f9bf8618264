// Package wstun is the WebSocket transport of the tunnel: a TLS 1.3
// connection with mutual authentication, upgraded to a WebSocket
// (gorilla/websocket) whose binary messages carry a yamux session.
//
// TCP/443 with a WebSocket upgrade passes where UDP is blocked and looks like
// ordinary HTTPS to middleboxes; yamux adds streams, per-stream flow control
// and keepalive pings on top.
package wstun

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/strait/strait/tunnel/wstun/internal/yamux"
	"go.uber.org/zap"

	"github.com/strait/strait/tunnel"
)

// Path is the HTTP path of the tunnel endpoint on the relay.
const Path = "/strait/tunnel/v1"

// Config tunes one side of the transport. The zero value is usable.
type Config struct {
	// Heartbeat is how often each side pings the other. Zero means
	// tunnel.DefaultHeartbeat (15s).
	Heartbeat time.Duration
	// HeartbeatTimeout is how long a ping (or any frame write) may wait for
	// its answer before the peer is declared dead and the session closed.
	// Zero means tunnel.DefaultHeartbeatTimeout (10s).
	HeartbeatTimeout time.Duration
	// StreamWindow is the most unread data one stream may hold at the
	// receiver. It caps one stream at StreamWindow/RTT: 4 MiB at 200 ms is
	// about 160 Mbit/s. It is a limit, not an allocation. Zero means
	// tunnel.DefaultStreamWindow (4 MiB).
	StreamWindow uint32
	// HandshakeTimeout bounds the TLS handshake and the WebSocket upgrade.
	// Zero means tunnel.DefaultHandshakeTimeout (10s).
	HandshakeTimeout time.Duration
	// Compression is CompressionDeflate (the default when empty): compress
	// the session when the peer supports it, or CompressionOff. See
	// compress.go for the format and its memory cost.
	Compression string
	// CompressMinRTT is the minimum round-trip time of the session's TCP
	// socket below which a compressed session sends raw messages: see
	// tunnel.DefaultCompressMinRTT. Zero or less compresses whatever the
	// round trip; the socket's RTT is read at the start and on every tick
	// of the heartbeat monitor.
	CompressMinRTT time.Duration
	// Stats, when not nil, counts the session's bytes before and after
	// compression; sessions may share one.
	Stats *Stats
	// TCPCongestion is the congestion control of the session's TCP socket:
	// CongestionAuto (also when empty) takes bbr, else cubic, whichever
	// this process may set first, else the kernel default; a name (reno,
	// cubic, bbr, ...) forces that one, and Listen or NewDialer fail when
	// the kernel refuses it. See sockopt.go.
	TCPCongestion string
	// TCPNotSentLowat is the socket's TCP_NOTSENT_LOWAT in bytes: how much
	// not yet sent data the kernel may hold, so urgent frames do not wait
	// behind megabytes. Zero means DefaultNotSentLowat (16 KiB); negative
	// leaves the kernel's setting (unlimited by default).
	TCPNotSentLowat int
	// Congestion, when not nil, counts live sessions by the congestion
	// control their socket got; sessions may share one.
	Congestion *CongestionStats
	// Logger receives transport events; nil means zap.NewNop().
	Logger *zap.Logger
	// Enrol, when not nil, is served on the listener to clients that ask
	// for the enrolment ALPN protocol (certs/enrol.ALPN) instead of
	// presenting a client certificate: edges enrolling with a join token.
	// Dialers ignore it.
	Enrol http.Handler
}

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
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = tunnel.DefaultHandshakeTimeout
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// prepare fills defaults and derives the yamux settings and the TLS config
// both ends use: a clone of the caller's, TLS 1.3 only, and HTTP/1.1 as the
// only ALPN protocol because gorilla upgrades over HTTP/1.1.
func prepare(cfg Config, tlsConfig *tls.Config) (Config, *yamux.Config, *tls.Config, error) {
	cfg = cfg.withDefaults()
	if err := ValidCompression(cfg.Compression); err != nil {
		return cfg, nil, nil, fmt.Errorf("wstun: %w", err)
	}
	ycfg, err := cfg.yamuxConfig()
	if err != nil {
		return cfg, nil, nil, err
	}
	tc := tlsConfig.Clone()
	tc.MinVersion = tls.VersionTLS13
	tc.NextProtos = []string{"http/1.1"}
	return cfg, ycfg, tc, nil
}

// yamuxConfig translates Config into yamux's settings.
func (c Config) yamuxConfig() (*yamux.Config, error) {
	yc := yamux.DefaultConfig()
	yc.AcceptBacklog = 1024 // streams opened by the edge before the relay accepts them
	// Liveness is the session monitor's job (see session.monitor): yamux's
	// keepalive pings and their answers queue behind bulk data, so a busy
	// link could look dead. yamux's timeouts stay only as safety valves,
	// long enough that a slow but live link never trips them.
	yc.EnableKeepAlive = false
	yc.ConnectionWriteTimeout = max(30*time.Second, 2*c.HeartbeatTimeout)
	yc.MaxStreamWindowSize = c.StreamWindow
	yc.StreamOpenTimeout = max(30*time.Second, 2*c.HeartbeatTimeout)
	yc.StreamCloseTimeout = time.Minute
	yc.Logger = nil
	yc.LogOutput = zapWriter{c.Logger.Named("yamux")}
	if err := yamux.VerifyConfig(yc); err != nil {
		return nil, fmt.Errorf("wstun: %w", err)
	}
	return yc, nil
}

// zapWriter forwards yamux's printf logging to zap at debug level: the
// transport's own errors reach callers as return values and are logged there.
type zapWriter struct{ log *zap.Logger }

func (w zapWriter) Write(p []byte) (int, error) {
	if ce := w.log.Check(zap.DebugLevel, "yamux"); ce != nil {
		ce.Write(zap.ByteString("msg", p))
	}
	return len(p), nil
}

var _ io.Writer = zapWriter{}
