package quictun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/strait/strait/tunnel"
)

// Application error codes on the wire.
const (
	codeNoError     quic.ApplicationErrorCode = 0
	codeStreamReset quic.StreamErrorCode      = 1 // Reset, or Close with a write still blocked
	codeStreamDone  quic.StreamErrorCode      = 2 // Close: this side reads no more
)

// session adapts a quic.Conn to tunnel.Session.
type session struct {
	conn    *quic.Conn
	info    tunnel.Info
	streams atomic.Int64
	// compressed: both ends negotiated alpnZstd1, so every stream carries
	// chunks (compress.go).
	compressed bool
	// released runs once when the connection ends, however it ends: it
	// frees the UDP socket a dialer opened, or tells the listener.
	released func()
	// window is the stream receive window (Config.StreamWindow).
	window int64
	// compressMinRTT is Config.CompressMinRTT.
	compressMinRTT time.Duration
	// fitFEC, on a dialed session with FEC whose path has not shown
	// itself too short for it yet, checks again (Dialer.fitFEC) as each
	// stream opens, until it reports it is done; nil when there is
	// nothing to check.
	fitFEC    func() bool
	fecFitted atomic.Bool
	// slowStart follows the sender's slow start, on a relay's session from
	// an edge that sent FEC as it dialed (phase.go); nil elsewhere.
	// longPath, set with it, reports whether the edge still sends FEC: it
	// stops on a path it finds short (Config.FECMinRTT).
	slowStart *slowStartWatch
	longPath  func() bool
}

func newSession(conn *quic.Conn, window uint64, compressMinRTT time.Duration, closeFn func()) *session {
	cs := conn.ConnectionState().TLS
	// quic-go's congestion control is NewReno, and it cannot be swapped.
	info := tunnel.Info{Transport: tunnel.TransportQUIC, LocalAddr: conn.LocalAddr(), RemoteAddr: conn.RemoteAddr(),
		Congestion: "reno"}
	compressed := cs.NegotiatedProtocol == alpnZstd1
	if len(cs.PeerCertificates) > 0 {
		info.PeerName = cs.PeerCertificates[0].Subject.CommonName
	}
	s := &session{conn: conn, info: info, compressed: compressed, released: sync.OnceFunc(func() {}),
		window: int64(window), compressMinRTT: compressMinRTT}
	if closeFn != nil {
		s.released = sync.OnceFunc(closeFn)
		context.AfterFunc(conn.Context(), s.released)
	}
	return s
}

func (s *session) OpenStream(ctx context.Context) (tunnel.Stream, error) {
	// OpenStreamSync waits only for the peer's stream limit, never for a
	// round trip: the stream exists on the wire once its first bytes go out.
	st, err := s.conn.OpenStreamSync(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, mapErr(err)
	}
	if s.fitFEC != nil && !s.fecFitted.Load() && s.fitFEC() {
		s.fecFitted.Store(true)
	}
	return s.track(st), nil
}

func (s *session) AcceptStream(ctx context.Context) (tunnel.Stream, error) {
	st, err := s.conn.AcceptStream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, mapErr(err)
	}
	return s.track(st), nil
}

func (s *session) track(st *quic.Stream) *stream {
	s.streams.Add(1)
	w := &stream{st: st, local: s.info.LocalAddr, remote: s.info.RemoteAddr, window: s.window,
		onClose: func() { s.streams.Add(-1) }}
	if s.compressed {
		w.z = new(zreader)
		w.compressNow = s.compressNow
	}
	return w
}

// compressNow reports whether writes are worth compressing on this path
// (tunnel.LongPath); quic-go keeps its RTT estimates in atomics, so the
// question costs a few loads per write.
func (s *session) compressNow() bool {
	return tunnel.LongPath(s.conn.ConnectionStats().MinRTT, s.compressMinRTT)
}

