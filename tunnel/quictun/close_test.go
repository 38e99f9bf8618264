package quictun

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"

	"github.com/strait/strait/tunnel/quictun/fec"
	"github.com/strait/strait/tunnel/tunneltest"
)

// TestCloseEndsUnacceptedConnections: a connection whose handshake
// completed but that Accept had not taken yet when the listener closed is
// neither handed out by a later Accept nor left up. quic-go keeps such
// connections queued after its listener closes; with another session still
// up (the socket stays open), they used to stay up until the edge gave up,
// and Accept returned them after Close.
func TestCloseEndsUnacceptedConnections(t *testing.T) {
	pki := tunneltest.NewPKI(t, "quic-test")
	ln := relayListener(t, pki)
	edge, relay := dialPair(t, ln, ln.Addr().String(), pki, fec.Shape{}) // keeps the socket open
	t.Cleanup(func() { edge.Close(); relay.Close() })

	// A second connection, handshaken but not accepted: the relay confirms
	// the handshake (HANDSHAKE_DONE) once it has queued it for Accept.
	confirmed := make(chan struct{})
	qc := &quic.Config{Tracer: func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace {
		return confirmWatch{confirmed}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc := clientTLS(pki.ClientConfig(), []string{ALPN})
	queued, err := quic.DialAddr(ctx, ln.Addr().String(), tc, qc)
	if err != nil {
		t.Fatal(err)
	}
	defer queued.CloseWithError(0, "")
	select {
	case <-confirmed:
	case <-ctx.Done():
		t.Fatal("the relay never confirmed the handshake")
	}

	ln.Close()
	select {
	case <-queued.Context().Done():
	case <-ctx.Done():
		t.Error("the unaccepted connection is still up after Close")
	}
	if s, err := ln.Accept(context.Background()); !errors.Is(err, net.ErrClosed) {
		if s != nil {
			s.Close()
		}
		t.Errorf("Accept after Close: %v, %v; want net.ErrClosed", s, err)
	}
	if relay.Err() != nil {
		t.Errorf("the accepted session ended with the listener: %v", relay.Err())
	}
}

// confirmWatch closes its channel when the connection's handshake is
// confirmed.
type confirmWatch struct{ ch chan struct{} }

func (w confirmWatch) AddProducer() qlogwriter.Recorder { return w }

func (w confirmWatch) RecordEvent(ev qlogwriter.Event) {
	if e, ok := ev.(qlog.ConnectionStateUpdated); ok && e.State == qlog.ConnectionStateHandshakeConfirmed {
		close(w.ch)
	}
}

func (confirmWatch) Close() error { return nil }
