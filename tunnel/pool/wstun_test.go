package pool

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

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
			io.Copy(st, st)
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
