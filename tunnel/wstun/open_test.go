package wstun_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
)

// pendingOpens is how many streams a session may have opened that the peer
// has not accepted yet (yamux's AcceptBacklog in config.go): the next
// OpenStream waits for one of them to be accepted.
const pendingOpens = 1024

// TestOpenStreamHonoursContextWhenBacklogFull: with every pending open in
// use (the relay accepts none), OpenStream waits for room; it must give up
// when its context ends, not block past the caller's deadline, and leave
// nothing half-done: the open it gave up never reaches the relay.
func TestOpenStreamHonoursContextWhenBacklogFull(t *testing.T) {
	p := newPair(t, testConfig())
	for range pendingOpens {
		open(t, p.edge)
	}

	const deadline = 100 * time.Millisecond
	type result struct {
		st  tunnel.Stream
		err error
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), deadline)
		defer cancel()
		st, err := p.edge.OpenStream(ctx)
		got <- result{st, err}
	}()
	select {
	case r := <-got:
		if r.err == nil {
			r.st.Close()
			t.Fatalf("OpenStream succeeded with %d opens pending; want it to wait, then fail", pendingOpens)
		}
		if !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("OpenStream = %v; want context.DeadlineExceeded", r.err)
		}
	case <-time.After(opTimeout):
		t.Fatalf("OpenStream with a %v deadline still blocked after %v (%d opens pending)", deadline, opTimeout, pendingOpens)
	}

	// The open it gave up never went out: once the relay accepts the
	// pending ones, the next stream it accepts is the next one opened.
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	defer cancel()
	for i := range pendingOpens {
		st, err := p.relay.AcceptStream(ctx)
		if err != nil {
			t.Fatalf("AcceptStream %d: %v", i, err)
		}
		t.Cleanup(func() { st.Close() })
	}
	st, err := p.edge.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream after the relay accepted: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	next, err := p.relay.AcceptStream(ctx)
	if err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	t.Cleanup(func() { next.Close() })
	next.SetReadDeadline(time.Now().Add(opTimeout))
	buf := make([]byte, 1)
	if n, err := next.Read(buf); n != 1 || buf[0] != 'x' {
		t.Errorf("the relay's next stream read %q, %v; want the new stream's \"x\"", buf[:n], err)
	}
}
