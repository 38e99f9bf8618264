package relay

import (
	"sync"
	"time"
)

// A stream's handler starts on a fresh goroutine, whose stack starts at
// the runtime's average (a few KiB: most of the relay's goroutines are
// parked loops) and grows, by copying, to the 8 or 16 KiB that reading,
// routing and calling the provider take: runtime.copystack was 6 % of the
// relay's CPU at the lab's loopback maximum (2026-12-07, after whole
// answers stopped handing their pump to a goroutine of its own).
// streamWorkers runs handlers on goroutines that served a stream before and kept their
// grown stacks, as grpc-go's stream workers do. A worker idle for
// workerIdle ends, so a burst leaves no crowd of idle stacks behind, and an
// event stream's handler still returns as soon as its pump is handed off
// (dispatch.Handoff): a worker holds no stream while it waits.
type streamWorkers struct {
	jobs chan func() // unbuffered: a send succeeds only into an idle worker
	stop chan struct{}
	wg   sync.WaitGroup
	idle time.Duration
}

// workerIdle is how long a worker waits for its next stream.
const workerIdle = 2 * time.Second

func newWorkers(idle time.Duration) *streamWorkers {
	return &streamWorkers{jobs: make(chan func()), stop: make(chan struct{}), idle: idle}
}

// run runs job on an idle worker, or on a new one if none is idle.
func (w *streamWorkers) run(job func()) {
	if !w.runIdle(job) {
		w.wg.Add(1)
		go w.work(job)
	}
}

// runIdle hands job to an idle worker, if there is one.
func (w *streamWorkers) runIdle(job func()) bool {
	select {
	case w.jobs <- job:
		return true
	default:
		return false
	}
}

func (w *streamWorkers) work(job func()) {
	defer w.wg.Done()
	idle := time.NewTimer(w.idle)
	defer idle.Stop()
	for {
		job()
		idle.Reset(w.idle)
		select {
		case job = <-w.jobs:
		case <-idle.C:
			return
		case <-w.stop:
			return
		}
	}
}

// close ends the idle workers and waits for the busy ones to finish their
// job. No run may follow.
func (w *streamWorkers) close() {
	close(w.stop)
	w.wg.Wait()
}
