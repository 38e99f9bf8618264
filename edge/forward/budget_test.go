package forward

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stuckWriter is a client that reads nothing: Write blocks until the test
// releases it or a write deadline in the past is set, as net.Conn does.
type stuckWriter struct {
	header  http.Header
	entered chan struct{} // closed when Write starts
	release chan struct{}
	expired chan struct{} // closed by a deadline at or before now
	once    sync.Once
	freed   sync.Once
}

// free lets a blocked Write return (the client reads again).
func (w *stuckWriter) free() { w.freed.Do(func() { close(w.release) }) }

func newStuckWriter() *stuckWriter {
	return &stuckWriter{header: http.Header{}, entered: make(chan struct{}),
		release: make(chan struct{}), expired: make(chan struct{})}
}

func (w *stuckWriter) Header() http.Header { return w.header }
func (w *stuckWriter) WriteHeader(int)     {}
func (w *stuckWriter) FlushError() error   { return nil }
func (w *stuckWriter) Write(p []byte) (int, error) {
	close(w.entered)
	select {
	case <-w.release:
		return len(p), nil
	case <-w.expired:
		return 0, os.ErrDeadlineExceeded
	}
}

func (w *stuckWriter) SetWriteDeadline(t time.Time) error {
	if !t.IsZero() && !t.After(time.Now()) {
		w.once.Do(func() { close(w.expired) })
	}
	return nil
}

// readingWriter is a client that takes every byte at once.
type readingWriter struct{ header http.Header }

func (w readingWriter) Header() http.Header              { return w.header }
func (w readingWriter) WriteHeader(int)                  {}
func (w readingWriter) FlushError() error                { return nil }
func (w readingWriter) Write(p []byte) (int, error)      { return len(p), nil }
func (w readingWriter) SetWriteDeadline(time.Time) error { return nil }

// fixedBuffer is a tunnel stream holding n unread bytes.
type fixedBuffer struct{ n atomic.Int64 }

func (b *fixedBuffer) Buffered() int64 { return b.n.Load() }

func holding(n int64) *fixedBuffer {
	b := new(fixedBuffer)
	b.n.Store(n)
	return b
}

// event is what writeOnce writes: charged to its response while blocked.
const event = "data: {}\n\n"

func writeOnce(f *Forwarder, w http.ResponseWriter, id string, st buffered) error {
	x := &exchange{f: f, w: w, id: id, st: st}
	return x.toClient(http.NewResponseController(w), []byte(event), true)
}

// passes waits until the budget has checked the writes twice more (once
// more could be a pass that began before the caller's last change).
func (b *clientBudget) waitPasses(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	want := b.passes + 2
	b.mu.Unlock()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		n := b.passes
		b.mu.Unlock()
		if n >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the budget stopped checking blocked writes")
		}
	}
}

