// Package tunnel defines the transport contract between edge and relay: a
// long-lived, mutually authenticated Session that carries many independent,
// flow-controlled Streams.
//
// Two transports implement it, each in its own sub-package:
//   - tunnel/wstun: TLS 1.3 over TCP, upgraded to a WebSocket whose binary
//     messages carry a yamux session. It passes where only HTTPS does.
//   - tunnel/quictun: QUIC (TLS 1.3 over UDP), one QUIC stream per tunnel
//     stream, so a lost packet delays only its own stream.
//
// tunnel/autodial prefers QUIC and falls back to the WebSocket; tunnel/pool
// keeps sessions to the relays and spreads streams over them. The seam is
// this package: the interfaces below carry exactly what the pool, the edge
// and the relay call, the sentinel errors they match, and the defaults and
// transport names both transports share. Only the assembly of a binary
// names a concrete transport, so edge and relay code works against either;
// the dependency test (cmd/internal/deps_test.go) keeps each transport's
// libraries inside its own package.
//
// Semantics every implementation must provide:
//   - OpenStream does not wait for the peer: bytes written to a new stream
//     travel with (or right behind) the stream's opening frame, so a request
//     costs one round trip to its first response byte.
//   - Write blocks when the peer's receive window is full; a stream whose
//     reader stops stalls only itself (backpressure without unbounded queues).
//   - CloseWrite ends the write direction (the peer reads io.EOF) and keeps the
//     read direction open. Close releases the stream; the peer sees io.EOF or
//     an error on its next read.
//   - Reset abandons the stream at once: local Read and Write fail with
//     ErrStreamReset. Where the transport has a reset frame (QUIC) the peer's
//     Read and Write fail with ErrStreamReset too; yamux has none, so there
//     the peer reads io.EOF. Either way the peer learns promptly, and the
//     reason, when it matters, travels in a proto End frame.
//   - When a session dies, Done is closed and every blocked call on it or its
//     streams returns promptly with an error that matches ErrSessionClosed.
package tunnel

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"
)

// Transport names a transport: what Info reports, what metrics and logs
// label sessions with, and how configuration spells the choice.
type Transport string

// The transports.
const (
	TransportWS   Transport = "ws"   // tunnel/wstun
	TransportQUIC Transport = "quic" // tunnel/quictun
)

// Defaults every transport applies to a zero configuration field, so that
// edge and relay agree on liveness whichever transport carries a session.
const (
	// DefaultHeartbeat is how often a quiet side shows the peer it is alive.
	DefaultHeartbeat = 15 * time.Second
	// DefaultHeartbeatTimeout is how long past a missed heartbeat the peer
	// may stay silent before its session is declared dead.
	DefaultHeartbeatTimeout = 10 * time.Second
	// DefaultHandshakeTimeout bounds the TLS handshake (and, on the
	// WebSocket transport, the upgrade).
	DefaultHandshakeTimeout = 10 * time.Second
)

// DefaultStreamWindow is the most unread data one stream may hold at its
// receiver when the configuration names no window, on every transport. The
// edge's memory budget for clients that do not read counts in it too.
const DefaultStreamWindow = 4 << 20

// DefaultCompressMinRTT is the round-trip time below which a session that
// negotiated compression sends its writes uncompressed all the same, in the
// binaries' default configuration (a transport's zero Config compresses on
// every path). Compression trades CPU for bytes: it pays on a border whose
// round trips take tens of milliseconds and whose loss makes every packet
// dear, and it is pure cost where edge and relay share a host or a data
// centre, where the lab's loopback phase found it at 8-14 % of each tier's
// CPU. The choice is the sender's alone and may change during a session:
// both transports mark every message or chunk as compressed or raw, and
// receivers take either.
const DefaultCompressMinRTT = 2 * time.Millisecond

// CompressMinRTTSetting reads an optional compress_min_rtt setting of the
// binaries: unset (nil) means DefaultCompressMinRTT, 0s compresses on every
// path.
func CompressMinRTTSetting(set *time.Duration) time.Duration {
	if set == nil {
		return DefaultCompressMinRTT
	}
	return *set
}