// NumStreams is the number of streams open on the session. It is not part
// of tunnel.Session (the pool counts its own); the conformance suite reads it
// to check that closed streams are released.
func (s *session) NumStreams() int { return int(s.streams.Load()) }

func (s *session) Done() <-chan struct{} { return s.conn.Context().Done() }
func (s *session) Info() tunnel.Info     { return s.info }

func (s *session) Close() error {
	err := s.conn.CloseWithError(codeNoError, "closing")
	s.released()
	return err
}

// Err reports why the session ended, wrapped as tunnel.ErrSessionClosed.
func (s *session) Err() error {
	select {
	case <-s.conn.Context().Done():
	default:
		return nil
	}
	return fmt.Errorf("%w: %w", tunnel.ErrSessionClosed, context.Cause(s.conn.Context()))
}

// stream adapts a quic.Stream to tunnel.Stream and net.Conn. quic-go
// forbids Close concurrently with Write, so writes and the FIN are
// serialised here. After Close or Reset every local call fails with the
// adapter's own error rather than quic-go's report of a local cancellation,
// which would read like the peer's reset.
type stream struct {
	st            *quic.Stream
	local, remote net.Addr
	writeMu       sync.Mutex
	state         atomic.Int32 // streamOpen, streamClosed or streamReset
	writeClosed   atomic.Bool  // CloseWrite was called
	closeOnce     sync.Once
	onClose       func()
	window        int64 // the stream receive window: Buffered's bound

	// On a compressing session (compress.go): z decodes what Read returns;
	// hdrLeft and rawLeft are what remains of a raw chunk's header and
	// bytes that an earlier Write left unfinished (guarded by writeMu).
	z      *zreader
	readMu sync.Mutex // guards z
	// compressNow tells each write whether to try compression (set with z).
	compressNow func() bool
	hdr         [1 + binary.MaxVarintLen64]byte
	hdrLeft     []byte
	rawLeft     int

	// unread is a byte Shrink read, for the next Read (held says so).
	unread byte
	held   atomic.Bool
}

const (
	streamOpen int32 = iota
	streamClosed
	streamReset
)

var (
	errLocalReset = fmt.Errorf("%w (locally)", tunnel.ErrStreamReset)
	errClosed     = fmt.Errorf("quictun: stream closed: %w", net.ErrClosed)
	errWriteShut  = fmt.Errorf("quictun: write after CloseWrite: %w", net.ErrClosed)
)

func (s *stream) ID() uint64 { return uint64(s.st.StreamID()) }

// Buffered is an upper bound, the stream's receive window: quic-go keeps
// the size of a stream's unread data to itself, and its frames arrive
// encrypted, so nothing outside it can count them.
func (s *stream) Buffered() int64 { return s.window }

// Context is quic-go's: canceled when the peer stops reading (the peer's
// Close and Reset both do), when this side closes its write side, or when
// the connection ends.
func (s *stream) Context() context.Context { return s.st.Context() }

// LocalAddr and RemoteAddr are the addresses of the session's connection.
func (s *stream) LocalAddr() net.Addr  { return s.local }
func (s *stream) RemoteAddr() net.Addr { return s.remote }

func (s *stream) SetDeadline(t time.Time) error      { return s.st.SetDeadline(t) }
func (s *stream) SetReadDeadline(t time.Time) error  { return s.st.SetReadDeadline(t) }
func (s *stream) SetWriteDeadline(t time.Time) error { return s.st.SetWriteDeadline(t) }

// stateErr is the error every call fails with after Close or Reset.
func (s *stream) stateErr() error {
	switch s.state.Load() {
	case streamClosed:
		return errClosed
	case streamReset:
		return errLocalReset
	}
	return nil
}

