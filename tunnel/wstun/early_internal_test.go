package wstun

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/tunneltest"
)

const earlyWarning = "relay did not accept a session already in use; closed it"

// relayAct is what the test relay does with one upgrade request.
type relayAct int

const (
	answerAtOnce       relayAct = iota
	answerAfterStream           // hold back the 101 until the edge's first frame arrived
	answerUncompressed          // answer as a relay with compression off
	refuse                      // close without an answer
	holdUntilClosed             // never answer; wait for the edge to close
	answerWithoutEarly          // answer as a relay that takes the frames but does not offer early data
)

// actRelay serves the tunnel endpoint with the upgrade handlers of two real
// Listeners, one compressing and one not, each connection as the next of
// acts says. Sessions come out of the Listeners' Accept; served reports each
// act's failure or nil.
func actRelay(t *testing.T, pki *tunneltest.PKI, acts ...relayAct) (addr string, ln, plain *Listener, served <-chan error) {
	t.Helper()
	listener := func(compression string) *Listener {
		l, err := Listen(tunneltest.Listen(t), pki.ServerConfig(), Config{HandshakeTimeout: 5 * time.Second, Compression: compression})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	ln, plain = listener(""), listener(CompressionOff)
	_, _, tc, err := prepare(Config{}, pki.ServerConfig())
	if err != nil {
		t.Fatal(err)
	}
	next := make(chan relayAct, len(acts))
	for _, a := range acts {
		next <- a
	}
	close(next)
	done := make(chan error, len(acts))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		act, ok := <-next
		if !ok {
			done <- errors.New("more upgrade requests than acts")
			return
		}
		switch act {
		case answerAtOnce:
			ln.upgrade(w, r)
		case answerUncompressed:
			plain.upgrade(w, r)
		case answerAfterStream:
			c, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				done <- err
				return
			}
			c.SetReadDeadline(time.Now().Add(negotiateTimeout))
			if _, err := brw.Reader.Peek(1); err != nil { // the edge's first frame
				c.Close()
				done <- errors.New("the edge sent nothing before the 101: " + err.Error())
				return
			}
			ln.upgrade(hijacked{w, c, brw}, r)
		case answerWithoutEarly:
			c, brw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				done <- err
				return
			}
			ln.upgrade(hijacked{w, withoutEarly{c}, brw}, r)
		case holdUntilClosed:
			c, brw, err := w.(http.Hijacker).Hijack()
			if err == nil {
				c.SetReadDeadline(time.Now().Add(negotiateTimeout))
				// The edge closed: EOF, or a reset if it closed the socket
				// with bytes unread. Only the deadline means it did not.
				_, err = io.Copy(io.Discard, brw)
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					err = nil
				}
				c.Close()
			}
			done <- err
			return
		case refuse:
			c, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				err = c.Close()
			}
			done <- err
			return
		}
		done <- nil
	})}
	tl := tls.NewListener(tunneltest.Listen(t), tc)
	stopped := make(chan struct{})
	go func() { defer close(stopped); _ = srv.Serve(tl) }()
	t.Cleanup(func() {
		srv.Close()
		<-stopped
	})
	return tl.Addr().String(), ln, plain, done
}

// hijacked is a ResponseWriter whose connection the test took already.
type hijacked struct {
	http.ResponseWriter
	c   net.Conn
	brw *bufio.ReadWriter
}

func (h hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) { return h.c, h.brw, nil }

// withoutEarly drops earlyHeader from the 101 written through it.
type withoutEarly struct{ net.Conn }

