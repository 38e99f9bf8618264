package relay

import (
	"context"
	"testing"
	"time"
)

// TestWorkers: a job runs on an idle worker when there is one, on a new
// one otherwise; an idle worker ends after its idle time, and close ends
// the rest.
func TestWorkers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// waitFor fails the test unless ok becomes true before ctx ends.
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			if ctx.Err() != nil {
				t.Fatalf("gave up waiting: %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}

	w := newWorkers(time.Hour)
	first := make(chan struct{})
	w.run(func() { close(first) })
	<-first
	// The first job's worker is idle now, or about to be: a job sent
	// without starting a goroutine is taken by it.
	second := make(chan struct{})
	waitFor("an idle worker takes a job", func() bool { return w.runIdle(func() { close(second) }) })
	<-second

	// Two jobs at once: the busy worker cannot take the second, so run
	// starts a worker for it.
	hold, running := make(chan struct{}), make(chan struct{}, 2)
	block := func() { running <- struct{}{}; <-hold }
	waitFor("the worker takes the first blocking job", func() bool { return w.runIdle(block) })
	<-running
	if w.runIdle(block) {
		t.Fatal("a job went to an idle worker while the only worker was busy")
	}
	w.run(block)
	<-running
	close(hold)
	w.close()

	// An idle worker ends after its idle time, with no close.
	short := newWorkers(time.Millisecond)
	short.run(func() {})
	done := make(chan struct{})
	go func() { short.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("an idle worker did not end after its idle time")
	}
	short.close()
}
