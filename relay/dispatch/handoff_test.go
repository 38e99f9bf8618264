package dispatch

import (
	"slices"
	"testing"
)

// TestHandoff: what was deferred runs once, last registered first, on the
// goroutine that ends the stream: Done's when the stream never moved (or the
// Handoff is inline), the moved goroutine's after Go's function otherwise.
func TestHandoff(t *testing.T) {
	for _, tc := range []struct {
		name         string
		handoff      *Handoff
		callGo       bool
		wantAtDone   []string // what has run when Done returns
		wantAtTheEnd []string
	}{
		{"never moved", NewHandoff(), false, []string{"second", "first"}, []string{"second", "first"}},
		{"inline", Inline(), true, []string{"pump", "second", "first"}, []string{"pump", "second", "first"}},
		{"moved", NewHandoff(), true, nil, []string{"pump", "second", "first"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ran := make(chan string, 8)
			over := make(chan struct{})
			h := tc.handoff
			h.Defer(func() { ran <- "first"; close(over) }) // runs last
			h.Defer(func() { ran <- "second" })
			release := make(chan struct{})
			if tc.callGo {
				h.Go(func() {
					if !h.inline {
						<-release // the moved goroutine outlives Done
					}
					ran <- "pump"
				})
			}
			h.Done()
			var got []string
			for len(ran) > 0 {
				got = append(got, <-ran)
			}
			if !slices.Equal(got, tc.wantAtDone) {
				t.Fatalf("ran by Done: %v; want %v", got, tc.wantAtDone)
			}
			close(release)
			<-over
			for len(ran) > 0 {
				got = append(got, <-ran)
			}
			if !slices.Equal(got, tc.wantAtTheEnd) {
				t.Fatalf("ran in all: %v; want %v", got, tc.wantAtTheEnd)
			}
		})
	}
}
