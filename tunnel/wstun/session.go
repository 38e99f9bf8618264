package wstun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strait/strait/tunnel/wstun/internal/yamux"

	"github.com/strait/strait/tunnel"
)

// session adapts a yamux session to tunnel.Session.
type session struct {
	mux      *yamux.Session
	conn     *wsConn
	info     tunnel.Info
	closedUp atomic.Bool // Close was called: the caller ended the session

	// inYamux counts, per stream, the Reads and Writes inside yamux, so
	// that wake can release them once the session is closing; ended is set
	// then, and wakes every later call too. Deadline updates hold inYamuxMu
	// so they cannot undo a wake.
	inYamuxMu sync.Mutex
	inYamux   map[*stream]int
	ended     atomic.Bool
	// ctx is canceled when the session ends: the parent of every stream's
	// Context.
	ctx    context.Context
	cancel context.CancelFunc
}

// LossHoldsAll is the path's round trip as the session's monitor last
// measured it, 0 on a path under gatherMinRTT (see tunnel.LossHoldsAll):
// every stream shares one TCP connection.
func (s *session) LossHoldsAll() time.Duration { return time.Duration(s.conn.gatherRTT.Load()) }

// SenderState reads the TCP socket's sender state from the kernel (see
// tunnel.SenderStateOf); the zero state where it cannot.
func (s *session) SenderState() tunnel.SenderState {
	if s.conn.sender == nil {
		return tunnel.SenderState{}
	}
	return s.conn.sender()
}

// newSession wraps mux and starts its liveness monitor, which ends with the
// session.
func newSession(mux *yamux.Session, conn *wsConn, info tunnel.Info, cfg Config) *session {
	info.Transport = tunnel.TransportWS
	s := &session{mux: mux, conn: conn, info: info, inYamux: map[*stream]int{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	cfg.Congestion.add(conn.sock.Congestion, 1)
	// The ways a session ends wake its calls first (see wake): Close, the
	// monitor, and a failed read of the connection, which ends yamux's
	// receive loop and so the session; whatever else ends it (yamux's own
	// timeouts) wakes them once its close has begun.
	wake := s.wake
	conn.readFailed.Store(&wake)
	go func() {
		<-mux.CloseChan()
		s.wake()
	}()
	go func() {
		defer cfg.Congestion.add(conn.sock.Congestion, -1)
		defer s.cancel() // monitor returns when the session has ended
		s.monitor(cfg.Heartbeat, cfg.HeartbeatTimeout)
	}()
	return s
}

// monitor is the heartbeat, by the classic rule: send a ping whenever this
// side has sent nothing for one Heartbeat, and declare the peer dead when
// nothing at all has arrived for Heartbeat+HeartbeatTimeout, which closes the
// session and fails every stream on it. Any frame received counts as life.
// Pings are WebSocket control frames outside yamux's queue; and because each
// side pings on its own quiet direction, a side busy receiving bulk data
// keeps its sender informed over the uncongested way back (over TCP nothing
// can overtake bytes already in the socket, so the sender's own pings could
// not help it).
func (s *session) monitor(heartbeat, timeout time.Duration) {
	tick := time.NewTicker(heartbeat / 4)
	defer tick.Stop()
	for {
		select {
		case <-s.mux.CloseChan():
			return
		case <-tick.C:
		}
		if s.conn.silence() >= heartbeat+timeout {
			s.wake()
			s.mux.Close() // Err reports errNoAnswer: neither caller nor conn ended it
			return
		}
		if s.conn.sendSilence() >= heartbeat {
			_ = s.conn.ping(time.Now().Add(timeout))
		}
		s.conn.measurePath()
	}
}

// OpenStream opens a stream without waiting for the peer, except while the
// session has AcceptBacklog opens the peer has not accepted yet: then it
// waits for room until ctx ends.
func (s *session) OpenStream(ctx context.Context) (tunnel.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := s.mux.OpenStreamContext(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, err
		}
		return nil, s.failed(err)
	}
	return newStream(st, s), nil
}

func (s *session) AcceptStream(ctx context.Context) (tunnel.Stream, error) {
	st, err := s.mux.AcceptStreamWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, s.failed(err)
	}
	return newStream(st, s), nil
}