func (c withoutEarly) Write(p []byte) (int, error) {
	line := []byte(earlyHeader + ": 1\r\n")
	if i := bytes.Index(p, line); i >= 0 {
		if _, err := c.Conn.Write(append(p[:i:i], p[i+len(line):]...)); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// earlyRig is an actRelay and a Dialer to it whose warnings land in logs.
type earlyRig struct {
	t         *testing.T
	ctx       context.Context
	d         *Dialer
	logs      *observer.ObservedLogs
	ln, plain *Listener
	served    <-chan error
}

func newEarlyRig(t *testing.T, acts ...relayAct) *earlyRig {
	t.Helper()
	pki := tunneltest.NewPKI(t, "")
	r := &earlyRig{t: t}
	var addr string
	addr, r.ln, r.plain, r.served = actRelay(t, pki, acts...)
	core, logs := observer.New(zap.WarnLevel)
	d, err := NewDialer(addr, pki.ClientConfig(), Config{HandshakeTimeout: 5 * time.Second, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	r.d, r.logs = d, logs
	ctx, cancel := context.WithTimeout(t.Context(), 4*negotiateTimeout)
	t.Cleanup(cancel)
	r.ctx = ctx
	return r
}

// dial dials and closes the session when the test ends.
func (r *earlyRig) dial(what string) tunnel.Session {
	r.t.Helper()
	s, err := r.d.Dial(r.ctx)
	if err != nil {
		r.t.Fatalf("%s dial: %v", what, err)
	}
	r.t.Cleanup(func() { s.Close() })
	return s
}

// accept takes the relay's side of a session from l.
func (r *earlyRig) accept(l *Listener) tunnel.Session {
	r.t.Helper()
	s, err := l.Accept(r.ctx)
	if err != nil {
		r.t.Fatalf("relay accept: %v", err)
	}
	r.t.Cleanup(func() { s.Close() })
	return s
}

// wait waits for the relay's current act to end well.
func (r *earlyRig) wait() {
	r.t.Helper()
	if err := <-r.served; err != nil {
		r.t.Fatal(err)
	}
}

// opener returns a function that opens a stream on s.
func opener(t *testing.T, ctx context.Context, s tunnel.Session) func() peerStream {
	return func() peerStream {
		t.Helper()
		st, err := s.OpenStream(ctx)
		if err != nil {
			t.Fatalf("OpenStream: %v", err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
}

// TestDialBeforeUpgrade: the first session to a relay waits for its 101;
// once the relay has said it accepts early data, a new session is used
// before its 101 (a relay that holds its 101 back until the edge's first
// frame arrives would otherwise deadlock the dial); a session whose real
// 101 then differs from the remembered one (here: compression) is closed
// and logged, and the next dial waits for the 101 again, so a refusal
// reaches the dialer.
func TestDialBeforeUpgrade(t *testing.T) {
	r := newEarlyRig(t, answerAtOnce, answerAfterStream, answerUncompressed, refuse)
	r.dial("first")
	r.accept(r.ln)
	r.wait()
	if got := r.d.answer.Load(); got != answerCompressed {
		t.Fatalf("after the first 101: answer %d, want %d (early data, compressed)", got, answerCompressed)
	}

	st := opener(t, r.ctx, r.dial("second"))()
	st.SetDeadline(time.Now().Add(negotiateTimeout))
	if _, err := st.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	rst, err := r.accept(r.ln).AcceptStream(r.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rst.Close()
	rst.SetDeadline(time.Now().Add(negotiateTimeout))
	if err := exchange(rst, "ping", "pong"); err != nil {
		t.Fatalf("relay: %v", err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(st, got); err != nil || string(got) != "pong" {
		t.Fatalf("edge read %q, %v; want pong", got, err)
	}
	r.wait()

	third := r.dial("third") // used at once with compression; the relay answers without
	r.accept(r.plain)
	r.wait()
	select {
	case <-third.Done():
	case <-r.ctx.Done():
		t.Fatal("the session with a changed compression answer is still up")
	}
	if n := r.logs.FilterMessage(earlyWarning).Len(); n != 1 {
		t.Fatalf("%d warnings for the changed answer, want 1: %v", n, r.logs.All())
	}
	if got := r.d.answer.Load(); got != answerUnknown {
		t.Fatalf("after a changed answer: %d, want %d (wait for the 101)", got, answerUnknown)
	}

	if s, err := r.d.Dial(r.ctx); err == nil {
		s.Close()
		t.Fatal("fourth dial succeeded; want the relay's refusal, now that the edge waits for the 101 again")
	}
	r.wait()
	if n := r.logs.FilterMessage(earlyWarning).Len(); n != 1 {
		t.Errorf("%d warnings; want 1: the fourth dial waited for its 101", n)
	}
}

// TestCloseBeforeUpgrade: a session the edge closes itself before its 101
// arrived is no refusal: nothing is logged and the next dial still sends
// early.
func TestCloseBeforeUpgrade(t *testing.T) {
	r := newEarlyRig(t, answerAtOnce, holdUntilClosed)
	r.dial("first")
	r.accept(r.ln)
	r.wait()
	second := r.dial("second")
	second.Close()
	r.wait() // the relay saw the connection close
	<-second.Done()
	if n := r.logs.Len(); n != 0 {
		t.Errorf("%d warnings for a session this edge closed: %v", n, r.logs.All())
	}
	if got := r.d.answer.Load(); got != answerCompressed {
		t.Errorf("answer %d after a local close, want %d (still early)", got, answerCompressed)
	}
}

// TestEarlyToRelayWithoutEarlyData: a relay that answers a session sent
// early with a right 101 that no longer offers early data (an old relay put
// in its place, which took the frames after its upgrade) keeps the session,
// whose requests it may have dispatched already; the Dialer only stops
// sending early.
func TestEarlyToRelayWithoutEarlyData(t *testing.T) {
	r := newEarlyRig(t, answerAtOnce, answerWithoutEarly)
	for i := range 2 {
		if i == 1 && r.d.answer.Load() == answerUnknown {
			t.Fatal("the second dial would wait for its 101")
		}
		sess := r.dial(fmt.Sprint(i))
		roundTrip(t, opener(t, r.ctx, sess), func() peerStream { return acceptFirstStream(t, r.ln) }, []byte("ping"))
		r.wait()
	}
	if got := r.d.answer.Load(); got != answerUnknown {
		t.Errorf("answer %d after a 101 without early data, want %d", got, answerUnknown)
	}
	if n := r.logs.Len(); n != 0 {
		t.Errorf("%d warnings for a working session: %v", n, r.logs.All())
	}
}

// exchange reads want from rw and answers with reply.
func exchange(rw io.ReadWriter, want, reply string) error {
	got := make([]byte, len(want))
	if _, err := io.ReadFull(rw, got); err != nil {
		return err
	}
	if string(got) != want {
		return errors.New("read " + string(got) + ", want " + want)
	}
	_, err := rw.Write([]byte(reply))
	return err
}

// TestEarlyDataRoundTrip: on a session used before its 101, compressed and
// not, a stream's bytes both ways arrive byte-exact through the real
// Listener, whatever part of them came with the upgrade request.
func TestEarlyDataRoundTrip(t *testing.T) {
	for _, compression := range []string{CompressionDeflate, CompressionOff} {
		t.Run(compression, func(t *testing.T) {
			pki := tunneltest.NewPKI(t, "")
			cfg := Config{HandshakeTimeout: 5 * time.Second, Compression: compression}
			ln, err := Listen(tunneltest.Listen(t), pki.ServerConfig(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			d, err := NewDialer(ln.Addr().String(), pki.ClientConfig(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), negotiateTimeout)
			defer cancel()
			for i := range 2 { // the second dial sends early
				if i == 1 && d.answer.Load() == answerUnknown {
					t.Fatal("the relay's 101 did not offer early data")
				}
				sess, err := d.Dial(ctx)
				if err != nil {
					t.Fatalf("dial %d: %v", i, err)
				}
				t.Cleanup(func() { sess.Close() })
				payload := bytes.Repeat([]byte(`data: {"delta":{"text":"x"}}`+"\n\n"), 2000)
				roundTrip(t, opener(t, ctx, sess), func() peerStream { return acceptFirstStream(t, ln) }, payload)
				if sess.Info().PeerName == "" || sess.(*session).conn.sock.Congestion == "" {
					t.Errorf("dial %d: peer %q, congestion %q: the TLS connection under the early wrapper was lost",
						i, sess.Info().PeerName, sess.(*session).conn.sock.Congestion)
				}
			}
		})
	}
}

// TestNoEarlyDataToOldRelay: a relay that predates early data does not say
// it accepts it, so every dial waits for its 101 (gorilla there refuses
// data sent before it).
func TestNoEarlyDataToOldRelay(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	addr, muxes, offers := oldRelay(t, pki)
	d, err := NewDialer(addr, pki.ClientConfig(), Config{HandshakeTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), negotiateTimeout)
	defer cancel()
	for i := range 2 {
		sess, err := d.Dial(ctx)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { sess.Close() })
		<-offers
		mux := <-muxes
		t.Cleanup(func() { mux.Close() })
		if got := d.answer.Load(); got != answerUnknown {
			t.Fatalf("dial %d: answer %d from an old relay, want %d", i, got, answerUnknown)
		}
	}
}
