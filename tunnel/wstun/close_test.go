package wstun_test

import (
	"errors"
	"testing"
	"time"

	"github.com/strait/strait/tunnel"
)

// TestCloseWakesBlockedCalls: closing a session on which every stream has
// a call waiting (a Read for data, or a Write for window) returns at once,
// and every call fails with ErrSessionClosed. yamux's waiting Read and
// Write loop without pause on a closing session until its Close reaches
// their stream; with 256 Reads waiting, Close took 75 s of both CPUs (the
// relay's dispatcher keeps a Read waiting on every stream it serves). The
// bound is far above what Close takes now (milliseconds) and far below
// what the spinning took.
func TestCloseWakesBlockedCalls(t *testing.T) {
	const streams = 256
	for _, tc := range []struct {
		name string
		// call blocks on a stream of the closing session.
		call func(st tunnel.Stream) error
		// relaySide: the relay's session closes (its streams' calls wait);
		// otherwise the edge's.
		relaySide bool
	}{
		{"reads waiting for data", func(st tunnel.Stream) error {
			_, err := st.Read(make([]byte, 1))
			return err
		}, true},
		{"writes waiting for window", func(st tunnel.Stream) error {
			chunk := make([]byte, 64<<10)
			for {
				if _, err := st.Write(chunk); err != nil {
					return err
				}
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, testConfig())
			errs := make(chan error, streams)
			started := make(chan struct{}, streams)
			run := func(st tunnel.Stream) {
				st.SetDeadline(time.Time{})
				started <- struct{}{}
				errs <- tc.call(st)
			}
			closing := p.edge
			if tc.relaySide {
				closing = p.relay
			}
			// The other side accepts and holds its streams without reading.
			held := make(chan struct{})
			stop := serveStreams(t, p.relay, func(st tunnel.Stream) {
				if tc.relaySide {
					run(st)
					return
				}
				<-held
			})
			defer stop()
			defer close(held)
			for range streams {
				st := open(t, p.edge)
				if !tc.relaySide {
					go run(st)
				}
			}
			for range streams {
				select {
				case <-started:
				case <-time.After(opTimeout):
					t.Fatal("not every call started")
				}
			}
			start := time.Now()
			closing.Close()
			took := time.Since(start)
			t.Logf("Close with %d calls waiting took %v", streams, took)
			for range streams {
				select {
				case err := <-errs:
					if !errors.Is(err, tunnel.ErrSessionClosed) {
						t.Errorf("waiting call: %v; want ErrSessionClosed", err)
					}
				case <-time.After(opTimeout):
					t.Fatal("a waiting call did not return after Close")
				}
			}
			if took > 20*time.Second { // closeFlush (1 s) for what the writers queued, then milliseconds
				t.Errorf("Close took %v", took)
			}
		})
	}
}
