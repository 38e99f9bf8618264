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
		live, headroom uint64
		want           int
	}{
		{0, 32 * mib, 100},        // nothing measured yet
		{64 * mib, 32 * mib, 100}, // doubling is more than the headroom
		{32 * mib, 32 * mib, 100}, // equal
		{16 * mib, 32 * mib, 200}, // half: twice the growth
		{8 * mib, 32 * mib, 400},  // the lab's loopback maximum, about
		{10 * mib, 32 * mib, 325}, // 320 %, rounded up to a step of 25
		{1024, 32 * mib, 10000},   // capped
		{33 * mib, 32 * mib, 100}, // above the headroom
		{31 * mib, 32 * mib, 125}, // just below: 103 %, one step up
	} {
		if got := percentFor(tc.live, tc.headroom); got != tc.want {
			t.Errorf("percentFor(%d, %d) = %d, want %d", tc.live, tc.headroom, got, tc.want)
		}
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