// NumStreams is the number of streams open on the session. It is not part
// of tunnel.Session (the pool counts its own); the conformance suite reads it
// to check that closed streams are released.
func (s *session) NumStreams() int { return s.mux.NumStreams() }

func (s *session) Done() <-chan struct{} { return s.mux.CloseChan() }
func (s *session) Info() tunnel.Info     { return s.info }

// wake releases every Read and Write inside yamux on a session about to
// close, and marks it ended so that later calls are released as they
// enter. yamux's Read and Write waiting for data or window loop without
// pause once the session's shutdown channel is closed, until
// Session.Close gets to their stream, one stream at a time; a past
// deadline makes them return. With 256 streams waiting (the relay's
// dispatcher has a Read waiting on every stream it serves) Close took 75 s
// of both CPUs under the race detector, and 3 to 8 s with 64 in
// TestNewStreamOvertakesBulk. It runs before the close begins where it
// can: spinning calls would otherwise hold the CPUs until a goroutine
// waiting for the close got its turn. A woken call reports the session's
// error (failed).
func (s *session) wake() {
	s.inYamuxMu.Lock()
	defer s.inYamuxMu.Unlock()
	s.ended.Store(true)
	now := time.Now()
	for st := range s.inYamux {
		_ = st.st.SetDeadline(now)
	}
}

// enter records a Read or Write of st going into yamux; leave, its return.
func (s *session) enter(st *stream) {
	s.inYamuxMu.Lock()
	defer s.inYamuxMu.Unlock()
	s.inYamux[st]++
	if s.ended.Load() {
		_ = st.st.SetDeadline(time.Now())
	}
}

func (s *session) leave(st *stream) {
	s.inYamuxMu.Lock()
	defer s.inYamuxMu.Unlock()
	if s.inYamux[st]--; s.inYamux[st] <= 0 {
		delete(s.inYamux, st)
	}
}

// yamuxDeadline sets a deadline on yamux's stream through set, unless the
// session has ended: then the past deadline wake set stays.
func (s *session) yamuxDeadline(set func(time.Time) error, t time.Time) error {
	s.inYamuxMu.Lock()
	defer s.inYamuxMu.Unlock()
	if s.ended.Load() {
		return nil
	}
	return set(t)
}

// Close ends the session; every stream on it fails with ErrSessionClosed.
func (s *session) Close() error {
	s.closedUp.Store(true)
	s.wake()
	return s.mux.Close()
}

// errNoAnswer is why a session ended that neither the caller nor the
// connection ended: the monitor heard nothing from the peer for
// Heartbeat+HeartbeatTimeout (or yamux's own safety valves gave up).
var errNoAnswer = errors.New("wstun: peer stopped answering (heartbeat timeout)")

// Err reports why the session ended, wrapped as tunnel.ErrSessionClosed: the
// connection's first error (the peer closed it, the network failed),
// errNoAnswer if yamux gave up on a silent peer, nothing more if the caller
// closed it. Nil while the session is up.
func (s *session) Err() error {
	select {
	case <-s.mux.CloseChan():
	default:
		return nil
	}
	switch err := s.conn.firstErr(); {
	case err != nil:
		return fmt.Errorf("%w: %w", tunnel.ErrSessionClosed, err)
	case s.closedUp.Load():
		return tunnel.ErrSessionClosed
	}
	return fmt.Errorf("%w: %w", tunnel.ErrSessionClosed, errNoAnswer)
}

// failed maps the error of a call on the session or one of its streams:
// once the session is gone, yamux reports whatever it saw last (io.EOF,
// ErrStreamClosed, ErrSessionShutdown); the caller gets why it ended.
func (s *session) failed(err error) error {
	if s.ended.Load() {
		// woken by wake: the close follows at once; report why
		<-s.mux.CloseChan()
	}
	if s.mux.IsClosed() {
		return s.Err()
	}
	return mapErr(err)
}