// TestBudgetChargesWhatStreamsHold: blocked responses are charged what
// they are writing and what their streams hold behind it. Past the budget
// the one blocked the longest is cut, then the next, until the rest fit;
// one with nothing queued behind its write is never cut (its stream is not
// what fills the edge); many that hold little are never cut however
// long they stay blocked (clients starved of CPU); a stream that fills
// while blocked is cut on a later pass.
func TestBudgetChargesWhatStreamsHold(t *testing.T) {
	const budget = 1000
	for _, tc := range []struct {
		name  string
		held  []int64 // per blocked response, oldest first
		later []int64 // what they hold once all are blocked; nil: the same
		cut   []bool  // which are cut
	}{
		{"within the budget", []int64{400, 300, 200}, nil, []bool{false, false, false}},
		{"many that hold little", []int64{100, 100, 100, 100, 100, 100, 100, 100, 100}, nil,
			[]bool{false, false, false, false, false, false, false, false, false}},
		{"just over: the oldest goes", []int64{400, 400, 201}, nil, []bool{true, false, false}},
		{"far over: the oldest go until the rest fit", []int64{600, 600, 600, 100}, nil, []bool{true, true, false, false}},
		{"one that holds nothing stays", []int64{0, 900, 900}, nil, []bool{false, true, false}},
		{"one that fills while blocked", []int64{0, 100}, []int64{1500, 100}, []bool{true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(nil, time.Second, zap.NewNop())
			f.SetClientBufferBudget(budget)
			f.budget.grace = 50 * time.Millisecond
			if _, b := f.ClientBuffer(); b != budget {
				t.Fatalf("budget reported as %d; want %d", b, budget)
			}
			stuck := make([]*stuckWriter, len(tc.held))
			streams := make([]*fixedBuffer, len(tc.held))
			errs := make([]chan error, len(tc.held))
			var wg sync.WaitGroup
			defer func() { // on failure too: no writer left blocked
				for _, w := range stuck {
					if w != nil {
						w.free()
					}
				}
				wg.Wait()
			}()
			for i, h := range tc.held {
				stuck[i], streams[i], errs[i] = newStuckWriter(), holding(h), make(chan error, 1)
				wg.Go(func() { errs[i] <- writeOnce(f, stuck[i], fmt.Sprint("stuck_", i), streams[i]) })
				<-stuck[i].entered
				// A client that reads is never counted as blocked.
				if err := writeOnce(f, readingWriter{http.Header{}}, "reading", holding(budget)); err != nil {
					t.Fatalf("a reading client's write failed: %v", err)
				}
			}
			f.budget.waitPasses(t)
			for i, h := range tc.later {
				streams[i].n.Store(h)
			}
			f.budget.waitPasses(t)
			want, kept := int64(0), int64(0)
			for i, cut := range tc.cut {
				if cut {
					want++
					if err := <-errs[i]; err == nil {
						t.Errorf("response %d (holding %d) was not cut", i, streams[i].n.Load())
					}
				} else {
					kept += streams[i].n.Load() + int64(len(event))
				}
			}
			if _, timeout, n := f.ClientStats(); n != want || timeout != 0 {
				t.Errorf("cut %d by the budget and %d by timeout; want %d and 0", n, timeout, want)
			}
			if held, _ := f.ClientBuffer(); held != kept {
				t.Errorf("blocked responses charged %d; the uncut ones hold %d", held, kept)
			}
			for i, cut := range tc.cut {
				if !cut {
					stuck[i].free()
					if err := <-errs[i]; err != nil {
						t.Errorf("response %d, within the budget, failed: %v", i, err)
					}
				}
			}
			if n, _, _ := f.ClientStats(); n != 0 {
				t.Errorf("%d still blocked after all were released", n)
			}
		})
	}
}

// TestNoBudgetCutsNothing: without a budget, blocked responses wait for
// ClientWriteTimeout alone.
func TestNoBudgetCutsNothing(t *testing.T) {
	f := New(nil, time.Second, zap.NewNop())
	f.SetClientBufferBudget(0)
	w := newStuckWriter()
	done := make(chan error, 1)
	go func() { done <- writeOnce(f, w, "stuck", holding(64<<20)) }()
	<-w.entered
	if _, _, budget := f.ClientStats(); budget != 0 {
		t.Fatalf("cut %d without a budget", budget)
	}
	w.free()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// panicWriter is a client writer that panics inside its write, as a bug
// under it would.
type panicWriter struct{ readingWriter }

func (panicWriter) Write([]byte) (int, error) { panic("write") }

// TestBudgetForgetsAPanickedWrite: a write that panics leaves the budget
// as one that returned. (A detached answer recovers the panic and goes on,
// as net/http does for the handler; the budget kept charging the write,
// and kept its response, for the edge's life.)
func TestBudgetForgetsAPanickedWrite(t *testing.T) {
	f := New(nil, time.Second, zap.NewNop())
	f.SetClientBufferBudget(1 << 20)
	func() {
		defer func() {
			if p := recover(); p != "write" {
				t.Fatalf("recovered %v; want the write's panic", p)
			}
		}()
		_ = writeOnce(f, panicWriter{readingWriter{http.Header{}}}, "req_1", holding(64<<10))
	}()
	f.budget.mu.Lock()
	n := f.budget.writes.Len()
	f.budget.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d writes still charged after the write panicked; want none", n)
	}
	if blocked, _, _ := f.ClientStats(); blocked != 0 {
		t.Fatalf("%d responses still counted inside a write", blocked)
	}
}
