package cli

import (
	"context"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live, scanned, headroom uint64
		want                    int
	}{
		{0, 0, 32 * mib, 100},               // nothing measured yet
		{64 * mib, 64 * mib, 32 * mib, 100}, // doubling is more than the headroom
		{32 * mib, 32 * mib, 32 * mib, 100}, // equal
		{16 * mib, 16 * mib, 32 * mib, 200}, // half: twice the growth
		{8 * mib, 8 * mib, 32 * mib, 400},   // the lab's loopback maximum, about
		{10 * mib, 10 * mib, 32 * mib, 325}, // 320 %, rounded up to a step of 25
		{8 * mib, 10 * mib, 32 * mib, 325},  // 2 MiB of stacks and globals count
		{31 * mib, 31 * mib, 32 * mib, 125}, // just below: 103 %, one step up
		{33 * mib, 33 * mib, 32 * mib, 100}, // above the headroom
		{30 * mib, 40 * mib, 32 * mib, 100}, // stacks take it above
		// Little live: the pacer's 4 MiB × GOGC/100 minimum caps it, at
		// (live+headroom)/4 MiB, not the 10 000 the heap alone would ask.
		{1024, 1024, 32 * mib, 800},
		{1 * mib, 1536 * 1024, 32 * mib, 825},
		{4 * mib, 5 * mib, 32 * mib, 650}, // uncapped: 640 %, one step up
		{1024, 1024, 4 << 30, 10000},      // capped at 10 000
		{1024, 1024, 1 * mib, 100},        // a headroom under the minimum: never below 100
		{1024, 0, 32 * mib, 800},          // scanned is at least live
	} {
		if got := percentFor(tc.live, tc.scanned, tc.headroom); got != tc.want {
			t.Errorf("percentFor(%d, %d, %d) = %d, want %d", tc.live, tc.scanned, tc.headroom, got, tc.want)
		}
	}
}

// TestHeapHeadroomGoal: with the tuning on, the runtime's own heap goal is
// live + about Headroom, as the doc promises, for this test binary's small
// live heap (without the cap on the percentage it was 400 MiB).
func TestHeapHeadroomGoal(t *testing.T) {
	stop, tuned := HeapHeadroom(Headroom)
	if !tuned {
		t.Fatal("not tuned, with GOGC unset")
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for gogc() == 100 {
		if ctx.Err() != nil {
			t.Fatal("the GC percentage stayed 100 through collections")
		}
		runtime.GC()
		runtime.Gosched()
	}
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	live, goal := s[0].Value.Uint64(), s[1].Value.Uint64()
	t.Logf("live %d KiB, GOGC %d, heap goal %d KiB", live>>10, gogc(), goal>>10)
	if goal > live+Headroom+8<<20 || goal < live+Headroom/2 {
		t.Errorf("heap goal %d MiB with %d KiB live, want about %d MiB above it", goal>>20, live>>10, Headroom>>20)
	}
}

// gogc is the runtime's GC percentage now.
func gogc() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// TestHeapHeadroom: after a collection the percentage is what percentFor
// says for the test binary's small live heap; stop restores 100.
func TestHeapHeadroom(t *testing.T) {
	const headroom = 1 << 30 // far above this test binary's live heap
	stop, tuned := HeapHeadroom(headroom)
	if !tuned {
		t.Fatal("not tuned, with GOGC unset")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for gogc() == 100 {
		if ctx.Err() != nil {
			stop()
			t.Fatal("the GC percentage stayed 100 through collections")
		}
		runtime.GC()
		runtime.Gosched()
	}
	if p := gogc(); p < 1000 {
		t.Errorf("GC percentage %d with a live heap far below the headroom, want 1000 or more", p)
	}
	stop()
	if p := gogc(); p != 100 {
		t.Errorf("GC percentage %d after stop, want 100", p)
	}
	// Stopped: a collection no longer changes it.
	runtime.GC()
	runtime.GC()
	if p := gogc(); p != 100 {
		t.Errorf("GC percentage %d after stop and two collections, want 100", p)
	}
}

func TestHeapHeadroomLeavesGOGCToTheOperator(t *testing.T) {
	t.Setenv("GOGC", "100")
	stop, tuned := HeapHeadroom(Headroom)
	defer stop()
	if tuned {
		t.Fatal("tuned although GOGC is set")
	}
}