// LongPath reports whether a path whose round-trip time is rtt is long
// enough for a sender's work on it to pay: compressing (compress_min_rtt)
// or, under QUIC, forward error correction (quictun.Config.FECMinRTT).
// Transports pass the least RTT the path has shown: its propagation delay,
// which queueing and CPU load do not inflate (on a busy host a loopback
// socket's smoothed RTT reaches milliseconds). A minimum of zero or less
// counts every path as long, and so does an unknown rtt (zero).
func LongPath(rtt, minRTT time.Duration) bool {
	return minRTT <= 0 || rtt <= 0 || rtt >= minRTT
}

// Sentinel errors shared by all transports. Implementations wrap their own
// errors so that errors.Is works against these.
var (
	// ErrSessionClosed reports that the session is gone: closed locally,
	// closed by the peer, or declared dead by the heartbeat.
	ErrSessionClosed = errors.New("tunnel: session closed")
	// ErrStreamReset reports that the peer abandoned the stream.
	ErrStreamReset = errors.New("tunnel: stream reset by peer")
	// ErrPeerGoingAway reports that the peer accepts no new streams on this
	// session (it is draining); existing streams continue.
	ErrPeerGoingAway = errors.New("tunnel: peer is going away")
)

// Shrink lets go of st's receive buffer if its transport keeps one after
// the data in it was read: yamux keeps one sized to the largest message it
// received for the stream's life, quic-go the last frame until the next
// Read. A stream that has read its request and only writes from then on
// should call it. It loses nothing: data that is there is read on the next
// Read. Not concurrently with a Read.
func Shrink(st Stream) {
	if s, ok := st.(interface{ Shrink() }); ok {
		s.Shrink()
	}
}

// SenderState is what a session's congestion control knows of its path, as
// this end's sender sees it, where the transport exposes it (QUIC: quic-go
// keeps it in user space; the kernel keeps TCP's). Under random loss a
// loss-based window, not the link, bounds a session to about
// Window/SmoothedRTT bytes per second (the lab's 256 streams at 1 % loss and
// 150 ms held one at 16-47 KB, ~200 KB/s), so these figures tell a
// loss-limited session from an idle one.
type SenderState struct {
	Window      uint64 // congestion window in bytes
	SmoothedRTT time.Duration
	MinRTT      time.Duration
	PacketsSent uint64 // including retransmissions
	PacketsLost uint64 // including losses later found spurious
	// SlowStartThreshold is where a loss-based sender's window growth
	// turned from doubling per round trip to one segment per round trip,
	// in bytes: after a loss, half the window or so. Zero when the
	// transport does not tell (quic-go keeps it to itself) or none was
	// set (TCP before its first loss, or under BBR, which sets none).
	SlowStartThreshold uint64
	// PhaseKnown is set when the transport follows the sender's slow start
	// (a relay's QUIC session from an edge on a long path; see quictun),
	// and LeftSlowStart then reports whether it has ended: after that the
	// window grows by about a packet per round trip.
	PhaseKnown, LeftSlowStart bool
}

// LossRate is the share of sent packets declared lost; 0 before any was sent.
func (s SenderState) LossRate() float64 {
	if s.PacketsSent == 0 {
		return 0
	}
	return float64(s.PacketsLost) / float64(s.PacketsSent)
}

// NeedlessWatch reports whether s follows its sender's phase, at a cost per
// packet, on a path since found too short to need it (see quictun): a
// session from the same edge dialed now would not be followed. False for
// sessions that never follow it.
func NeedlessWatch(s Session) bool {
	w, ok := s.(interface{ NeedlessWatch() bool })
	return ok && w.NeedlessWatch()
}