// stream adapts a yamux stream to tunnel.Stream and net.Conn.
//
// yamux's own Close is only a FIN: reads go on, and a stream has no reset.
// The adapter adds the local half of both: after Close or Reset every local
// Read and Write fails at once, blocked ones included. It also enforces
// deadlines that have already passed, which yamux checks only while it
// waits, so a Write with an expired deadline writes nothing.
type stream struct {
	st            *yamux.Stream
	sess          *session
	local, remote net.Addr

	mu          sync.Mutex    // serialises state changes with deadline updates
	state       atomic.Int32  // streamOpen, streamClosed or streamReset
	shutCh      chan struct{} // closed on Close or Reset: wakes a Write waiting for room
	wdChanged   chan struct{} // one token per SetWriteDeadline, for that waiting Write
	writeClosed atomic.Bool   // CloseWrite was called
	rd, wd      atomic.Int64  // deadlines in Unix nanoseconds; 0 means none
	rx          *rxStream     // bytes received and read (rx.go)
	ctx         context.Context
	cancel      context.CancelFunc
}

const (
	streamOpen int32 = iota
	streamClosed
	streamReset
)

func newStream(st *yamux.Stream, sess *session) *stream {
	s := &stream{st: st, sess: sess, local: sess.info.LocalAddr, remote: sess.info.RemoteAddr,
		shutCh: make(chan struct{}), wdChanged: make(chan struct{}, 1)}
	// A child of the session's context: no goroutine per stream.
	s.ctx, s.cancel = context.WithCancel(sess.ctx)
	s.rx = sess.conn.rx.attach(st.StreamID(), s.cancel)
	return s
}

// Context is canceled when the peer sends FIN or RST (rx.go sees them as
// they arrive), when this side closes or resets the stream, or when the
// session ends.
func (s *stream) Context() context.Context { return s.ctx }

// Buffered is exact: what the connection delivered for this stream (rx.go)
// less what Read returned.
func (s *stream) Buffered() int64 { return s.rx.buffered() }

func (s *stream) ID() uint64 { return uint64(s.st.StreamID()) }

// LocalAddr and RemoteAddr are the addresses of the session's connection.
func (s *stream) LocalAddr() net.Addr  { return s.local }
func (s *stream) RemoteAddr() net.Addr { return s.remote }

var (
	errLocalReset = fmt.Errorf("%w (locally)", tunnel.ErrStreamReset)
	errClosed     = fmt.Errorf("wstun: stream closed: %w", net.ErrClosed)
	errWriteShut  = fmt.Errorf("wstun: write after CloseWrite: %w", net.ErrClosed)
)

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

// shut moves an open stream to state and wakes its blocked calls; false if
// it was closed or reset already.
func (s *stream) shut(state int32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.state.CompareAndSwap(streamOpen, state) {
		return false
	}
	_ = s.st.SetDeadline(time.Now()) // wakes blocked Read and Write
	close(s.shutCh)
	s.sess.conn.rx.end(s.st.StreamID(), true)
	s.cancel()
	return true
}

// CloseWrite sends FIN: reads keep working until the peer closes its side.
func (s *stream) CloseWrite() error {
	if err := s.stateErr(); err != nil {
		return err
	}
	s.writeClosed.Store(true)
	return mapErr(s.st.Close())
}

// Close sends FIN (if CloseWrite has not) and fails local reads and writes.
// yamux cannot tell the peer to stop sending: the peer's writes continue
// into the receive window, discarded, until the peer closes its side.
func (s *stream) Close() error {
	if !s.shut(streamClosed) {
		return nil
	}
	return s.closeYamux()
}

// Reset fails local reads and writes at once and sends FIN, the only signal
// yamux has: the peer reads io.EOF (see the tunnel package doc).
func (s *stream) Reset() error {
	if !s.shut(streamReset) {
		return nil
	}
	return s.closeYamux()
}

// closeYamux sends FIN (yamux sends nothing if it was sent or the peer reset
// the stream) and lets the send queue forget the stream.
func (s *stream) closeYamux() error {
	err := s.st.Close()
	s.sess.conn.q.forget(s.st.StreamID())
	return mapErr(err)
}

