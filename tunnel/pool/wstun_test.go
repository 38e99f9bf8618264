package pool

import (
	"bufio"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait/strait/proto"
	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

// TestOverWebSocket runs the pool against a real wstun relay on loopback:
// sessions come up over mutual TLS, streams echo, a session the relay drops
// is replaced, and Close ends the edge side of every session.
func TestOverWebSocket(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	cfg := wstun.Config{HandshakeTimeout: 5 * time.Second}
	ln, err := wstun.Listen(tunneltest.Listen(t), pki.ServerConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	relay := startEchoRelay(t, ln)
	defer relay.stop()

	d, err := wstun.NewDialer(ln.Addr().String(), pki.ClientConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 2})
	waitLive(t, p, 2)
	echo(t, p, "first")

	dropped := relay.session(t, 0)
	dropped.Close() // the relay drops one connection
	third := relay.session(t, 2)
	waitLive(t, p, 2)
	for range 4 { // spread over both sessions, the replacement included
		echo(t, p, "after redial")
	}
	if third.Info().PeerName != tunneltest.EdgeName {
		t.Errorf("replacement session from %q", third.Info().PeerName)
	}

	p.Close()
	for i := range 3 {
		s := relay.session(t, i)
		select {
		case <-s.Done():
		case <-time.After(2 * time.Second):
			t.Errorf("relay session %d still up 2s after the pool closed", i)
		}
	}
}

// echoRelay accepts sessions and echoes every stream on them.
type echoRelay struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions []tunnel.Session
	changed  chan struct{}
	ctl      map[tunnel.Session]*controlEnd
	mute     atomic.Bool // stop answering probes
}

// controlEnd is the relay's end of a session's control stream.
type controlEnd struct {
	mu sync.Mutex
	w  *proto.Writer
}

