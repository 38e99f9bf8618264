package relay

import (
	"bytes"
	"cmp"
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
)

// memStream is a tunnel.Stream that keeps what is written to it. With
// stuck set, its writes wait until a write deadline is set, as on a session
// held behind a lost segment.
type memStream struct {
	tunnel.Stream // nil: only the methods below are called
	mu            sync.Mutex
	buf           bytes.Buffer
	closed, reset bool
	stuck         chan struct{} // closed by SetWriteDeadline; nil: writes go through
	once          sync.Once
	wrote         chan struct{} // signalled after every write; nil: not
}

func (s *memStream) Write(p []byte) (int, error) {
	if s.stuck != nil {
		<-s.stuck
		return 0, os.ErrDeadlineExceeded
	}
	s.mu.Lock()
	n, err := s.buf.Write(p)
	s.mu.Unlock()
	if s.wrote != nil {
		select {
		case s.wrote <- struct{}{}:
		default:
		}
	}
	return n, err
}

// caughtUp waits until the stream holds n bytes.
func (s *memStream) caughtUp(n int) {
	for {
		if got, _, _ := s.state(); len(got) >= n {
			return
		}
		<-s.wrote
	}
}

func (s *memStream) SetWriteDeadline(time.Time) error {
	if s.stuck != nil {
		s.once.Do(func() { close(s.stuck) })
	}
	return nil
}

func (s *memStream) Close() error { s.mu.Lock(); s.closed = true; s.mu.Unlock(); return nil }
func (s *memStream) Reset() error { s.mu.Lock(); s.reset = true; s.mu.Unlock(); return nil }

func (s *memStream) state() (string, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String(), s.closed, s.reset
}

// TestAnswerMirror: the second copy of a hedged request gets the answer
// byte for byte, from its first byte, and is closed when it is over; only
// one copy may follow an answer, and none once the answer is over or has
// outgrown the log; a mirror that cannot keep up is reset, and the primary
// gets every byte regardless.
func TestAnswerMirror(t *testing.T) {
	big := bytes.Repeat([]byte("x"), mirrorLogMax)
	for _, tc := range []struct {
		name       string
		before     [][]byte // written before the mirror joins
		after      [][]byte // written after
		stuck      bool     // the mirror's writes wait for a deadline
		lockstep   bool     // each write after the join waits for the mirror to catch up, up to the limit
		limit      int64    // the answer's mirror limit (0: mirrorAnswerMax, a BBR session's)
		wantJoined bool
		wantMirror string // what the mirror got; with "...", what it starts with
		wantReset  bool
	}{
		{"joins early", nil, [][]byte{[]byte("ab"), []byte("cd")}, false, false, 0, true, "abcd", false},
		{"joins midway", [][]byte{[]byte("ab")}, [][]byte{[]byte("cd")}, false, false, 0, true, "abcd", false},
		{"answer outgrew the log before it joined", [][]byte{big, []byte("y")}, nil, false, false, 0, false, "", false},
		{"stuck mirror falls behind: reset", [][]byte{[]byte("ab")}, [][]byte{big}, true, false, 0, true, "", true},
		{"bulk answer: mirrored up to mirrorAnswerMax, then reset", [][]byte{[]byte("ab")},
			slices.Repeat([][]byte{big[:mirrorLogMax/4]}, 4*mirrorAnswerMax/mirrorLogMax+1), false, true, 0, true,
			"ab" + strings.Repeat("x", mirrorAnswerMax-mirrorLogMax/4) + "...", true},
		{"loss-based session: the first mirrorFirstMax bytes, then reset", [][]byte{[]byte("ab")},
			slices.Repeat([][]byte{big[:256]}, mirrorFirstMax/256+2), false, true, mirrorFirstMax, true,
			"ab" + strings.Repeat("x", mirrorFirstMax-256) + "...", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ms mirrors
			primary := &memStream{}
			limit := cmp.Or(tc.limit, mirrorAnswerMax)
			tee := ms.open("req_1", "edge-a", primary, limit)
			for _, p := range tc.before {
				_, _ = tee.Write(p)
			}
			mirror := &memStream{wrote: make(chan struct{}, 1)}
			if tc.stuck {
				mirror.stuck = make(chan struct{})
			}
			if ms.join("req_1", "edge-b", &memStream{}) != nil {
				t.Fatal("another edge's stream joined the answer")
			}
			joined := ms.join("req_1", "edge-a", mirror)
			if (joined != nil) != tc.wantJoined {
				t.Fatalf("joined: %v; want %v", joined != nil, tc.wantJoined)
			}
			if ms.join("req_1", "edge-a", &memStream{}) != nil {
				t.Fatal("a second mirror joined")
			}
			followed := make(chan struct{})
			go func() {
				defer close(followed)
				if joined != nil {
					joined.follow(context.Background())
				}
			}()
			var want []byte
			for _, p := range append(append([][]byte{}, tc.before...), tc.after...) {
				want = append(want, p...)
			}
			written := len(want) - len(bytes.Join(tc.after, nil))
			for _, p := range tc.after {
				_, _ = tee.Write(p)
				if written += len(p); tc.lockstep && int64(written) <= limit {
					mirror.caughtUp(written)
				}
			}
			ms.close("req_1", tee)
			<-followed
			if got, _, _ := primary.state(); got != string(want) {
				t.Errorf("primary got %d bytes; want %d", len(got), len(want))
			}
			got, closed, reset := mirror.state()
			// "...": the mirror may have written some of the write that cut it.
			if prefix, ok := strings.CutSuffix(tc.wantMirror, "..."); ok && strings.HasPrefix(got, prefix) && int64(len(got)) <= limit {
				got = tc.wantMirror
			}
			if got != tc.wantMirror || reset != tc.wantReset || (tc.wantJoined && !reset && !closed) {
				t.Errorf("mirror got %q, closed %v, reset %v; want %q, reset %v", got, closed, reset, tc.wantMirror, tc.wantReset)
			}
			if ms.join("req_1", "edge-a", &memStream{}) != nil {
				t.Fatal("a mirror joined an answer that is over")
			}
		})
	}
}

// TestMirrorLimit: a BBR session mirrors an answer whole (up to
// mirrorAnswerMax); a loss-based or unknown one, its first bytes.
func TestMirrorLimit(t *testing.T) {
	for cc, want := range map[string]int64{"bbr": mirrorAnswerMax, "bbr2": mirrorAnswerMax, "reno": mirrorFirstMax,
		"cubic": mirrorFirstMax, "": mirrorFirstMax} {
		if got := mirrorLimit(tunnel.Info{Congestion: cc}); got != want {
			t.Errorf("mirrorLimit(%q) = %d; want %d", cc, got, want)
		}
	}
}
