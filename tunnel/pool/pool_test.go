package pool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/tunnel"
)

// The tests on fake dialers run in synctest bubbles: time is virtual, so
// backoff delays are measured exactly and the tests take no wall time.
// TestOverWebSocket (wstun_test.go) covers the same pool on real sockets.

const (
	minBackoff = 10 * time.Millisecond
	maxBackoff = 80 * time.Millisecond
)

// newPool starts a pool with fast backoff and closes it when the test ends.
func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = minBackoff
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = maxBackoff
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func waitLive(t *testing.T, p *Pool, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := p.WaitLive(ctx, n); err != nil {
		t.Fatal(err)
	}
}

// linkOf returns the pool's link of a live fake session.
func linkOf(t *testing.T, p *Pool, fs *fakeSession) *link {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.live {
		if l.sess == fs {
			return l
		}
	}
	t.Fatalf("session %d is not live", fs.id)
	return nil
}

// openOn opens a stream through the pool and returns the session it used.
func openOn(t *testing.T, p *Pool) *fakeSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := p.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	return st.(*stream).Stream.(*fakeStream).sess
}

// ceiling is the largest delay after the n-th consecutive failure with
// the default three fast retries.
func ceiling(n int) time.Duration {
	d := minBackoff
	for i := 3; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

func TestNewWithoutDialers(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without dialers succeeded")
	}
}

// TestSessionsPerRelay: New keeps SessionsPerRelay sessions to every relay,
// and no more; zero means 2.
func TestSessionsPerRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newFakeDialer("relay-a:443", 0), newFakeDialer("relay-b:443", 0)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{a, b}, SessionsPerRelay: 3})
		waitLive(t, p, 6)
		time.Sleep(time.Minute) // any extra dial would show up by now
		if got := p.Live(); got != 6 {
			t.Errorf("Live = %d, want 6", got)
		}
		for _, d := range []*fakeDialer{a, b} {
			if n := len(d.Attempts()); n != 3 {
				t.Errorf("%s dialed %d times, want 3", d.Addr(), n)
			}
		}

		c := newFakeDialer("relay-c:443", 0)
		p2 := newPool(t, Config{Dialers: []tunnel.Dialer{c}})
		waitLive(t, p2, 2)
		synctest.Wait()
		if n := len(c.Attempts()); n != 2 {
			t.Errorf("default SessionsPerRelay dialed %d times, want 2", n)
		}
	})
}

// TestOpenStreamLeastLoaded: each stream goes to the session with the fewest
// open streams, so uneven sessions even out.
func TestOpenStreamLeastLoaded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay:443", 0)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 3})
		waitLive(t, p, 3)
		s := d.Sessions()
		for i, n := range []int64{5, 1, 3} {
			linkOf(t, p, s[i]).streams.Store(n)
		}

		if got := openOn(t, p); got != s[1] {
			t.Fatalf("first stream on session %d (load %d); want session %d", got.id, got.NumStreams(), s[1].id)
		}
		for range 5 { // fills s[1] and s[2] up to s[0]'s 5
			openOn(t, p)
		}
		for _, fs := range s {
			if n := linkOf(t, p, fs).numStreams(); n != 5 {
				t.Errorf("session %d has %d streams; want 5 on each", fs.id, n)
			}
		}
	})
}

// TestOpenStreamWaitsForSession: with nothing up, OpenStream waits and
// succeeds as soon as a session comes up.
func TestOpenStreamWaitsForSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay:443", 0)
		d.gate = make(chan struct{})
		// The dial stays pending on the gate, however long that takes.
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, FastDialTimeout: time.Hour})

		got := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			_, err := p.OpenStream(ctx)
			got <- err
		}()
		time.Sleep(time.Second)
		select {
		case err := <-got:
			t.Fatalf("OpenStream returned %v with no session up", err)
		default:
		}
		close(d.gate)
		synctest.Wait() // no time passes: it must not need a timer to notice
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("OpenStream after the session came up: %v", err)
			}
		default:
			t.Fatal("OpenStream still waiting after the session came up")
		}
	})
}