// LossHoldsAll reports how long one lost packet may hold every stream of
// s: about a round trip on a session over one TCP connection (WebSocket)
// whose path is long enough for that to matter; 0 where streams do not
// wait for each other's losses (QUIC) or the path is short.
func LossHoldsAll(s Session) time.Duration {
	if h, ok := s.(interface{ LossHoldsAll() time.Duration }); ok {
		return h.LossHoldsAll()
	}
	return 0
}

// SenderStateOf reports the sender state of s, and false for a session whose
// transport does not expose one.
func SenderStateOf(s Session) (SenderState, bool) {
	if r, ok := s.(interface{ SenderState() SenderState }); ok {
		return r.SenderState(), true
	}
	return SenderState{}, false
}

// Stream is one bidirectional, ordered byte stream inside a Session.
// Read and Write may be called concurrently with each other and with Close.
type Stream interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	// CloseWrite half-closes the stream: the peer reads io.EOF after the data
	// already written; this side may keep reading.
	CloseWrite() error
	// Close releases the stream. Unread incoming data is discarded.
	Close() error
	// Reset abandons the stream in both directions (see the package doc).
	Reset() error
	SetDeadline(t time.Time) error
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
	// ID identifies the stream within its session, for logs.
	ID() uint64
	// Buffered reports how many bytes this end has received on the stream
	// and not yet read: what a reader that stopped holds in memory here.
	// Where the transport cannot count them it reports an upper bound, the
	// stream's receive window (quic-go keeps its count to itself).
	Buffered() int64
	// Context is canceled once the peer has closed the stream or the
	// session has ended (and once this side has closed it), so a side that
	// expects nothing more from its peer learns that it left without a
	// goroutine parked in Read. Where the transport cannot tell a peer's
	// Close from its CloseWrite (yamux has only FIN), CloseWrite cancels it
	// too.
	Context() context.Context
}

// Session is one authenticated tunnel connection between an edge and a relay.
type Session interface {
	// OpenStream opens a new stream without waiting for the peer to accept it.
	OpenStream(ctx context.Context) (Stream, error)
	// AcceptStream waits for the peer to open a stream.
	AcceptStream(ctx context.Context) (Stream, error)
	// Close tears the session down; every open stream fails.
	Close() error
	// Done is closed when the session has ended for any reason.
	Done() <-chan struct{}
	// Err reports why the session ended; nil while it is up.
	Err() error
	// Info describes the session for logs and metrics.
	Info() Info
}

// Info describes a session.
type Info struct {
	Transport  Transport
	LocalAddr  net.Addr
	RemoteAddr net.Addr
	// PeerName is the common name of the peer's verified certificate.
	PeerName string
	// Congestion names the congestion control that paces the session's
	// bytes ("bbr", "cubic", "reno"), where the transport knows it; empty
	// where it does not.
	Congestion string
}

// ModelBasedCongestion reports whether the session's congestion control
// paces by a model of the path's bandwidth and round trip (BBR) instead of
// halving its window at every loss. On a lossy link one loss-based window
// carries few streams, while a model-based one is not loss-limited; an
// unknown one counts as loss-based.
func (i Info) ModelBasedCongestion() bool { return strings.HasPrefix(i.Congestion, "bbr") }

// Dialer opens sessions to one relay.
type Dialer interface {
	// Dial connects, authenticates and returns a ready session.
	Dial(ctx context.Context) (Session, error)
	// Addr names the relay this dialer reaches, for logs.
	Addr() string
}

// Listener accepts sessions from edges.
type Listener interface {
	// Accept waits for the next authenticated session.
	Accept(ctx context.Context) (Session, error)
	// Close stops accepting; sessions already accepted stay up.
	Close() error
	Addr() net.Addr
}

// Upgrader is implemented by dialers that may hand out a session on a
// fallback transport. The session owner periodically calls DialPreferred
// while IsPreferred is false, and on success moves new streams to the new
// session and lets the old one drain.
type Upgrader interface {
	IsPreferred(Session) bool
	DialPreferred(ctx context.Context) (Session, error)
	RetryInterval() time.Duration
}
