package wstun_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/certs/enrol"
	"github.com/strait/strait/tunnel/tunneltest"
	"github.com/strait/strait/tunnel/wstun"
)

// TestHandshakeRefused: an edge without the right certificate (or facing a
// relay from another CA) cannot get a session, and the relay logs the
// refusal once with its reason.
func TestHandshakeRefused(t *testing.T) {
	pki := tunneltest.NewPKI(t, "Strait CA test")
	other := tunneltest.NewPKI(t, "Other CA")
	for _, tc := range []struct {
		name       string
		server     *tls.Config
		client     *tls.Config
		wantReason string
	}{
		{"no client certificate", pki.ServerConfig(), pki.ClientConfigWith(nil),
			"client presented no certificate"},
		{"client certificate from another CA", pki.ServerConfig(), pki.ClientConfigWith(&other.Edge),
			"certificate signed by unknown authority"},
		{"relay certificate from another CA", other.ServerConfig(), pki.ClientConfigWith(&other.Edge),
			"remote refused our certificate: bad certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zapcore.InfoLevel)
			cfg := testConfig()
			cfg.Logger = zap.New(core)
			ln, err := listenWith(t, tc.server, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dial(t, ln.Addr().String(), tc.client, cfg); err == nil {
				t.Fatal("Dial succeeded")
			} else {
				t.Logf("Dial: %v", err)
			}
			refused := waitLog(t, logs, "tunnel handshake refused")
			if got := refused.ContextMap()["reason"]; got != tc.wantReason {
				t.Errorf("reason = %q; want %q", got, tc.wantReason)
			}
			if n := logs.FilterMessage("edge authenticated").Len(); n != 0 {
				t.Errorf("%d \"edge authenticated\" entries for a refused edge", n)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			if s, err := ln.Accept(ctx); err == nil {
				s.Close()
				t.Error("Accept returned a session for a refused edge")
			}
		})
	}
}

// waitLog waits for the first entry with message msg; the listener logs from
// its handshake goroutine, possibly after the client has seen the alert.
func waitLog(t *testing.T, logs *observer.ObservedLogs, msg string) observer.LoggedEntry {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if e := logs.FilterMessage(msg).All(); len(e) > 0 {
			if len(e) > 1 {
				t.Errorf("%d %q entries, want 1", len(e), msg)
			}
			return e[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no %q log entry; have %v", msg, logs.All())
	return observer.LoggedEntry{}
}

// TestListenerClose: Close returns promptly even with a client stuck before
// its TLS handshake, Accept fails afterwards, new edges are refused, and a
// session accepted earlier keeps working.
func TestListenerClose(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := testConfig() // HandshakeTimeout 5s
	cfg.Logger = zap.New(core)
	pki := tunneltest.NewPKI(t, "")
	raw := &notifyListener{Listener: tunneltest.Listen(t), accepted: make(chan net.Addr, 4)}
	ln, err := wstun.Listen(raw, pki.ServerConfig(), cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	p := connect(t, pki, ln, ln.Addr().String(), cfg)

	stuck, err := net.Dial("tcp", p.ln.Addr().String()) // never sends a ClientHello
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	// The relay has the stuck connection in a handshake once its accept
	// loop took it from the socket.
	waitAccepted(t, raw, stuck.LocalAddr())
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	blocked := tunneltest.Async(func() (int, error) { _, err := p.ln.Accept(ctx); return 0, err })

	start := time.Now()
	tunneltest.Await(t, "Listener.Close", tunneltest.Async(func() (int, error) { return 0, p.ln.Close() }), 2*time.Second)
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v with a stuck handshake; want well under the 5s handshake timeout", d)
	} else {
		t.Logf("Close took %v", d)
	}
	if n := logs.FilterMessage("tunnel handshake refused").Len(); n != 0 {
		t.Errorf("Close logged %d handshake refusals; an aborted handshake is not one", n)
	}
	if r := tunneltest.Await(t, "Accept blocked across Close", blocked, time.Second); !errors.Is(r.Err, net.ErrClosed) {
		t.Errorf("blocked Accept = %v; want net.ErrClosed", r.Err)
	}
	if _, err := p.ln.Accept(ctx); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v; want net.ErrClosed", err)
	}
	if err := p.ln.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if s, err := dial(t, p.ln.Addr().String(), p.pki.ClientConfig(), testConfig()); err == nil {
		s.Close()
		t.Error("Dial after Listener.Close succeeded")
	}

	// The accepted session outlives its listener.
	stop := serveEcho(t, p.relay)
	defer stop()
	if err := tunneltest.EchoOne(open(t, p.edge), []byte("still up")); err != nil {
		t.Errorf("session after Listener.Close: %v", err)
	}
}

// notifyListener reports the remote address of every connection it hands
// to the relay's accept loop.
type notifyListener struct {
	net.Listener
	accepted chan net.Addr
}

func (l *notifyListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		select {
		case l.accepted <- c.RemoteAddr():
		default: // nobody waits for this one
		}
	}
	return c, err
}

// waitAccepted waits for l to hand out the connection from addr.
func waitAccepted(t *testing.T, l *notifyListener, addr net.Addr) {
	t.Helper()
	timeout := time.After(opTimeout)
	for {
		select {
		case a := <-l.accepted:
			if a.String() == addr.String() {
				return
			}
		case <-timeout:
			t.Fatalf("the relay never accepted the connection from %v", addr)
		}
	}
}

// TestListenerConfigErrors: invalid settings are rejected at construction.
func TestListenerConfigErrors(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	bad := testConfig()
	bad.StreamWindow = 1 << 10 // below yamux's 256 KiB initial window
	if _, err := listenWith(t, pki.ServerConfig(), bad); err == nil {
		t.Error("Listen accepted a 1 KiB StreamWindow")
	}
	if _, err := wstun.NewDialer("127.0.0.1:1", pki.ClientConfig(), bad); err == nil {
		t.Error("NewDialer accepted a 1 KiB StreamWindow")
	}
	if _, err := wstun.NewDialer("no-port", pki.ClientConfig(), testConfig()); err == nil {
		t.Error("NewDialer accepted an address without a port")
	}
	// The listener is mutually authenticated or refuses to start.
	for _, loosen := range []func(*tls.Config){
		func(c *tls.Config) { c.ClientAuth = tls.NoClientCert },
		func(c *tls.Config) { c.ClientAuth = tls.VerifyClientCertIfGiven },
		func(c *tls.Config) { c.ClientAuth = tls.RequireAnyClientCert },
		func(c *tls.Config) { c.ClientCAs = nil },
	} {
		tc := pki.ServerConfig()
		loosen(tc)
		if _, err := listenWith(t, tc, testConfig()); err == nil {
			t.Errorf("Listen accepted ClientAuth %v with ClientCAs %v", tc.ClientAuth, tc.ClientCAs != nil)
		}
	}
}

// TestEnrolmentConnectionIdles: a connection that needs no certificate
// (enrolment) is closed once idle for HandshakeTimeout after its request.
func TestEnrolmentConnectionIdles(t *testing.T) {
	pki := tunneltest.NewPKI(t, "")
	cfg := testConfig()
	cfg.HandshakeTimeout = 200 * time.Millisecond
	cfg.Enrol = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	ln, err := listenWith(t, pki.ServerConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pki.CA.Pool(), ServerName: tunneltest.RelayName,
		NextProtos: []string{enrol.ALPN}, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /enrol HTTP/1.1\r\nHost: relay\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle enrolment connection: read %v; want io.EOF (closed by the relay)", err)
	}
}
