package relay

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
)

func TestRenewDue(t *testing.T) {
	now := time.Now()
	p := renewPolicy{minAge: 10 * time.Second, idle: time.Second, maxWindow: 1 << 20}
	old := now.Add(-time.Minute)
	idle := sessionUse{up: old, initialWindow: 40960}
	for _, tt := range []struct {
		name   string
		p      renewPolicy
		use    sessionUse
		window uint64
		want   bool
	}{
		{"idle, window moved", p, idle, 55 * 1280, true},
		{"idle, window cut below its start", p, idle, 28672, true},
		{"idle, window as it started", p, idle, 40960, false},
		{"idle, window grown large", p, idle, 7 << 20, false},
		{"serving a stream", p, sessionUse{up: old, initialWindow: 40960, streams: 1}, 55 * 1280, false},
		{"a stream just ended", p, sessionUse{up: old, initialWindow: 40960, lastEnd: now.Add(-time.Millisecond)}, 55 * 1280, false},
		{"a stream just ended, no idle asked", defaultRenewal, sessionUse{up: old, initialWindow: 40960, lastEnd: now}, 55 * 1280, true},
		{"idle long enough", p, sessionUse{up: old, initialWindow: 40960, lastEnd: now.Add(-2 * time.Second)}, 55 * 1280, true},
		{"too young", p, sessionUse{up: now.Add(-time.Second), initialWindow: 40960}, 55 * 1280, false},
		{"policy off", renewPolicy{off: true}, idle, 55 * 1280, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.due(now, tt.use, tunnel.SenderState{Window: tt.window}); got != tt.want {
				t.Errorf("due = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRenewDueTCP: a WebSocket session is renewed only once a loss cut its
// slow-start threshold below the window it started with, however its
// window moved otherwise.
func TestRenewDueTCP(t *testing.T) {
	now := time.Now()
	const mss, initial = 1448, 10 * 1448
	idle := sessionUse{up: now.Add(-time.Minute), initialWindow: initial, transport: tunnel.TransportWS}
	for _, tt := range []struct {
		name string
		use  sessionUse
		s    tunnel.SenderState
		want bool
	}{
		{"reno after losses while idle", idle, tunnel.SenderState{Window: 2 * mss, SlowStartThreshold: 2 * mss}, true},
		{"a cut threshold, the window back above it", idle, tunnel.SenderState{Window: 12 * mss, SlowStartThreshold: 5 * mss}, true},
		{"never a loss", idle, tunnel.SenderState{Window: initial}, false},
		{"bbr: the window grew, no threshold", idle, tunnel.SenderState{Window: 160 * mss}, false},
		{"bbr probing its round trip", idle, tunnel.SenderState{Window: 4 * mss}, false},
		{"a loss at a large window", idle, tunnel.SenderState{Window: 100 * mss, SlowStartThreshold: 70 * mss}, false},
		{"serving a stream", sessionUse{up: idle.up, initialWindow: initial, transport: tunnel.TransportWS, streams: 1},
			tunnel.SenderState{Window: 2 * mss, SlowStartThreshold: 2 * mss}, false},
		{"too young", sessionUse{up: now, initialWindow: initial, transport: tunnel.TransportWS},
			tunnel.SenderState{Window: 2 * mss, SlowStartThreshold: 2 * mss}, false},
		{"nothing known (outside Linux)", sessionUse{up: idle.up, transport: tunnel.TransportWS}, tunnel.SenderState{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultRenewal.due(now, tt.use, tt.s); got != tt.want {
				t.Errorf("due = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRenewDueQUICPhase: where quictun follows the sender's slow start, a
// QUIC session is renewed once slow start has ended, even at the window it
// started with (hybrid slow start on a rising round trip), and kept while
// slow start goes on, even with its window moved.
func TestRenewDueQUICPhase(t *testing.T) {
	now := time.Now()
	const initial = 40960
	idle := sessionUse{up: now.Add(-time.Minute), initialWindow: initial, transport: tunnel.TransportQUIC}
	for _, tt := range []struct {
		name string
		use  sessionUse
		s    tunnel.SenderState
		want bool
	}{
		{"slow start ended at the first window", idle, tunnel.SenderState{Window: initial, PhaseKnown: true, LeftSlowStart: true}, true},
		{"a loss cut the window", idle, tunnel.SenderState{Window: 28672, PhaseKnown: true, LeftSlowStart: true}, true},
		{"still in slow start, window grown", idle, tunnel.SenderState{Window: 4 * initial, PhaseKnown: true}, false},
		{"still in slow start, first window", idle, tunnel.SenderState{Window: initial, PhaseKnown: true}, false},
		{"slow start ended at a large window", idle, tunnel.SenderState{Window: 2 << 20, PhaseKnown: true, LeftSlowStart: true}, false},
		{"serving a stream", sessionUse{up: idle.up, initialWindow: initial, transport: tunnel.TransportQUIC, streams: 1},
			tunnel.SenderState{Window: initial, PhaseKnown: true, LeftSlowStart: true}, false},
		{"phase not followed: the window rule", idle, tunnel.SenderState{Window: initial}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultRenewal.due(now, tt.use, tt.s); got != tt.want {
				t.Errorf("due = %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeWindows reports a sender window for each relay-side session, keyed
// by its remote address (the edge side's local one). A moved window is
// also cut below its start, so it is due for renewal over either
// transport.
type fakeWindows struct {
	mu    sync.Mutex
	moved map[string]bool
	reads int // states read: each costs a system call on TCP
}

func (f *fakeWindows) state(s tunnel.Session) (tunnel.SenderState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.moved[s.Info().RemoteAddr.String()] {
		return tunnel.SenderState{Window: 55 * 1280, SlowStartThreshold: 20480}, true
	}
	return tunnel.SenderState{Window: 40960}, true
}

func (f *fakeWindows) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

// move makes the window of the relay's end of edge-side session s move.
func (f *fakeWindows) move(s tunnel.Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moved[s.Info().LocalAddr.String()] = true
}

// TestRenewsIdleSessions: a session whose window moved is renewed (GoAway
// naming the renewal) as its last stream ends, or at the next probe answer
// once the edge has another session here; never while a stream is in
// flight on it, nor when it is the edge's last session here.
func TestRenewsIdleSessions(t *testing.T) {
	windows := &fakeWindows{moved: map[string]bool{}}
	r := newRelayRig(t, func(r *Relay) {
		r.renewal = renewPolicy{maxWindow: 1 << 20}
		r.senderState = windows.state
	})
	dial := func() tunnel.Session {
		s, err := r.dialer.Dial(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	wantRenewal := func(rd *proto.Reader) {
		t.Helper()
		typ, p := next(t, rd)
		g, err := proto.ParseGoAway(p)
		if typ != proto.FrameGoAway || err != nil || g.Accepting || !g.Renewal || g.Message != renewMessage {
			t.Fatalf("got %s %+v %v; want a renewal GoAway %q", typ, g, err, renewMessage)
		}
	}
	other := dial()
	w, rd := r.control()
	ow, ord := r.controlOn(other)

	held := r.open("held", http.Header{"X-Test-Hold": {"1"}})
	<-r.held
	windows.move(r.sess)
	reads := windows.readCount()
	r.ping(w, rd, 2)
	r.ping(w, rd, 3) // a GoAway in between fails here: a stream is in flight
	if n := windows.readCount() - reads; n != 0 {
		t.Errorf("the sender state of a session with a stream in flight was read %d times; want none", n)
	}
	r.release()
	if a := r.read(held); a.status != http.StatusOK {
		t.Fatalf("the stream in flight: status %d, end %v", a.status, a.end)
	}
	wantRenewal(rd) // as the stream ended, with no probe

	// The other session is now the edge's only one not going away.
	windows.move(other)
	r.ping(ow, ord, 2)
	r.ping(ow, ord, 3)
	// Until the edge dials another.
	r.controlOn(dial())
	r.ping(ow, ord, 4)
	wantRenewal(ord)
}

// TestRenewsNeedlessWatch: a session whose sender's phase is followed on a
// path since found short is renewed at the next probe answer, although a
// stream is in flight on it (the stream still completes), and never while
// it is the edge's only session here.
func TestRenewsNeedlessWatch(t *testing.T) {
	var needless sync.Map // remote addresses of the relay's ends whose watch is needless
	r := newRelayRig(t, func(r *Relay) {
		r.needlessWatch = func(s tunnel.Session) bool {
			_, ok := needless.Load(s.Info().RemoteAddr.String())
			return ok
		}
	})
	w, rd := r.control()
	needless.Store(r.sess.Info().LocalAddr.String(), true)
	r.ping(w, rd, 2) // the edge's only session: kept
	other, err := r.dialer.Dial(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	r.controlOn(other)
	held := r.open("held", http.Header{"X-Test-Hold": {"1"}})
	<-r.held
	r.ping(w, rd, 3)
	typ, p := next(t, rd)
	g, err := proto.ParseGoAway(p)
	if typ != proto.FrameGoAway || err != nil || g.Accepting || !g.Renewal || g.Message != renewShortMessage {
		t.Fatalf("got %s %+v %v; want a renewal GoAway %q", typ, g, err, renewShortMessage)
	}
	r.release()
	if a := r.read(held); a.status != http.StatusOK {
		t.Fatalf("the stream in flight: status %d, end %v", a.status, a.end)
	}
}

func TestRenewalAfter(t *testing.T) {
	d := func(v time.Duration) *time.Duration { return &v }
	for _, tt := range []struct {
		set    *time.Duration
		minAge time.Duration
		off    bool
	}{{nil, 10 * time.Second, false}, {d(0), 10 * time.Second, true}, {d(-1), 10 * time.Second, true},
		{d(3 * time.Second), 3 * time.Second, false}} {
		if p := renewalAfter(tt.set); p.minAge != tt.minAge || p.off != tt.off || p.maxWindow != 1<<20 {
			t.Errorf("renewalAfter(%v) = %+v; want minAge %v, off %v", tt.set, p, tt.minAge, tt.off)
		}
	}
}
