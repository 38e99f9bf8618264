package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/strait/strait/tunnel"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSession is an in-memory tunnel.Session the test controls: its load
// (NumStreams) can be set, Kill ends it as a lost connection would, and it
// records whether the pool closed it.
type fakeSession struct {
	id      int
	streams atomic.Int64
	// refuse, when set, runs first in OpenStream; a non-nil result is
	// returned instead of a stream. Set it before the pool can open streams
	// on the session concurrently.
	refuse func(ctx context.Context) error
	// openDelay is how long OpenStream takes, as a real one does (a
	// write, a lock): concurrent opens then overlap.
	openDelay time.Duration
	// congestion is what Info reports as the congestion control.
	congestion string

	done     chan struct{}
	once     sync.Once
	closedBy atomic.Value // "pool" or "kill"
}

func newFakeSession(id int) *fakeSession {
	return &fakeSession{id: id, done: make(chan struct{})}
}

func (s *fakeSession) OpenStream(ctx context.Context) (tunnel.Stream, error) {
	if s.refuse != nil {
		if err := s.refuse(ctx); err != nil {
			return nil, err
		}
	}
	if s.openDelay > 0 {
		time.Sleep(s.openDelay)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-s.done:
		return nil, tunnel.ErrSessionClosed
	default:
	}
	s.streams.Add(1)
	return &fakeStream{sess: s}, nil
}

func (s *fakeSession) AcceptStream(ctx context.Context) (tunnel.Stream, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, tunnel.ErrSessionClosed
	}
}

func (s *fakeSession) NumStreams() int       { return int(s.streams.Load()) }
func (s *fakeSession) Done() <-chan struct{} { return s.done }

// Close is what the pool calls.
func (s *fakeSession) Close() error { s.end("pool"); return nil }

// Kill ends the session from outside, like a vanished peer.
func (s *fakeSession) Kill() { s.end("kill") }

func (s *fakeSession) end(by string) {
	s.once.Do(func() {
		s.closedBy.Store(by)
		close(s.done)
	})
}

// ClosedBy is "pool", "kill" or "" while the session is up.
func (s *fakeSession) ClosedBy() string {
	by, _ := s.closedBy.Load().(string)
	return by
}

func (s *fakeSession) Err() error {
	select {
	case <-s.done:
		return tunnel.ErrSessionClosed
	default:
		return nil
	}
}

func (s *fakeSession) Info() tunnel.Info {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000 + s.id}
	return tunnel.Info{Transport: "fake", LocalAddr: addr, RemoteAddr: addr, PeerName: fmt.Sprint("relay-", s.id),
		Congestion: s.congestion}
}

// fakeStream is a no-op stream that remembers its session; Close releases
// its slot in the session's load.
type fakeStream struct {
	sess *fakeSession
	once sync.Once
}

func (s *fakeStream) Read([]byte) (int, error)         { return 0, errors.New("fake stream") }
func (s *fakeStream) Write(p []byte) (int, error)      { return len(p), nil }
func (s *fakeStream) CloseWrite() error                { return nil }
func (s *fakeStream) Buffered() int64                  { return 0 }
func (s *fakeStream) Context() context.Context         { return context.Background() }
func (s *fakeStream) SetDeadline(time.Time) error      { return nil }
func (s *fakeStream) SetReadDeadline(time.Time) error  { return nil }
func (s *fakeStream) SetWriteDeadline(time.Time) error { return nil }
func (s *fakeStream) ID() uint64                       { return 1 }
func (s *fakeStream) Reset() error                     { return s.Close() }

func (s *fakeStream) Close() error {
	s.once.Do(func() { s.sess.streams.Add(-1) })
	return nil
}

// fakeDialer hands out fakeSessions. It fails its first failFirst attempts
// (all of them if failFirst < 0), and while gate is open-ended (non-nil and
// not closed) every Dial waits for it or for ctx.
type fakeDialer struct {
	addr      string
	failFirst int
	limit     int           // refuse once this many sessions were handed out; 0 = no limit
	openDelay time.Duration // given to every session
	gate      chan struct{}
	// congestion is what every session's Info reports (Info.Congestion).
	congestion string

	mu       sync.Mutex
	attempts []time.Time
	sessions []*fakeSession
	changed  chan struct{} // closed and replaced on every attempt
}

func newFakeDialer(addr string, failFirst int) *fakeDialer {
	return &fakeDialer{addr: addr, failFirst: failFirst, changed: make(chan struct{})}
}

var errDialRefused = errors.New("fake dial refused")

func (d *fakeDialer) Addr() string { return d.addr }

func (d *fakeDialer) Dial(ctx context.Context) (tunnel.Session, error) {
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.attempts = append(d.attempts, time.Now())
	close(d.changed)
	d.changed = make(chan struct{})
	if d.failFirst < 0 || len(d.attempts) <= d.failFirst || d.limit > 0 && len(d.sessions) >= d.limit {
		return nil, fmt.Errorf("attempt %d: %w", len(d.attempts), errDialRefused)
	}
	s := newFakeSession(len(d.attempts))
	s.openDelay = d.openDelay
	s.congestion = d.congestion
	d.sessions = append(d.sessions, s)
	return s, nil
}

// Attempts returns the times of all Dial attempts so far.
func (d *fakeDialer) Attempts() []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]time.Time(nil), d.attempts...)
}

// Sessions returns every session handed out so far, oldest first.
func (d *fakeDialer) Sessions() []*fakeSession {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*fakeSession(nil), d.sessions...)
}

// waitSessions waits until the dialer has handed out n sessions.
func (d *fakeDialer) waitSessions(t *testing.T, n int) []*fakeSession {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		d.mu.Lock()
		got, changed := len(d.sessions), d.changed
		d.mu.Unlock()
		if got >= n {
			return d.Sessions()
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%s: %d of %d sessions dialed after 5s", d.addr, got, n)
		}
	}
}

var _ tunnel.Dialer = (*fakeDialer)(nil)
var _ tunnel.Session = (*fakeSession)(nil)
