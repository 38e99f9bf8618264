package forward

import (
	"fmt"
	"net/http"
	"os"
	"sync"
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

func writeOnce(f *Forwarder, w http.ResponseWriter, id string) error {
	x := &exchange{f: f, w: w, id: id}
	return x.toClient(http.NewResponseController(w), []byte("data: {}\n\n"), true)
}

// TestBudgetCutsLongestBlocked proves that with room for k blocked
// responses, the (k+1)-th client that stops reading cuts the one blocked
// the longest, and only it, while clients that read keep getting their
// bytes throughout.
func TestBudgetCutsLongestBlocked(t *testing.T) {
	const window = 4 << 20
	for _, tc := range []struct {
		name   string
		budget int64
		k      int // responses that may be blocked at once
	}{
		// Each blocked response is charged twice its window.
		{"budget below one charge", window / 2, 1},
		{"two charges", 4 * window, 2},
		{"three and a half charges", 7*window + window/2, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(nil, time.Second, zap.NewNop())
			f.SetClientBufferBudget(tc.budget, window)
			f.budget.grace = 100 * time.Millisecond
			if _, b := f.ClientBuffer(); b != int64(tc.k)*2*window {
				t.Fatalf("budget reported as %d; want %d", b, tc.k*2*window)
			}
			stuck := make([]*stuckWriter, tc.k+1)
			errs := make([]chan error, tc.k+1)
			var wg sync.WaitGroup
			defer func() { // on failure too: no writer left blocked
				for _, w := range stuck {
					if w != nil {
						w.free()
					}
				}
				wg.Wait()
			}()
			for i := range stuck {
				stuck[i], errs[i] = newStuckWriter(), make(chan error, 1)
				wg.Go(func() { errs[i] <- writeOnce(f, stuck[i], fmt.Sprint("stuck_", i)) })
				<-stuck[i].entered
				// A client that reads is never counted as blocked, even
				// while k others are.
				if err := writeOnce(f, readingWriter{http.Header{}}, "reading"); err != nil {
					t.Fatalf("a reading client's write failed: %v", err)
				}
			}
			select {
			case err := <-errs[0]:
				if err == nil {
					t.Fatal("the longest-blocked response was not cut")
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%d responses blocked with room for %d, and none was cut", tc.k+1, tc.k)
			}
			// The cut happened under the budget's lock, and leave took it
			// after: every cut of that pass is counted by now.
			if _, timeout, budget := f.ClientStats(); budget != 1 || timeout != 0 {
				t.Fatalf("cut %d by the budget and %d by timeout; want 1 and 0", budget, timeout)
			}
			if held, _ := f.ClientBuffer(); held != int64(tc.k)*2*window {
				t.Errorf("held estimate %d with %d blocked; want %d", held, tc.k, tc.k*2*window)
			}
			for i := 1; i <= tc.k; i++ {
				stuck[i].free()
				if err := <-errs[i]; err != nil {
					t.Errorf("response %d, blocked within the budget, failed: %v", i, err)
				}
			}
			if n, _, budget := f.ClientStats(); n != 0 || budget != 1 {
				t.Errorf("%d still blocked and %d cut after all were released; want 0 and 1", n, budget)
			}
		})
	}
}

// TestNoBudgetCutsNothing: without a budget, blocked responses wait for
// ClientWriteTimeout alone.
func TestNoBudgetCutsNothing(t *testing.T) {
	f := New(nil, time.Second, zap.NewNop())
	f.SetClientBufferBudget(0, 4<<20)
	w := newStuckWriter()
	done := make(chan error, 1)
	go func() { done <- writeOnce(f, w, "stuck") }()
	<-w.entered
	if _, _, budget := f.ClientStats(); budget != 0 {
		t.Fatalf("cut %d without a budget", budget)
	}
	w.free()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
