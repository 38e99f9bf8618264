package tunneltest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
)

// opTimeout bounds every single blocking step, so a hang fails the test with
// a message instead of stalling until go test's global timeout.
const opTimeout = 20 * time.Second

// prompt is the bound for "promptly" in the contract: how long a blocked
// call may take to return after the event that must end it (a local Close
// or Reset, the peer's Reset, a session's death). Loopback round trips are
// well under a millisecond; the rest is scheduling slack under -race.
const prompt = 500 * time.Millisecond

// marker is the first byte every stream carries: a QUIC stream reaches the
// peer only with its first data, and a server reads it to pick a handler.
const marker = 'M'

// connect opens a stream on from, sends marker, accepts it on to and reads
// marker there, so both ends exist and the window is established. Both
// ends get a deadline of opTimeout and are closed when the test ends.
func connect(tb testing.TB, from, to tunnel.Session) (opened, accepted tunnel.Stream) {
	tb.Helper()
	opened, accepted, err := connectErr(from, to)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { opened.Close(); accepted.Close() })
	return opened, accepted
}

// connectErr is connect for callers that must not call tb.Fatal; on error
// nothing is left open.
func connectErr(from, to tunnel.Session) (opened, accepted tunnel.Stream, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	opened, err = from.OpenStream(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OpenStream: %w", err)
	}
	opened.SetDeadline(time.Now().Add(opTimeout))
	if _, err := opened.Write([]byte{marker}); err != nil {
		opened.Close()
		return nil, nil, fmt.Errorf("write marker: %w", err)
	}
	accepted, err = to.AcceptStream(ctx)
	if err != nil {
		opened.Close()
		return nil, nil, fmt.Errorf("AcceptStream: %w", err)
	}
	accepted.SetDeadline(time.Now().Add(opTimeout))
	var b [1]byte
	if _, err := io.ReadFull(accepted, b[:]); err != nil || b[0] != marker {
		opened.Close()
		accepted.Close()
		return nil, nil, fmt.Errorf("read marker: %q, %v", b[:], err)
	}
	if opened.ID() != accepted.ID() {
		opened.Close()
		accepted.Close()
		return nil, nil, fmt.Errorf("accepted stream %d, opened %d", accepted.ID(), opened.ID())
	}
	return opened, accepted, nil
}

// Result is the outcome of a call run in the background by Async.
type Result struct {
	N   int
	Err error
}

// Async runs fn in a goroutine and returns a channel that delivers its
// Result. The channel is buffered, so an abandoned call does not leak a
// blocked sender.
func Async(fn func() (int, error)) <-chan Result {
	ch := make(chan Result, 1)
	go func() {
		n, err := fn()
		ch <- Result{n, err}
	}()
	return ch
}

// Await waits at most d for ch and fails the test if nothing arrived.
func Await(tb testing.TB, what string, ch <-chan Result, d time.Duration) Result {
	tb.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		tb.Fatalf("%s still blocked after %v", what, d)
		return Result{}
	}
}

// blocked fails the test if ch already delivered: the call should be
// blocked still.
func blocked(tb testing.TB, what string, ch <-chan Result) {
	tb.Helper()
	select {
	case r := <-ch:
		tb.Fatalf("%s returned early: %d, %v", what, r.N, r.Err)
	default:
	}
}

// readBlocked starts a Read without deadline on st.
func readBlocked(st tunnel.Stream) <-chan Result {
	st.SetReadDeadline(time.Time{})
	return Async(func() (int, error) { return st.Read(make([]byte, 1024)) })
}

// writeBlocked starts a Write without deadline of size bytes on st.
func writeBlocked(st tunnel.Stream, size int) <-chan Result {
	st.SetWriteDeadline(time.Time{})
	return Async(func() (int, error) { return st.Write(make([]byte, size)) })
}

