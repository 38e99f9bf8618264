package tunneltest

import (
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
)

// flowWindow is the stream window of the flow-control tests.
const flowWindow = 1 << 20

// windowSlack is what a writer may get past a full window: a transport may
// copy one small write into its send buffer (quic-go does, below a packet)
// before it blocks.
const windowSlack = 64 << 10

// testBackpressure: a reader that stops reading makes the writer block after
// at most StreamWindow + windowSlack bytes (and not before 64 KiB: the
// window is open at all). Reading again releases the writer, which then
// moves two more windows.
func testBackpressure(t *testing.T, tr Transport) {
	p := tr.Pair(t, PairOptions{StreamWindow: flowWindow})
	a, b := connect(t, p.Client, p.Server) // b does not read until later

	written := fillUntilBlocked(t, a, 64*flowWindow)
	t.Logf("writer blocked after %d bytes (window %d)", written, flowWindow)
	if written > flowWindow+windowSlack || written < 64<<10 {
		t.Errorf("writer blocked after %d bytes; want within [64 KiB, window %d + %d]",
			written, flowWindow, windowSlack)
	}

	drained := Async(func() (int, error) {
		n, err := io.Copy(io.Discard, b)
		return int(n), err
	})
	r := Await(t, "Write after the reader resumed", Async(func() (int, error) {
		return a.Write(make([]byte, 2*flowWindow))
	}), opTimeout)
	if r.Err != nil {
		t.Fatalf("Write after the reader resumed: %d, %v", r.N, r.Err)
	}
	a.CloseWrite()
	if d := Await(t, "drain", drained, opTimeout); d.Err != nil || d.N != written+2*flowWindow {
		t.Errorf("reader got %d bytes, %v; want %d", d.N, d.Err, written+2*flowWindow)
	}
}

// testWriterMemory: once one Write of 16 windows, blocked on a reader that
// does not read, has timed out, the process heap (both ends: it includes the
// receiver's buffered window and whatever the sender still holds unsent)
// has grown by less than 4 windows. A transport that queued what the writer
// tried to send would hold 16. The timeout is the event the measure waits
// for: by then the writer has done all it could, with no sleep to guess how
// long that takes.
func testWriterMemory(t *testing.T, tr Transport) {
	const attempt, bound = 16 * flowWindow, 4 * flowWindow
	p := tr.Pair(t, PairOptions{StreamWindow: flowWindow})
	a, _ := connect(t, p.Client, p.Server)
	big := make([]byte, attempt) // allocated before the baseline
	before := heapAfterGC()

	a.SetWriteDeadline(time.Now().Add(1500 * time.Millisecond))
	r := Await(t, "Write with a deadline", Async(func() (int, error) { return a.Write(big) }), opTimeout)
	during := heapAfterGC()
	runtime.KeepAlive(big)

	growth := int64(during) - int64(before)
	t.Logf("heap grew %d KiB while a %d MiB Write was blocked after %d KiB (window %d KiB)",
		growth>>10, attempt>>20, r.N>>10, flowWindow>>10)
	if !isTimeout(r.Err) || r.N > flowWindow+windowSlack {
		t.Errorf("Write of %d bytes = %d, %v; want a timeout after at most %d", attempt, r.N, r.Err, flowWindow+windowSlack)
	}
	if growth > bound {
		t.Errorf("heap grew %d bytes with one window of %d in flight; want < %d", growth, flowWindow, bound)
	}
}

// heapAfterGC is HeapAlloc after two collections (the second empties the
// sync.Pool victim caches).
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// isolationStalls is how many streams testIsolation stalls in each
// direction.
const isolationStalls = 2

// testIsolation: on a fresh session, with isolationStalls streams stalled in
// each direction (writer blocked on a full window, reader never reading), a
// 1 MiB echo on the same session completes within 3× the time it takes once
// the stalled streams are closed, plus 250 ms. Each time is the best of
// three runs, to keep scheduler noise out of the ratio. A transport whose
// stalled streams hold shared credit (a session-level window) stalls the
// echo outright and fails on the opTimeout deadline.
func testIsolation(t *testing.T, tr Transport) {
	p := tr.Pair(t, PairOptions{StreamWindow: flowWindow})
	serve(t, p.Server)
	serve(t, p.Client)
	payload := make([]byte, 1<<20)
	best := func() time.Duration {
		d := time.Duration(1 << 62)
		for range 3 {
			d = min(d, timedEcho(t, p.Client, payload))
		}
		return d
	}
	var stalled []tunnel.Stream
	for range isolationStalls {
		for _, sess := range []tunnel.Session{p.Client, p.Server} {
			st := openKind(t, sess, kindHold)
			n := stall(t, st)
			t.Logf("stream %d stalled after %d bytes", st.ID(), n)
			stalled = append(stalled, st)
		}
	}
	beside := best()
	for _, st := range stalled {
		st.Close()
	}
	idle := best()
	t.Logf("1 MiB echo: %v beside %d stalled streams each way, %v without", beside, isolationStalls, idle)
	if limit := 3*idle + 250*time.Millisecond; beside > limit {
		t.Errorf("1 MiB echo took %v beside stalled streams, %v without; want ≤ %v", beside, idle, limit)
	}
}

// stall fills st's window and leaves a Write blocked on it; the Write ends
// when the test's cleanup closes the stream. It returns the bytes written.
func stall(t *testing.T, st tunnel.Stream) int {
	n := fillUntilBlocked(t, st, 64*flowWindow)
	wr := writeBlocked(st, flowWindow)
	t.Cleanup(func() { st.Close(); <-wr })
	return n
}

// testBuffered: what an end has received and not read is what its
// Buffered reports, exactly where the transport counts it
// (Transport.BufferedExact) and never less where it only bounds it. The
// edge charges a response blocked on its client with it.
func testBuffered(t *testing.T, tr Transport) {
	const sent, taken = 300 << 10, 100 << 10 // within the window: nothing blocks
	p := tr.Pair(t, PairOptions{StreamWindow: flowWindow})
	a, b := connect(t, p.Client, p.Server) // b answers, a buffers: relay to edge
	if r := Await(t, "Write", Async(func() (int, error) { return b.Write(make([]byte, sent)) }), opTimeout); r.Err != nil {
		t.Fatalf("Write: %d, %v", r.N, r.Err)
	}
	check := func(unread int64) {
		t.Helper()
		if !tr.BufferedExact {
			if n := a.Buffered(); n < unread {
				t.Errorf("Buffered %d with up to %d bytes unread; an upper bound may not be below it", n, unread)
			}
			return
		}
		// Every byte is sent; waiting for the count to reach what it
		// must be is waiting for them to arrive.
		deadline := time.Now().Add(opTimeout)
		for a.Buffered() != unread && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := a.Buffered(); n != unread {
			t.Errorf("Buffered %d with %d bytes unread", n, unread)
		}
	}
	check(sent)
	if _, err := io.ReadFull(a, make([]byte, taken)); err != nil {
		t.Fatal(err)
	}
	check(sent - taken)
	if _, err := io.ReadFull(a, make([]byte, sent-taken)); err != nil {
		t.Fatal(err)
	}
	check(0)
}