// control answers probes on a control stream, as the relay does.
func (r *echoRelay) control(s tunnel.Session, st tunnel.Stream, br *bufio.Reader) {
	c := &controlEnd{w: proto.NewWriter(st)}
	r.mu.Lock()
	if r.ctl == nil {
		r.ctl = map[tunnel.Session]*controlEnd{}
	}
	r.ctl[s] = c
	r.mu.Unlock()
	pr := proto.NewReader(br)
	defer pr.Release()
	for {
		typ, p, err := pr.Next()
		if err != nil || typ != proto.FramePing {
			return
		}
		seq, _ := proto.ParseSeq(p)
		if r.mute.Load() {
			continue
		}
		c.mu.Lock()
		err = c.w.WritePong(seq)
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// goAway sends a GoAway that drains session s.
func (r *echoRelay) goAway(t *testing.T, s tunnel.Session) {
	t.Helper()
	r.sendGoAway(t, s, proto.GoAway{Drain: time.Minute, Message: "test drain"})
}

// sendGoAway sends g on session s's control stream.
func (r *echoRelay) sendGoAway(t *testing.T, s tunnel.Session, g proto.GoAway) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		c := r.ctl[s]
		r.mu.Unlock()
		if c != nil {
			c.mu.Lock()
			defer c.mu.Unlock()
			if err := c.w.WriteGoAway(g); err != nil && !closedSoon(s) {
				t.Fatal(err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no control stream on the session")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedSoon reports whether s closes within a second. A GoAway's write
// can fail after its frame left: the pool reads it and closes the session
// before the write has been confirmed (a drained extra session has nothing
// to wait for). The callers check what the GoAway did, so one that never
// arrived still fails the test.
func closedSoon(s tunnel.Session) bool {
	select {
	case <-s.Done():
		return true
	case <-time.After(time.Second):
		return false
	}
}

func startEchoRelay(t *testing.T, ln tunnel.Listener) *echoRelay {
	ctx, cancel := context.WithCancel(t.Context())
	r := &echoRelay{cancel: cancel, changed: make(chan struct{})}
	r.wg.Go(func() {
		for {
			s, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			r.mu.Lock()
			r.sessions = append(r.sessions, s)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
			r.wg.Go(func() { r.serve(ctx, s) })
		}
	})
	return r
}

func (r *echoRelay) serve(ctx context.Context, s tunnel.Session) {
	defer s.Close()
	for {
		st, err := s.AcceptStream(ctx)
		if err != nil {
			return
		}
		r.wg.Go(func() {
			defer st.Close()
			st.SetDeadline(time.Now().Add(5 * time.Second))
			br := bufio.NewReader(st)
			if first, err := br.Peek(1); err == nil && proto.FrameType(first[0]) == proto.FramePing {
				st.SetDeadline(time.Time{})
				r.control(s, st, br)
				return
			}
			io.Copy(st, br)
			st.CloseWrite()
		})
	}
}

// session waits for the i-th accepted session (0-based).
func (r *echoRelay) session(t *testing.T, i int) tunnel.Session {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		n, changed := len(r.sessions), r.changed
		var s tunnel.Session
		if i < n {
			s = r.sessions[i]
		}
		r.mu.Unlock()
		if s != nil {
			return s
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("relay accepted %d sessions; waited 5s for #%d", n, i+1)
		}
	}
}

func (r *echoRelay) stop() {
	r.cancel()
	r.wg.Wait()
}

// echo sends msg on a pool stream and expects it back.
func echo(t *testing.T, p *Pool, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := p.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	defer st.Close()
	st.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(st, msg); err != nil {
		t.Fatal(err)
	}
	st.CloseWrite()
	got, err := io.ReadAll(st)
	if err != nil || string(got) != msg {
		t.Fatalf("echo = %q, %v; want %q", got, err, msg)
	}
}

// startWSRelay starts a control-speaking echo relay over wstun and a pool
// on it.
func startWSRelay(t *testing.T, cfg Config) (*echoRelay, *Pool) {
	t.Helper()
	pki := tunneltest.NewPKI(t, "")
	wcfg := wstun.Config{HandshakeTimeout: 5 * time.Second}
	ln, err := wstun.Listen(tunneltest.Listen(t), pki.ServerConfig(), wcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	relay := startEchoRelay(t, ln)
	t.Cleanup(relay.stop)
	d, err := wstun.NewDialer(ln.Addr().String(), pki.ClientConfig(), wcfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dialers = []tunnel.Dialer{d}
	return relay, newPool(t, cfg)
}

// TestGoAwayMakeBeforeBreak: on GoAway the pool stops giving the session new
// streams, dials its replacement while the old session still carries its
// open stream, and closes the old one once that stream is done.
func TestGoAwayMakeBeforeBreak(t *testing.T) {
	relay, p := startWSRelay(t, Config{SessionsPerRelay: 1})
	waitLive(t, p, 1)
	old := relay.session(t, 0)

	held, err := p.OpenStream(t.Context()) // in flight across the GoAway
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(held, "held "); err != nil {
		t.Fatal(err)
	}
	relay.goAway(t, old)
	replacement := relay.session(t, 1)
	select {
	case <-old.Done():
		t.Fatal("old session closed before its stream finished (break before make)")
	default:
	}
	waitLive(t, p, 1)
	echo(t, p, "new stream") // must go to the replacement: the old one is draining
	if n := replacement.(tunneltest.StreamCounter).NumStreams(); n == 0 {
		t.Error("no stream on the replacement session")
	}

	if _, err := io.WriteString(held, "stream"); err != nil {
		t.Fatalf("the held stream broke on GoAway: %v", err)
	}
	held.CloseWrite()
	held.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(held)
	if err != nil || string(got) != "held stream" {
		t.Fatalf("held stream echoed %q, %v", got, err)
	}
	held.Close()
	select {
	case <-old.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("drained session not closed after its last stream ended")
	}
	if st := p.Relays()[0]; st.GoAways != 1 || st.SessionsLost != 0 {
		t.Errorf("counted %d GoAways, %d losses; want 1 and 0", st.GoAways, st.SessionsLost)
	}
}

// TestRenewedSessions: a renewed extra session (one autoscale added) ends
// without a replacement, counted as a scale-down "renewed", and the load
// decides whether another is dialed; a renewed base session is replaced at
// once, as on any GoAway.
func TestRenewedSessions(t *testing.T) {
	// The dials are counted: no session may be added for congestion (a
	// loaded machine delays 20 ms probes enough to count as overdue).
	relay, p := startWSRelay(t, Config{SessionsPerRelay: 1, MaxSessionsPerRelay: 2, ProbeInterval: 20 * time.Millisecond,
		Scale: ScaleConfig{TargetStreams: 2, MaxStreams: 3, ShrinkAfter: time.Hour, CongestionCooldown: time.Hour}})
	waitLive(t, p, 1)
	base := relay.session(t, 0)
	held := openStreams(t, p, 4) // ⌈4/1.5⌉ = 3 wanted, 2 at most
	extra := relay.session(t, 1)
	waitLive(t, p, 2)
	for _, st := range held {
		st.Close()
	}
	renew := proto.GoAway{Message: "test renewal", Renewal: true}
	relay.sendGoAway(t, extra, renew)
	select {
	case <-extra.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the renewed extra session was not closed")
	}
	for deadline := time.Now().Add(5 * time.Second); p.Relays()[0].ScaleDowns[reasonRenewed] != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("ScaleDowns = %v; want 1 for %q", p.Relays()[0].ScaleDowns, reasonRenewed)
		}
		time.Sleep(5 * time.Millisecond)
	}
	dials := p.Relays()[0].Dials

	relay.sendGoAway(t, base, renew)
	relay.session(t, 2) // the base session's replacement
	waitLive(t, p, 1)
	echo(t, p, "after both renewals")
	st := p.Relays()[0]
	if st.Dials != dials+1 || st.GoAways != 2 || st.ScaleDowns[reasonRenewed] != 1 {
		t.Errorf("dials %d (want %d), GoAways %d (want 2), ScaleDowns %v (want 1 %q)", st.Dials, dials+1, st.GoAways, st.ScaleDowns, reasonRenewed)
	}
}

// TestProbes: probes measure a round trip, and a session whose probes stay
// unanswered for ProbeTimeout is closed and counted.
func TestProbes(t *testing.T) {
	relay, p := startWSRelay(t, Config{SessionsPerRelay: 1, ProbeInterval: 20 * time.Millisecond,
		ProbeTimeout: 300 * time.Millisecond})
	waitLive(t, p, 1)
	deadline := time.Now().Add(5 * time.Second)
	for p.Sessions()[0].RTT == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no probe round trip measured")
		}
		time.Sleep(10 * time.Millisecond)
	}
	relay.mute.Store(true)
	first := relay.session(t, 0)
	select {
	case <-first.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session with unanswered probes still up")
	}
	if n := p.Relays()[0].ProbeTimeouts; n < 1 {
		t.Errorf("%d probe timeouts counted", n)
	}
}

// TestCongestedSessionNotClosed: a session whose probes go unanswered but
// whose streams still receive data is slow, not dead (its probes wait
// behind the data), so it stays up as long as data flows; once nothing
// arrives for ProbeTimeout it is closed as before.
func TestCongestedSessionNotClosed(t *testing.T) {
	const probeTimeout = 300 * time.Millisecond
	relay, p := startWSRelay(t, Config{SessionsPerRelay: 1, ProbeInterval: 20 * time.Millisecond,
		ProbeTimeout: probeTimeout})
	waitLive(t, p, 1)
	first := relay.session(t, 0)
	st, err := p.OpenStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	relay.mute.Store(true)
	buf := make([]byte, 4)
	for end := time.Now().Add(4 * probeTimeout); time.Now().Before(end); {
		st.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(st, "data"); err != nil {
			t.Fatalf("stream broke while data flowed: %v", err)
		}
		if _, err := io.ReadFull(st, buf); err != nil {
			t.Fatalf("stream broke while data flowed: %v", err)
		}
		time.Sleep(probeTimeout / 10)
	}
	select {
	case <-first.Done():
		t.Fatal("session closed although its stream kept receiving data")
	default:
	}
	select { // no more data: now the unanswered probes count
	case <-first.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session with unanswered probes and no data still up")
	}
	if n := p.Relays()[0].ProbeTimeouts; n < 1 {
		t.Errorf("%d probe timeouts counted", n)
	}
}