func (s *stream) Read(p []byte) (int, error) {
	if err := s.stateErr(); err != nil {
		return 0, err
	}
	if len(p) > 0 && s.held.Load() {
		p[0] = s.unread
		s.held.Store(false)
		return 1, nil
	}
	var n int
	var err error
	if s.z != nil {
		s.readMu.Lock() // net.Conn allows concurrent Reads; the decoder's state does not
		n, err = s.z.read(s.st, p)
		s.readMu.Unlock()
	} else {
		n, err = s.st.Read(p)
	}
	if err != nil {
		if serr := s.stateErr(); serr != nil {
			return n, serr
		}
	}
	return n, mapErr(err)
}

func (s *stream) Write(p []byte) (int, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.stateErr(); err != nil {
		return 0, err
	}
	if s.writeClosed.Load() {
		return 0, errWriteShut
	}
	var n int
	var err error
	if s.z != nil {
		n, err = s.writeChunked(p)
	} else {
		n, err = s.st.Write(p)
	}
	if err != nil {
		if serr := s.stateErr(); serr != nil {
			return n, serr
		}
	}
	return n, mapErr(err)
}

// Shrink lets quic-go give back the last frame read (see tunnel.Shrink):
// it keeps a frame whose data was all read until the next Read, and a
// relay reads nothing after a request, for as long as the answer streams
// (about 1.1 KiB a stream, measured at 4 000 streams). A Read under a
// deadline in the past makes it let go: quic-go releases a consumed frame
// before it looks at the deadline, and returns at once. Should that Read
// find a byte all the same, it is kept for the next one.
func (s *stream) Shrink() {
	if s.stateErr() != nil || s.held.Load() {
		return
	}
	_ = s.st.SetReadDeadline(time.Unix(0, 1))
	var b [1]byte
	n, _ := s.Read(b[:])
	_ = s.st.SetReadDeadline(time.Time{})
	if n == 1 {
		s.unread = b[0]
		s.held.Store(true)
	}
}

// CloseWrite sends FIN after the data already written.
func (s *stream) CloseWrite() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.stateErr(); err != nil {
		return err
	}
	s.writeClosed.Store(true)
	return mapErr(s.st.Close())
}

// Close stops reading (the peer's writes fail) and ends the write side: with
// a FIN if no write is in progress, else by abandoning the blocked write.
func (s *stream) Close() error {
	if !s.state.CompareAndSwap(streamOpen, streamClosed) {
		return nil
	}
	s.st.CancelRead(codeStreamDone)
	if s.writeMu.TryLock() {
		_ = s.st.Close()
		s.writeMu.Unlock()
	} else {
		s.st.CancelWrite(codeStreamReset)
	}
	s.closeOnce.Do(s.onClose)
	return nil
}

// Reset abandons the stream in both directions; the peer's reads and writes
// fail with tunnel.ErrStreamReset.
func (s *stream) Reset() error {
	if !s.state.CompareAndSwap(streamOpen, streamReset) {
		return nil
	}
	s.st.CancelWrite(codeStreamReset)
	s.st.CancelRead(codeStreamReset)
	s.closeOnce.Do(s.onClose)
	return nil
}

// mapErr wraps quic-go's errors so callers can test them against the tunnel
// sentinels; deadline errors stay net.Errors with Timeout() true.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var se *quic.StreamError
	var ae *quic.ApplicationError
	var ie *quic.IdleTimeoutError
	var he *quic.HandshakeTimeoutError
	var te *quic.TransportError
	var re *quic.StatelessResetError // a relay restarted with the same ResetSecret
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("%w: %w", tunnel.ErrStreamReset, err)
	case errors.As(err, &ae), errors.As(err, &ie), errors.As(err, &he), errors.As(err, &te), errors.As(err, &re),
		errors.Is(err, quic.ErrServerClosed), errors.Is(err, quic.ErrTransportClosed):
		return fmt.Errorf("%w: %w", tunnel.ErrSessionClosed, err)
	}
	return err
}

var (
	_ tunnel.Session = (*session)(nil)
	_ tunnel.Stream  = (*stream)(nil)
	_ net.Conn       = (*stream)(nil)
)
