package wstun_test

import (
	"context"
	"crypto/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
	"github.com/strait/strait/tunnel/faultnet"
	"github.com/strait/strait/tunnel/tunneltest"
)

// TestNewStreamOvertakesBulk measures what a new stream waits behind on a
// busy session: 64 streams send bulk data over a 2 MiB/s link (a faultnet
// proxy with a 32 KiB queue, so the link itself holds little), and then a
// new stream sends a few bytes. The figure is the bulk that reaches the
// relay between the new stream's open and its first bytes: with yamux's FIFO
// and the kernel's send buffer in front it was megabytes (seconds at this
// rate); with the scheduler and TCP_NOTSENT_LOWAT it is what the link, the
// lowat and one message hold. Counting bytes, not time, keeps the test
// independent of the machine's load.
func TestNewStreamOvertakesBulk(t *testing.T) {
	const (
		bulkStreams = 64
		writeSize   = 64 << 10
		rate        = 2 << 20
		// warm lets every bulk stream send past its fresh share (while
		// fresh, streams take turns with the new one) and fills the queues.
		warm = 2 << 20
		// limit is generous against what the scheduler leaves ahead
		// (~200 KiB) and far below yamux's FIFO (64 frames of 64 KiB).
		limit = 512 << 10
	)
	cfg := testConfig()
	pki := tunneltest.NewPKI(t, "")
	ln := listen(t, pki, cfg)
	proxy, err := faultnet.NewTCPProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	proxy.SetQueueLimit(32 << 10)
	p := connect(t, pki, ln, proxy.Addr().String(), cfg)

	var bulk atomic.Int64 // bulk bytes the relay has read
	first := make(chan int64, 1)
	stop := serveCounting(t, p.relay, &bulk, first)
	defer stop()

	ctx, cancel := context.WithCancel(t.Context())
	var writers sync.WaitGroup
	defer func() {
		cancel()
		p.edge.Close() // releases writers waiting for room or window
		writers.Wait()
	}()
	// Random bytes: the link limits wire bytes, and compressible bulk would
	// put more payload through the same wire time than the bound assumes.
	chunk := make([]byte, writeSize)
	if _, err := rand.Read(chunk); err != nil {
		t.Fatal(err)
	}
	// The relay tells the new stream from bulk by its first byte, which a
	// bulk read must therefore never start with.
	for i, b := range chunk {
		if b == 'h' {
			chunk[i] = 'g'
		}
	}
	for range bulkStreams {
		st := open(t, p.edge)
		writers.Go(func() {
			for ctx.Err() == nil {
				if _, err := st.Write(chunk); err != nil {
					return
				}
			}
		})
	}
	proxy.SetRate(rate)
	waitForProgress(t, "bulk to flow", &bulk, warm)

	before := bulk.Load()
	st := open(t, p.edge)
	if _, err := st.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	var after int64
	select {
	case after = <-first:
	case <-time.After(opTimeout):
		t.Fatalf("the new stream's bytes never arrived (%d bulk bytes did)", bulk.Load()-before)
	}
	ahead := after - before
	t.Logf("bulk ahead of the new stream: %d KiB", ahead>>10)
	if ahead > limit {
		t.Fatalf("%d KiB of bulk reached the relay before the new stream's first bytes; want under %d KiB", ahead>>10, limit>>10)
	}
}

// serveCounting accepts streams on s: one whose first byte is 'h' reports
// the bulk count at its arrival on first; the others are counted into bulk.
func serveCounting(t *testing.T, s tunnel.Session, bulk *atomic.Int64, first chan<- int64) (stop func()) {
	stopServing := serveStreams(t, s, func(st tunnel.Stream) {
		buf := make([]byte, 32<<10)
		for {
			n, err := st.Read(buf)
			if n > 0 && buf[0] == 'h' {
				select {
				case first <- bulk.Load():
				default:
				}
				return
			}
			bulk.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	return func() { s.Close(); stopServing() }
}

// waitForProgress polls counter (which the test cannot wait on otherwise)
// until it reaches goal. It fails when the counter stands still for
// opTimeout, not when the goal takes long: on a loaded machine (the race
// detector, every package testing at once) the same bytes take longer, and
// only a stall is a defect.
func waitForProgress(t *testing.T, what string, counter *atomic.Int64, goal int64) {
	t.Helper()
	start, last := time.Now(), counter.Load()
	moved := start
	for {
		n := counter.Load()
		if n >= goal {
			t.Logf("%s: %d KiB in %v", what, n>>10, time.Since(start).Round(time.Millisecond))
			return
		}
		if n != last {
			last, moved = n, time.Now()
		}
		if time.Since(moved) > opTimeout {
			t.Fatalf("timed out waiting for %s: stuck at %d of %d KiB for %v (%v since the start)",
				what, n>>10, goal>>10, opTimeout, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor polls cond (state the test cannot wait on otherwise) for at most
// opTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