// TestOpenStreamContextEnds: OpenStream gives up when its context does, with
// an error wrapping the context's that keeps the last session error.
func TestOpenStreamContextEnds(t *testing.T) {
	t.Run("no session", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := newPool(t, Config{Dialers: []tunnel.Dialer{newFakeDialer("relay:443", -1)}})
			start := time.Now()
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			_, err := p.OpenStream(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("OpenStream = %v; want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d != 100*time.Millisecond {
				t.Errorf("OpenStream returned after %v; want exactly its 100ms deadline", d)
			}
		})
	})
	t.Run("session refuses streams", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := newFakeDialer("relay:443", 0)
			p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1})
			waitLive(t, p, 1)
			s := d.Sessions()[0]
			// The first attempt is refused; the retry is still in progress
			// when the deadline hits and fails with ctx's error. The message
			// must keep the session's reason, not repeat the deadline.
			goingAway := fmt.Errorf("refuse: %w", tunnel.ErrPeerGoingAway)
			calls := 0 // OpenStream runs on this goroutine only
			s.refuse = func(ctx context.Context) error {
				if calls++; calls == 1 {
					return goingAway
				}
				<-ctx.Done()
				return ctx.Err()
			}
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			_, err := p.OpenStream(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("OpenStream = %v; want context.DeadlineExceeded", err)
			}
			if !strings.Contains(err.Error(), goingAway.Error()) {
				t.Errorf("OpenStream error %q does not mention the session's refusal %q", err, goingAway)
			}
			if calls != 2 {
				t.Errorf("%d OpenStream attempts on the session; want 2 (one retry)", calls)
			}
		})
	})
}

// TestDialBackoff: a relay that refuses every dial is retried: three fast
// retries MinBackoff apart, then full-jitter delays in (0, min·2^k] capped
// at MaxBackoff. Every attempt is logged with its outcome and counted.
func TestDialBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 2 * time.Second
		core, logs := observer.New(zapcore.WarnLevel)
		d := newFakeDialer("relay:443", -1)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, Logger: zap.New(core)})
		time.Sleep(window)
		st := p.Relays()[0]
		p.Close()
		at := d.Attempts()

		// Full jitter averages half the 80 ms cap: about 50 attempts in 2 s.
		// A constant 10 ms delay would make 200; no backoff at all, millions.
		if len(at) < 20 || len(at) > 120 {
			t.Fatalf("%d dial attempts in %v; want 20..120 (retried, but backing off)", len(at), window)
		}
		for i := 1; i < len(at); i++ {
			gap := at[i].Sub(at[i-1])
			if i <= 3 && gap != minBackoff {
				t.Errorf("fast retry %d came %v after the previous attempt; want %v", i, gap, minBackoff)
			}
			if i > 3 && (gap <= 0 || gap > ceiling(i)) {
				t.Errorf("attempt %d came %v after the previous one; want within (0, %v]", i+1, gap, ceiling(i))
			}
		}
		t.Logf("%d attempts in %v, gaps %v", len(at), window, gaps(at))
		if st.Dials != int64(len(at)) || st.DialFailures != int64(len(at)) {
			t.Errorf("counted %d dials, %d failures; want %d of each", st.Dials, st.DialFailures, len(at))
		}

		// Every failure is logged once, with the delay chosen for it.
		failed := logs.FilterMessage("tunnel dial failed").All()
		if len(failed) != len(at) {
			t.Errorf("%d \"tunnel dial failed\" entries for %d attempts", len(failed), len(at))
		}
		for i, e := range failed {
			f := e.ContextMap()
			if n := f["attempt"].(int64); n != int64(i+1) {
				t.Errorf("entry %d has attempt %d", i, n)
			}
			if i+1 < len(at) && f["retry_in"].(time.Duration) != at[i+1].Sub(at[i]) {
				t.Errorf("attempt %d: logged retry_in %v, waited %v", i+1, f["retry_in"], at[i+1].Sub(at[i]))
			}
			if f["relay"] != "relay:443" || f["reason"] == "" {
				t.Errorf("attempt %d logged without relay or reason: %v", i+1, f)
			}
		}
	})
}

func gaps(at []time.Time) []time.Duration {
	var g []time.Duration
	for i := 1; i < len(at); i++ {
		g = append(g, at[i].Sub(at[i-1]).Round(time.Millisecond))
	}
	return g
}

// TestDialRetrySucceeds: after three refusals the fourth attempt brings the
// session up, and the pool stops dialing.
func TestDialRetrySucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay:443", 3)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1})
		waitLive(t, p, 1)
		time.Sleep(time.Minute)
		if n := len(d.Attempts()); n != 4 {
			t.Errorf("%d attempts; want 3 failures and 1 success", n)
		}
		if got := openOn(t, p); got != d.Sessions()[0] {
			t.Errorf("stream on session %d; want the only live one", got.id)
		}
	})
}

