package quictun

import (
	"context"
	"crypto/tls"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/strait/strait/tunnel/tunneltest"
)

// relayAct is what the test relay does with one accepted connection.
type relayAct int

const (
	welcomeAtOnce    relayAct = iota
	welcomeAfterPing          // welcome only once a stream's "ping" has arrived, then answer "pong"
	refuse                    // close without a welcome
)

// TestDialBeforeWelcome: the first session to a relay waits for its
// welcome; once the relay has welcomed this edge, a new session is used at
// once, before its welcome (a relay that waits for the edge's first stream
// before welcoming would otherwise deadlock the dial); a session the relay
// then refuses is logged and makes the next dial wait for the welcome
// again, so the refusal reaches the dialer.
func TestDialBeforeWelcome(t *testing.T) {
	pki := tunneltest.NewPKI(t, "quic-test")
	cfg := Config{Compression: CompressionOff, HandshakeTimeout: 5 * time.Second}
	core, logs := observer.New(zap.WarnLevel)
	cfg.Logger = zap.New(core)
	tc := pki.ServerConfig().Clone()
	tc.NextProtos = []string{ALPN}
	tc.ClientAuth = tls.RequireAndVerifyClientCert
	tr := &quic.Transport{Conn: listenUDP(t)}
	t.Cleanup(func() { tr.Close(); tr.Conn.Close() })
	ln, err := tr.Listen(tc, cfg.withDefaults().quicConfig(false))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	acts := []relayAct{welcomeAtOnce, welcomeAfterPing, refuse, refuse}
	served := make(chan error, len(acts))
	go func() {
		for _, act := range acts {
			c, err := ln.Accept(ctx)
			if err != nil {
				served <- err
				return
			}
			served <- serveAct(ctx, c, act)
		}
	}()
	d, err := NewDialer(ln.Addr().String(), pki.ClientConfig(), cfg)
	if err != nil {
		t.Fatal(err)
	}

	first, err := d.Dial(ctx)
	if err != nil {
		t.Fatalf("first dial: %v", err)
	}
	defer first.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	second, err := d.Dial(ctx)
	if err != nil {
		t.Fatalf("second dial: %v", err)
	}
	defer second.Close()
	st, err := second.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(st, got); err != nil || string(got) != "pong" {
		t.Fatalf("read %q, %v; want pong", got, err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}

	third, err := d.Dial(ctx) // used at once; the relay then refuses it
	if err != nil {
		t.Fatalf("third dial: %v", err)
	}
	defer third.Close()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	for logs.FilterMessage("relay did not welcome a session already in use; closed it").Len() == 0 {
		select {
		case <-ctx.Done():
			t.Fatal("no warning for the refused session")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if _, err := d.Dial(ctx); err == nil {
		t.Fatal("fourth dial succeeded; want the relay's refusal, now that the edge waits for the welcome again")
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterMessage("relay did not welcome a session already in use; closed it").Len(); n != 1 {
		t.Errorf("%d warnings; want 1: the fourth dial waits for its welcome", n)
	}
}

func serveAct(ctx context.Context, c *quic.Conn, act relayAct) error {
	switch act {
	case welcomeAtOnce:
		return welcome(c)
	case welcomeAfterPing:
		st, err := c.AcceptStream(ctx)
		if err != nil {
			return err
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(st, b); err != nil {
			return err
		}
		if err := welcome(c); err != nil {
			return err
		}
		_, err = st.Write([]byte("pong"))
		return err
	default:
		return c.CloseWithError(0x100, "refused")
	}
}