// waitClosed waits at most d for ch to close and returns how long it took.
func waitClosed(tb testing.TB, what string, ch <-chan struct{}, d time.Duration) time.Duration {
	tb.Helper()
	start := time.Now()
	select {
	case <-ch:
		return time.Since(start)
	case <-time.After(d):
		tb.Fatalf("%s not closed after %v", what, d)
		return 0
	}
}

// StreamCounter is what the suite asks of a transport's sessions beyond
// tunnel.Session: the number of streams open, so it can check that closed
// streams are released. The pool keeps its own count, so the interface
// leaves it out.
type StreamCounter interface {
	NumStreams() int
}

// numStreams reads sess's stream count; the test fails if the transport
// does not count.
func numStreams(tb testing.TB, sess tunnel.Session) int {
	tb.Helper()
	c, ok := sess.(StreamCounter)
	if !ok {
		tb.Fatalf("session %T does not implement StreamCounter", sess)
	}
	return c.NumStreams()
}

// waitNoStreams waits up to 2s for NumStreams to drop to zero on both
// sessions: closed streams are released.
func waitNoStreams(tb testing.TB, p Pair) {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for numStreams(tb, p.Client) != 0 || numStreams(tb, p.Server) != 0 {
		if time.Now().After(deadline) {
			tb.Errorf("streams still counted 2s after both ends closed: client %d, server %d",
				numStreams(tb, p.Client), numStreams(tb, p.Server))
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// isTimeout reports whether err is a net.Error timeout (a deadline hit).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// fillUntilBlocked writes chunk-sized writes, each under a short write
// deadline, until one times out without moving a byte, and returns the
// bytes accepted (partial writes included). A Write that times out after
// moving some bytes is slow, not blocked: on a loaded machine a live
// transport can take longer than the deadline to take a whole chunk. It
// fails the test if the writer never blocks.
func fillUntilBlocked(tb testing.TB, st tunnel.Stream, limit int) int {
	tb.Helper()
	chunk := make([]byte, 64<<10)
	total := 0
	for total < limit {
		st.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := st.Write(chunk)
		total += n
		if isTimeout(err) && n == 0 {
			st.SetWriteDeadline(time.Now().Add(opTimeout))
			return total
		}
		if err != nil && !isTimeout(err) {
			tb.Fatalf("Write after %d bytes: %v", total, err)
		}
	}
	tb.Fatalf("writer never blocked: %d bytes accepted with nobody reading", total)
	return 0
}

// Stream kinds: the first byte after marker tells a server what to do.
const (
	kindEcho    = 'E' // read a SHA-256 and a payload to EOF, check, echo it back
	kindDiscard = 'D' // read to EOF, then answer one byte
	kindHold    = 'H' // never read; hold the stream until the server stops
	kindPong    = 'P' // answer one byte, then read to EOF
)

// server accepts streams on one session and runs the handler named by each
// stream's kind. Handlers' failures are reported with tb.Errorf.
type server struct {
	tb     testing.TB
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	open   map[tunnel.Stream]struct{}
}

// serve starts a server on sess; it stops at cleanup, closing its streams
// and waiting for its handlers.
func serve(tb testing.TB, sess tunnel.Session) *server {
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{tb: tb, cancel: cancel, open: map[tunnel.Stream]struct{}{}}
	s.wg.Go(func() {
		for {
			st, err := sess.AcceptStream(ctx)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.open[st] = struct{}{}
			s.mu.Unlock()
			s.wg.Go(func() { s.handle(ctx, st) })
		}
	})
	tb.Cleanup(s.stop)
	return s
}

func (s *server) stop() {
	s.cancel()
	s.mu.Lock()
	for st := range s.open {
		st.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *server) handle(ctx context.Context, st tunnel.Stream) {
	defer func() {
		st.Close()
		s.mu.Lock()
		delete(s.open, st)
		s.mu.Unlock()
	}()
	var hdr [2]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil || hdr[0] != marker {
		s.tb.Errorf("server stream %d: header %q, %v", st.ID(), hdr[:], err)
		return
	}
	var err error
	switch hdr[1] {
	case kindEcho:
		st.SetDeadline(time.Now().Add(opTimeout))
		err = echoVerified(st)
	case kindDiscard:
		st.SetDeadline(time.Now().Add(opTimeout))
		if _, err = io.Copy(io.Discard, st); err == nil {
			_, err = st.Write([]byte{1})
		}
	case kindHold:
		<-ctx.Done()
	case kindPong:
		if _, err = st.Write([]byte{1}); err == nil {
			_, err = io.Copy(io.Discard, st)
		}
	default:
		err = fmt.Errorf("unknown kind %q", hdr[1])
	}
	if err != nil && ctx.Err() == nil {
		s.tb.Errorf("server stream %d (%c): %v", st.ID(), hdr[1], err)
	}
}

// echoVerified reads a SHA-256 and the payload up to EOF, echoing the
// payload, and fails unless the hash matches; then it half-closes.
func echoVerified(st tunnel.Stream) error {
	var want [sha256.Size]byte
	if _, err := io.ReadFull(st, want[:]); err != nil {
		return fmt.Errorf("read hash: %w", err)
	}
	h := sha256.New()
	// io.Copy returns nil only on io.EOF: the CloseWrite arrived after all
	// the data.
	if _, err := io.Copy(st, io.TeeReader(st, h)); err != nil {
		return fmt.Errorf("echo: %w", err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		return errors.New("payload hash mismatch at the echo server")
	}
	return st.CloseWrite()
}

// openKind opens a stream on sess announcing kind, with deadline opTimeout.
func openKind(tb testing.TB, sess tunnel.Session, kind byte) tunnel.Stream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	st, err := sess.OpenStream(ctx)
	if err != nil {
		tb.Fatalf("OpenStream: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	st.SetDeadline(time.Now().Add(opTimeout))
	if _, err := st.Write([]byte{marker, kind}); err != nil {
		tb.Fatalf("write header: %v", err)
	}
	return st
}

// echoOne sends the SHA-256 of payload and payload on an echo stream,
// half-closes, and checks that exactly payload comes back, then io.EOF.
func echoOne(st tunnel.Stream, payload []byte) error {
	sum := sha256.Sum256(payload)
	sent := Async(func() (int, error) {
		if _, err := st.Write(sum[:]); err != nil {
			return 0, err
		}
		n, err := st.Write(payload)
		if err != nil {
			return n, err
		}
		return n, st.CloseWrite()
	})
	h := sha256.New()
	n, err := io.Copy(h, st)
	if err != nil {
		return fmt.Errorf("read echo after %d bytes: %w", n, err)
	}
	if r := <-sent; r.Err != nil {
		return fmt.Errorf("write after %d bytes: %w", r.N, r.Err)
	}
	if n != int64(len(payload)) || !bytes.Equal(h.Sum(nil), sum[:]) {
		return fmt.Errorf("echo: %d bytes with a different hash, want %d bytes", n, len(payload))
	}
	return nil
}

// timedEcho opens an echo stream, echoes payload and returns the time taken.
func timedEcho(tb testing.TB, sess tunnel.Session, payload []byte) time.Duration {
	tb.Helper()
	start := time.Now()
	st := openKind(tb, sess, kindEcho)
	if err := echoOne(st, payload); err != nil {
		tb.Fatalf("echo of %d bytes: %v", len(payload), err)
	}
	st.Close()
	return time.Since(start)
}

// EchoOne is the suite's echo client for transport-specific tests: it sends
// the payload's SHA-256 and the payload, half-closes, and checks that exactly
// the payload comes back before io.EOF. The peer runs EchoVerified.
func EchoOne(st tunnel.Stream, payload []byte) error { return echoOne(st, payload) }

// EchoVerified is the echo server side of EchoOne.
func EchoVerified(st tunnel.Stream) error { return echoVerified(st) }