// TestRedialAfterSessionLoss: when a live session ends, the pool drops it,
// closes it, dials a replacement after a MinBackoff pause (a fast retry), and
// routes new streams there.
func TestRedialAfterSessionLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay:443", 0)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 2})
		waitLive(t, p, 2)
		first := d.Sessions()

		killed := time.Now()
		first[0].Kill()
		synctest.Wait()
		if p.Live() != 1 {
			t.Errorf("Live = %d right after a session ended; want 1", p.Live())
		}
		if by := first[0].ClosedBy(); by != "kill" {
			t.Errorf("dead session ended by %q", by)
		}
		if got := openOn(t, p); got != first[1] {
			t.Errorf("stream on session %d while only %d is up", got.id, first[1].id)
		}

		now := d.waitSessions(t, 3)
		redial := d.Attempts()[2].Sub(killed)
		if redial != minBackoff {
			t.Errorf("redialed %v after the loss; want MinBackoff (%v)", redial, minBackoff)
		}
		waitLive(t, p, 2)
		replacement := now[2]
		if got := openOn(t, p); got != replacement { // 0 streams vs 1
			t.Errorf("stream on session %d; want the replacement %d", got.id, replacement.id)
		}
		if first[1].ClosedBy() != "" || replacement.ClosedBy() != "" {
			t.Error("a live session was closed")
		}
	})
}

// TestClose: Close stops every supervisor (even one stuck in Dial), closes
// the live sessions, wakes a waiting OpenStream with ErrClosed, and is
// idempotent; goleak in TestMain checks that nothing outlives it.
func TestClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := newFakeDialer("relay-up:443", 0)
		up.limit = 2 // no replacements once these two are killed
		stuck := newFakeDialer("relay-stuck:443", 0)
		stuck.gate = make(chan struct{}) // never opens: Dial returns only when ctx ends
		failing := newFakeDialer("relay-down:443", -1)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{up, stuck, failing}, SessionsPerRelay: 2,
			DialTimeout: time.Hour})
		waitLive(t, p, 2)
		for _, s := range up.Sessions() {
			s.Kill()
		}
		waiting := make(chan error, 1)
		go func() {
			_, err := p.OpenStream(t.Context())
			waiting <- err
		}()
		time.Sleep(time.Second)
		select {
		case err := <-waiting:
			t.Fatalf("OpenStream returned %v with no session up", err)
		default:
		}

		start := time.Now()
		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Close waited %v of virtual time; want none", d)
		}
		synctest.Wait()
		select {
		case err := <-waiting:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("OpenStream waiting across Close = %v; want ErrClosed", err)
			}
		default:
			t.Fatal("OpenStream still waiting after Close")
		}
		if p.Live() != 0 {
			t.Errorf("Live = %d after Close", p.Live())
		}
		if _, err := p.OpenStream(t.Context()); !errors.Is(err, ErrClosed) {
			t.Errorf("OpenStream after Close = %v; want ErrClosed", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		n := len(failing.Attempts())
		time.Sleep(time.Minute)
		if m := len(failing.Attempts()); m != n {
			t.Errorf("%d dial attempts after Close", m-n)
		}
	})
}

// TestCloseClosesLiveSessions: sessions up at Close are closed by the pool.
func TestCloseClosesLiveSessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay:443", 0)
		p := newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 3})
		waitLive(t, p, 3)
		p.Close()
		for _, s := range d.Sessions() {
			if s.ClosedBy() != "pool" {
				t.Errorf("session %d: closed by %q after pool Close; want pool", s.id, s.ClosedBy())
			}
		}
	})
}

// TestBackoffResetsOnlyAfterHealthyPeriod: sessions that die as soon as
// they are up count as failures, so the redial delay grows past the fast
// retries into full jitter; a session that stayed up for HealthyAfter
// resets it, and its loss is redialed after MinBackoff again.
func TestBackoffResetsOnlyAfterHealthyPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newFakeDialer("relay:443", 0)
		newPool(t, Config{Dialers: []tunnel.Dialer{d}, SessionsPerRelay: 1, HealthyAfter: time.Second})
		var killed time.Time
		for i := 1; i <= 5; i++ {
			s := d.waitSessions(t, i)[i-1]
			synctest.Wait()
			killed = time.Now()
			s.Kill()
		}
		s := d.waitSessions(t, 6)[5]
		if gap := d.Attempts()[5].Sub(killed); gap == minBackoff || gap > ceiling(5) {
			t.Errorf("redial after the 5th short-lived session came after %v; want a jittered delay in (0, %v], not the fast %v",
				gap, ceiling(5), minBackoff)
		}
		time.Sleep(2 * time.Second) // healthy for longer than HealthyAfter
		killed = time.Now()
		s.Kill()
		d.waitSessions(t, 7)
		if gap := d.Attempts()[6].Sub(killed); gap != minBackoff {
			t.Errorf("redial after a healthy session's loss came after %v; want MinBackoff (%v): the backoff should have reset", gap, minBackoff)
		}
	})
}