func (s *stream) Read(p []byte) (int, error) {
	if err := s.stateErr(); err != nil {
		return 0, err
	}
	if expired(&s.rd) {
		return 0, os.ErrDeadlineExceeded
	}
	s.sess.enter(s)
	n, err := s.st.Read(p)
	s.sess.leave(s)
	s.rx.read.Add(int64(n))
	if err == nil {
		return n, nil
	}
	if serr := s.stateErr(); serr != nil {
		return n, serr
	}
	// yamux ends every stream of a dead session with io.EOF, which would
	// pass a truncated stream off as complete. A stream that ended cleanly
	// just before its session died reports the session error too.
	if err == io.EOF && !s.st.Session().IsClosed() {
		return n, io.EOF
	}
	return n, s.sess.failed(err)
}

// Write sends p in chunks of at most writeChunk, each once the session's
// scheduler has room for this stream (sched.go): the scheduler accepts every
// frame at once, so this is what bounds its memory, and small frames let
// urgent ones overtake.
func (s *stream) Write(p []byte) (int, error) { return s.write(p, false) }

// WriteLazy sends p as Write does, for bytes the peer does not wait on
// (proto's Dispatched frame): on a short path they may wait up to
// lazyHold to leave with the next frame of the session (lazy.go).
func (s *stream) WriteLazy(p []byte) (int, error) { return s.write(p, true) }

func (s *stream) write(p []byte, lazy bool) (int, error) {
	if err := s.stateErr(); err != nil {
		return 0, err
	}
	if s.writeClosed.Load() {
		return 0, errWriteShut
	}
	if expired(&s.wd) {
		return 0, os.ErrDeadlineExceeded
	}
	written := 0
	for {
		if err := s.waitRoom(); err != nil {
			return written, err
		}
		s.sess.enter(s)
		chunk := p[written:min(len(p), written+writeChunk)]
		var n int
		var err error
		if lazy {
			n, err = s.st.WriteLazy(chunk)
		} else {
			n, err = s.st.Write(chunk)
		}
		s.sess.leave(s)
		written += n
		if err != nil {
			if serr := s.stateErr(); serr != nil {
				return written, serr
			}
			return written, s.sess.failed(err)
		}
		if written == len(p) {
			return written, nil
		}
	}
}

// waitRoom waits until the scheduler takes more of this stream's data, the
// stream is closed or reset, or the write deadline passes.
func (s *stream) waitRoom() error {
	for {
		room := s.sess.conn.q.room(s.st.StreamID())
		if room == nil {
			return nil
		}
		var timeout <-chan time.Time
		var timer *time.Timer
		if dl := s.wd.Load(); dl != 0 {
			timer = time.NewTimer(time.Until(time.Unix(0, dl)))
			timeout = timer.C
		}
		var err error
		select {
		case <-room:
		case <-s.wdChanged: // look at the new deadline
		case <-s.shutCh:
			err = s.stateErr()
		case <-timeout:
			err = os.ErrDeadlineExceeded
		}
		if timer != nil {
			timer.Stop()
		}
		if err != nil {
			return err
		}
	}
}

// SetDeadline, SetReadDeadline and SetWriteDeadline follow net.Conn; they
// have no effect after Close or Reset.
func (s *stream) SetDeadline(t time.Time) error {
	_ = s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

func (s *stream) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() != streamOpen {
		return nil
	}
	s.rd.Store(unixNano(t))
	return s.sess.yamuxDeadline(s.st.SetReadDeadline, t)
}

func (s *stream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() != streamOpen {
		return nil
	}
	s.wd.Store(unixNano(t))
	select {
	case s.wdChanged <- struct{}{}:
	default:
	}
	return s.sess.yamuxDeadline(s.st.SetWriteDeadline, t)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// expired reports whether the deadline in d has passed.
func expired(d *atomic.Int64) bool {
	dl := d.Load()
	return dl != 0 && time.Now().UnixNano() >= dl
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

var (
	_ tunnel.Session = (*session)(nil)
	_ tunnel.Stream  = (*stream)(nil)
	_ net.Conn       = (*stream)(nil)
)

// Shrink lets go of the stream's receive buffer while it holds no unread
// data. yamux sizes it to the largest data frame received and keeps it for
// the stream's life: a relay's stream would hold as much as its request
// body while the answer streams for minutes.
func (s *stream) Shrink() { s.st.Shrink() }
