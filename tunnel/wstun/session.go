package wstun

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/strait/strait/tunnel"
)

// session adapts a yamux session to tunnel.Session.
type session struct {
	mux  *yamux.Session
	conn *wsConn
	info tunnel.Info
}

func newSession(mux *yamux.Session, conn *wsConn, info tunnel.Info) *session {
	info.Transport = "ws"
	return &session{mux: mux, conn: conn, info: info}
}

func (s *session) OpenStream(ctx context.Context) (tunnel.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := s.mux.OpenStream()
	if err != nil {
		return nil, mapErr(err)
	}
	return &stream{Stream: st}, nil
}

func (s *session) AcceptStream(ctx context.Context) (tunnel.Stream, error) {
	st, err := s.mux.AcceptStreamWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if s.mux.IsClosed() {
			return nil, sessionErr(err)
		}
		return nil, mapErr(err)
	}
	return &stream{Stream: st}, nil
}

func (s *session) Ping(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	rtt, err := s.mux.Ping() // bounded by HeartbeatTimeout inside yamux
	return rtt, mapErr(err)
}

func (s *session) NumStreams() int       { return s.mux.NumStreams() }
func (s *session) Close() error          { return s.mux.Close() }
func (s *session) Done() <-chan struct{} { return s.mux.CloseChan() }
func (s *session) Info() tunnel.Info     { return s.info }

// Err reports why the session ended: the transport's first error when there
// was one (peer vanished, heartbeat timeout), else ErrSessionClosed.
func (s *session) Err() error {
	select {
	case <-s.mux.CloseChan():
	default:
		return nil
	}
	if err := s.conn.firstErr(); err != nil {
		return fmt.Errorf("%w: %w", tunnel.ErrSessionClosed, err)
	}
	return tunnel.ErrSessionClosed
}

// stream adapts a yamux stream to tunnel.Stream.
type stream struct {
	*yamux.Stream
	reset atomic.Bool
}

func (s *stream) ID() uint64 { return uint64(s.StreamID()) }

// CloseWrite sends FIN: yamux's Close is already a half-close, and reads keep
// working until the peer closes its side.
func (s *stream) CloseWrite() error { return mapErr(s.Stream.Close()) }

// Close is the same FIN; yamux has no way to stop receiving, and unread data
// is dropped when the peer's FIN completes the close.
func (s *stream) Close() error { return mapErr(s.Stream.Close()) }

// Reset fails local reads and writes at once and sends FIN, the only signal
// yamux has: the peer reads io.EOF (see the tunnel package doc).
func (s *stream) Reset() error {
	s.reset.Store(true)
	_ = s.Stream.SetDeadline(time.Now()) // wakes blocked Read and Write
	return mapErr(s.Stream.Close())
}

var errLocalReset = fmt.Errorf("%w (locally)", tunnel.ErrStreamReset)

func (s *stream) Read(p []byte) (int, error) {
	if s.reset.Load() {
		return 0, errLocalReset
	}
	n, err := s.Stream.Read(p)
	if err != nil && s.reset.Load() {
		return n, errLocalReset
	}
	return n, mapErr(err)
}

func (s *stream) Write(p []byte) (int, error) {
	if s.reset.Load() {
		return 0, errLocalReset
	}
	n, err := s.Stream.Write(p)
	if err != nil && s.reset.Load() {
		return n, errLocalReset
	}
	if err != nil && s.Session().IsClosed() {
		return n, sessionErr(err)
	}
	return n, mapErr(err)
}

// mapErr wraps yamux's errors so callers can test them against the tunnel
// sentinels; timeouts stay net.Errors so net/http classifies them.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, yamux.ErrSessionShutdown), errors.Is(err, yamux.ErrKeepAliveTimeout),
		errors.Is(err, yamux.ErrConnectionWriteTimeout):
		return fmt.Errorf("%w: %w", tunnel.ErrSessionClosed, err)
	case errors.Is(err, yamux.ErrConnectionReset), errors.Is(err, yamux.ErrStreamClosed):
		return fmt.Errorf("%w: %w", tunnel.ErrStreamReset, err)
	case errors.Is(err, yamux.ErrRemoteGoAway):
		return fmt.Errorf("%w: %w", tunnel.ErrPeerGoingAway, err)
	}
	return err
}

// sessionErr maps the error of a call that failed because the session is
// gone. yamux then reports whatever ended it (the WebSocket close from the
// peer, or ErrStreamClosed for a stream it force-closed), and the contract
// requires a match for ErrSessionClosed.
func sessionErr(err error) error {
	if m := mapErr(err); errors.Is(m, tunnel.ErrSessionClosed) {
		return m
	}
	return fmt.Errorf("%w: %w", tunnel.ErrSessionClosed, err)
}

var (
	_ tunnel.Session = (*session)(nil)
	_ tunnel.Stream  = (*stream)(nil)
)
